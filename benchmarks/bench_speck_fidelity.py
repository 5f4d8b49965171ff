"""How closely Speck builds of examples/cnn.nir follow NIR's float semantics, per layer.

    .venv/bin/python benchmarks/bench_speck_fidelity.py [--steps 30] [--samples 32]

For each choice the compiler makes (the membrane floor ``low_threshold`` and the reset
mode in the target's ``backend_options.neuron``, and its ``quantization``: sinabs'
integers or the fidelity search from them) it compiles examples/cnn.nir for
speck2f, runs the emulator on Bernoulli(0.2) inputs (examples/make_inputs.py, seeds
0..samples-1) and compares every spiking layer with nirc's float simulation of the NIR
graph: spikes (chip / float), correlation of per-(sample, neuron) spike counts, spikes
beyond one per (step, neuron) (the chip fires once per input *event*, NIR once per
step), and for the output layer how often the most active neuron agrees (over samples
with a unique float winner). Two more rows isolate single causes: the float
simulation of the graph with the quantized weights read back (quantization alone),
and sinabs' own simulation of the same weights, both as the model was exported
(IAFSqueeze, SingleSpike, MembraneReset, no floor) and as sinabs' from_nir re-imports
an IF (MultiSpike, MembraneSubtract, min_v_mem = -threshold). Prints a table and
writes benchmarks/results/speck_fidelity.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from make_inputs import spike_inputs  # noqa: E402

from nirc.driver import compile  # noqa: E402
from nirc.emulator import Chip  # noqa: E402
from nirc.errors import NircWarning  # noqa: E402
from nirc.nirio import read  # noqa: E402
from nirc.simulate import simulate  # noqa: E402
from nirc.target import load_target  # noqa: E402

MODEL = ROOT / "examples" / "cnn.nir"
RESULTS = ROOT / "benchmarks" / "results" / "speck_fidelity.json"
# (low_threshold, reset_mode, quantization): sinabs' integers, then nirc's fidelity search
# (passes/speck_quantize.py, on the default seeded calibration input).
VARIANTS = [(low, reset, quant) for quant in ("sinabs", "fidelity")
            for low, reset in [("minus_threshold", "nir"), ("state_min", "nir"),
                               ("minus_threshold", "subtract"), ("state_min", "subtract")]]


def inputs(steps: int, samples: int) -> dict[str, np.ndarray]:
    """(T, B, 2, 34, 34) Bernoulli(0.2) spikes, sample b from make_inputs' seed b."""
    return {"input": np.stack([spike_inputs({"input": (2, 34, 34)}, steps, 0.2, seed)["input"]
                               for seed in range(samples)], axis=1)}


def layer_rows(reference: dict[str, np.ndarray], other: dict[str, np.ndarray],
               output: str) -> dict[str, dict]:
    """Per layer: spike totals, count correlation, excess spikes; winner agreement at the output.

    Arrays are (T, B, n) spike counts per step."""
    rows = {}
    for name, f in reference.items():
        c = other[name]
        fc, cc = f.sum(0), c.sum(0)                       # (B, n) counts
        row = {"float_spikes": int(f.sum()), "chip_spikes": int(c.sum()),
               "ratio": round(float(c.sum() / max(f.sum(), 1)), 2),
               "count_correlation": round(float(np.corrcoef(fc.ravel(), cc.ravel())[0, 1]), 3),
               "spikes_beyond_one_per_step": int(np.maximum(c - 1, 0).sum()),
               "count_correlation_one_per_step": round(float(np.corrcoef(
                   fc.ravel(), np.minimum(c, 1).sum(0).ravel())[0, 1]), 3)}
        if name == output:
            top = np.sort(fc, axis=1)
            decided = top[:, -1] > top[:, -2]
            row["same_winner"] = round(float(np.mean(
                fc[decided].argmax(1) == cc[decided].argmax(1))), 3)
            row["winner_samples"] = int(decided.sum())
        rows[name] = row
    return rows


def per_step(spikes: dict[str, np.ndarray], steps: int, samples: int) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.int64).reshape(steps, samples, -1) for k, v in spikes.items()}


