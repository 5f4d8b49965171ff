"""Fidelity-driven quantization on Xylo: range-based scales against scales chosen by agreement.

    .venv/bin/python benchmarks/bench_fidelity.py [--samples 8] [--steps 100]

For each model, side by side in one run: the Xylo build with the range-based state scale
alone (the scale search switched off) and with the search (passes/xylo_quantize.py), both
run by the integer reference on the same input and compared with the float model: hidden
and output spike totals, correlation of per-(sample, neuron) output counts, how often the
most active output neuron agrees, and the warnings compile issued.

- examples/srnn.nir (snnTorch RLeaky 16-64-8, random init): seeded Bernoulli(0.2) input
  (nirc verify's default), compared with nirc's float simulation.
- tests/fidelity/rsynaptic.nir (snnTorch RSynaptic 12-38-7, trained; issue 10's Xylo
  case): its 64 held-out samples, compared with snnTorch's own forward pass stored next to
  it (and the task labels); a third row calibrates on 16 other samples of the task
  (``--calibration tests/fidelity/rsynaptic_calibration.npz``) instead of random spikes.

Prints a table and writes benchmarks/results/fidelity.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from nirc import intref  # noqa: E402
from nirc.driver import compile, random_spike_input  # noqa: E402
from nirc.errors import NircWarning  # noqa: E402
from nirc.nirio import read  # noqa: E402
from nirc.passes import xylo_quantize  # noqa: E402
from nirc.simulate import simulate  # noqa: E402


def corr(a, b) -> float:
    a, b = np.ravel(a).astype(float), np.ravel(b).astype(float)
    return float(np.corrcoef(a, b)[0, 1]) if a.std() and b.std() else float("nan")


def build(graph, dt, search: bool, calibration: str | None = None):
    rounds = xylo_quantize.SEARCH_ROUNDS
    xylo_quantize.SEARCH_ROUNDS = rounds if search else 0
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = compile(graph, "xylo", None, dt=dt, calibration_steps=0,
                             convention={"exporter": "auto"},    # as the CLI: detected
                             calibration=calibration)
    finally:
        xylo_quantize.SEARCH_ROUNDS = rounds
    return result, [str(w.message) for w in caught if issubclass(w.category, NircWarning)]


def measure(name, graph, dt, x, hidden_ref, output_ref, labels=None, calibration=None) -> list[dict]:
    rows = []
    variants = [(False, None), (True, None)] + ([(True, calibration)] if calibration else [])
    for search, cal in variants:
        result, found = build(graph, dt, search, str(cal) if cal else None)
        run = intref.run(result.network, {"input": x}, batch=True)
        lag = result.report["pass_reports"]["latency_steps"]
        out_pop = next(iter(result.network.outputs.values())).source
        hidden_pop = next(p for p in result.network.populations if p != out_pop)
        out = run.outputs["output"][lag[out_pop]:].sum(axis=0)
        ref_out = output_ref[:len(output_ref) - lag[out_pop]].sum(axis=0)
        row = {"model": name, "scales": ("search" if search else "range-based")
               + (", --calibration task samples" if cal else ""),
               "factors": {r["population"]: round(r.get("scale_factor", 1.0), 3)
                           for r in result.report["quantization"]},
               "hidden_spikes": int(run.spikes[hidden_pop].sum()),
               "hidden_spikes_ref": int(hidden_ref.sum()),
               "output_spikes": int(out.sum()), "output_spikes_ref": int(ref_out.sum()),
               "output_count_corr": corr(out, ref_out),
               "same_winner": float(np.mean(out.argmax(-1) == ref_out.argmax(-1))),
               "warnings": len(found)}
        if labels is not None:
            row["accuracy"] = float(np.mean(out.argmax(-1) == labels))
            row["accuracy_ref"] = float(np.mean(output_ref.sum(axis=0).argmax(-1) == labels))
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    srnn = read(ROOT / "examples" / "srnn.nir")
    x = random_spike_input(srnn, args.steps, seed=1, batch=args.samples)["input"]
    floated = simulate(srnn, {"input": x}, batch=True)
    rows += measure("srnn (vs nirc float)", srnn, None, x, floated.spikes["1.lif"],
                    floated.outputs["output"])
    rsyn = read(ROOT / "tests" / "fidelity" / "rsynaptic.nir")
    data = np.load(ROOT / "tests" / "fidelity" / "rsynaptic_data.npz")
    rows += measure("rsynaptic (vs snnTorch)", rsyn, None, data["input"].astype(float),
                    data["hidden"], data["output"], data["labels"],
                    ROOT / "tests" / "fidelity" / "rsynaptic_calibration.npz")
    head = ("model", "scales", "hidden spikes (ref)", "output spikes (ref)", "output count corr.",
            "same winner", "accuracy (ref)", "warnings")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        acc = f"{100 * r['accuracy']:.1f} % ({100 * r['accuracy_ref']:.1f} %)" if "accuracy" in r else ""
        print(f"| {r['model']} | {r['scales']} | {r['hidden_spikes']} ({r['hidden_spikes_ref']}) | "
              f"{r['output_spikes']} ({r['output_spikes_ref']}) | {r['output_count_corr']:.3f} | "
              f"{100 * r['same_winner']:.0f} % | {acc} | {r['warnings']} |")
    out = ROOT / "benchmarks" / "results" / "fidelity.json"
    out.write_text(json.dumps({"benchmark": "fidelity", "samples": args.samples, "steps": args.steps,
                               "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
