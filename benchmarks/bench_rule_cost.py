"""What a chip's firing rules cost a trained model before any quantization.

    .venv/bin/python benchmarks/bench_rule_cost.py [--models NAME ...]

For each digits model (examples/digits, as benchmarks/bench_accuracy.py uses them), nirc's
float reference runs the 397 test digits under the rules the model was trained with and
under the same rules with one changed at a time: one spike per step, reset to zero, both
(Lava's LIF on Loihi), a bound of c spikes per step; and, for models with a recurrent
hidden layer and a readout, the hidden layer and the readout each under their own rules
(the rules are set per node by wrapping nirc.simulate.engine.spike_rules, which the
simulator consults per neuron node: recurrent nodes are the hidden layer here). Accuracy
and same winner with the framework's stored outputs, scored as bench_accuracy scores
them. Prints the table, writes benchmarks/results/rule_cost.json.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import bench_accuracy as accuracy  # noqa: E402
from nirc import __version__  # noqa: E402
from nirc.convention import with_options  # noqa: E402
from nirc.errors import NircWarning  # noqa: E402
from nirc.simulate import engine, simulate  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
BOUNDS = (4, 8, 16)
# (label, hidden rules, readout rules): (limit, reset) per layer; None keeps the trained rule.
PER_LAYER = (("hidden one spike, readout as trained", (1, None), (None, None)),
             ("hidden at most 8, readout as trained", (8, None), (None, None)),
             ("hidden as trained, readout one spike", (None, None), (1, None)),
             ("hidden as trained, readout one spike, reset zero", (None, None), (1, "zero")),
             ("hidden at most 8, readout one spike, reset zero", (8, None), (1, "zero")))


def variants(convention) -> dict:
    out = {"as trained": convention,
           "one spike per step": with_options(convention, spikes="single"),
           "reset to zero": with_options(convention, reset="zero"),
           "one spike, reset to zero (Lava's LIF)": with_options(convention, spikes="single",
                                                                  reset="zero")}
    if convention.spikes == "multi":
        for c in BOUNDS:
            out[f"at most {c} per step"] = with_options(convention, max_spikes=c)
    return out


def per_layer(hidden, readout):
    """A spike_rules wrapper: recurrent nodes (the hidden layer) get ``hidden``, the others
    ``readout`` ((limit, reset), None keeping the trained value)."""
    original = engine.spike_rules

    def rules(convention, node, recurrent):
        r = original(convention, node, recurrent)
        limit, reset = hidden if recurrent else readout
        return dataclasses.replace(r, limit=r.limit if limit is None else limit,
                                   reset=r.reset if reset is None else reset)
    return rules


def score(graph, in_name, x, labels, framework_pred, convention) -> dict:
    out = simulate(graph, {in_name: x}, batch=True, convention=convention)
    pred = accuracy.counts_of(out.outputs, x.shape[0], x.shape[1]).argmax(1)
    return {"accuracy": float(np.mean(pred == labels)),
            "same_winner": float(np.mean(pred == framework_pred)),
            "spikes": {k: int(v.sum()) for k, v in out.spikes.items()}}


def main(argv: list[str] | None = None) -> int:
    manifest, reference = accuracy.load_reference()
    models = list(manifest["models"])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=models, default=["rockpool_lif"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    labels = reference["labels"]
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NircWarning)
        for name in args.models:
            entry = manifest["models"][name]
            x = accuracy.test_inputs(entry, reference)
            framework_pred = reference[f"counts_{name}"].argmax(1)
            convention, _ = accuracy.float_reference(accuracy.DIGITS / entry["file"], x[:, :1],
                                                     entry.get("nirc_options", {}))
            graph = accuracy.read_quietly(accuracy.DIGITS / entry["file"])
            (in_name,) = graph.inputs()
            rows = [{"rules": label, **score(graph, in_name, x, labels, framework_pred, c)}
                    for label, c in variants(convention).items()]
            if convention.spikes == "multi" and engine.recurrent_nodes(
                    engine.prepare(graph)[0]):
                for label, hidden, readout in PER_LAYER:
                    saved = engine.spike_rules
                    engine.spike_rules = per_layer(hidden, readout)
                    try:
                        rows.append({"rules": label, **score(graph, in_name, x, labels,
                                                             framework_pred, convention)})
                    finally:
                        engine.spike_rules = saved
            results.append({"model": name, "convention": convention.describe(), "rows": rows})
            print(f"{name}: {convention.describe()}")
            print("| rules | accuracy | same winner |\n|---|---|---|")
            for r in rows:
                print(f"| {r['rules']} | {100 * r['accuracy']:.1f} % | "
                      f"{100 * r['same_winner']:.1f} % |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rule_cost.json").write_text(json.dumps(
        {"benchmark": "rule_cost", "nirc_version": __version__,
         "test_samples": int(len(labels)), "results": results}, indent=2) + "\n",
        encoding="utf-8")
    print(f"wrote {args.out / 'rule_cost.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