def sinabs_runs(graph, x: np.ndarray, quantized: dict[str, dict] | None = None
                ) -> dict[str, dict[str, np.ndarray]]:
    """sinabs' IAFSqueeze on the same weights: as exported and as from_nir re-imports an IF."""
    import sinabs.layers as sl
    import torch
    from sinabs.activation import MembraneReset, MembraneSubtract, MultiSpike, SingleSpike

    steps, samples = x.shape[:2]
    nodes = graph.nodes
    runs = {}
    for label, spike_fn, reset_fn, floor in [
            ("sinabs as exported (SingleSpike, reset to 0, no floor)", SingleSpike,
             MembraneReset(), None),
            ("sinabs from_nir (MultiSpike, subtract, floor -threshold)", MultiSpike,
             MembraneSubtract(), -1.0)]:
        def iaf():
            return sl.IAFSqueeze(batch_size=1, spike_fn=spike_fn, reset_fn=reset_fn,
                                 spike_threshold=1.0, min_v_mem=floor)
        conv1 = torch.nn.Conv2d(2, 8, 3, padding=1, bias=False)
        conv2 = torch.nn.Conv2d(8, 16, 3, padding=1, bias=False)
        fc = torch.nn.Linear(1024, 10, bias=False)
        conv1.weight.data = torch.tensor(np.asarray(nodes["0"].weight), dtype=torch.float32)
        conv2.weight.data = torch.tensor(np.asarray(nodes["3"].weight), dtype=torch.float32)
        fc.weight.data = torch.tensor(np.asarray(nodes["7"].weight), dtype=torch.float32)
        layers = {"1": torch.nn.Sequential(conv1, iaf()),
                  "4": torch.nn.Sequential(sl.SumPool2d(2), conv2, iaf()),
                  "8": torch.nn.Sequential(sl.SumPool2d(2), torch.nn.Flatten(), fc, iaf())}
        out: dict[str, list] = {k: [] for k in layers}
        with torch.no_grad():
            for b in range(samples):
                h = torch.tensor(x[:, b], dtype=torch.float32)
                for name, layer in layers.items():
                    layer[-1].reset_states()
                    h = layer(h)
                    out[name].append(h.numpy().reshape(steps, -1))
        runs[label] = {k: np.stack(v, axis=1).astype(np.int64) for k, v in out.items()}
    return runs


def dequantized_graph(graph, network):
    """The NIR graph with each layer's weights replaced by its integers / scale."""
    from nirc.targets.speck.network import from_hwnet

    layers = {l.name: l for l in from_hwnet(network).layers}
    weight_node = {"1": "0", "4": "3", "8": "7"}
    nodes = dict(graph.nodes)
    for layer, node in weight_node.items():
        q = layers[layer]
        w = q.weight / q.scale
        old = nodes[node]
        w = w.reshape(np.asarray(old.weight).shape)
        th = q.threshold_high / q.scale
        nodes[node] = dataclasses.replace(old, weight=w / th)   # threshold 1 in the graph
    return dataclasses.replace(graph, nodes=nodes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args(argv)
    graph = read(MODEL)
    x = inputs(args.steps, args.samples)
    floated = simulate(graph, x, dt=1.0, batch=True)
    reference = per_step(floated.spikes, args.steps, args.samples)
    output = "8"
    results = {"model": "examples/cnn.nir", "target": "speck2f", "steps": args.steps,
               "samples": args.samples, "input": "Bernoulli(0.2), make_inputs seeds 0..samples-1",
               "rows": []}
    base = load_target("speck2f")
    network = None
    for low, reset, quant in VARIANTS:
        options = base.backend_options.model_copy(update={
            "quantization": quant,
            "neuron": base.backend_options.neuron.model_copy(
                update={"low_threshold": low, "reset_mode": reset})})
        target = base.model_copy(update={"backend_options": options})
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore", NircWarning)
            result = compile(graph, target, Path(tmp) / "build", dt=1.0)
            run = Chip.load(Path(tmp) / "build").run(x, batch=True)
        if low == "state_min" and reset == "nir" and quant == "sinabs":
            network = result.network
        results["rows"].append({"variant": f"chip, low_threshold {low}, reset {reset}, "
                                           f"quantization {quant}",
                                "layers": layer_rows(reference, per_step(
                                    run.spikes, args.steps, args.samples), output)})
    quant = simulate(dequantized_graph(graph, network), x, dt=1.0, batch=True)
    results["rows"].append({"variant": "float simulation of the quantized weights",
                            "layers": layer_rows(reference, per_step(
                                quant.spikes, args.steps, args.samples), output)})
    for label, spikes in sinabs_runs(graph, x["input"]).items():
        results["rows"].append({"variant": label, "layers": layer_rows(reference, spikes,
                                                                      output)})
    print(markdown(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


def markdown(results: dict) -> str:
    lines = ["| run | layer | spikes vs float | count corr. | spikes beyond 1/step | "
             "corr. at <= 1/step | same winner |", "|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        for name, r in row["layers"].items():
            winner = f"{r['same_winner']:.0%}" if "same_winner" in r else ""
            lines.append(f"| {row['variant']} | {name} | {r['chip_spikes']} / {r['float_spikes']}"
                         f" ({r['ratio']}x) | {r['count_correlation']:.3f} | "
                         f"{r['spikes_beyond_one_per_step']} | "
                         f"{r['count_correlation_one_per_step']:.3f} | {winner} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
