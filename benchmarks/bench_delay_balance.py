"""Merge layers of skip and residual graphs on loihi2: chip vs float, with and without balance_delays.

Every Loihi table delivers one step late, so a layer fed by paths of different
lengths receives the short path early unless the balance_delays pass lengthens
it. For each network, in one run: compile for loihi2 with its pass list, and
with the same list minus balance_delays; run the integer reference (bit-exact
with the emulator and with Lava) and the float simulation on the same seeded
Bernoulli input; compare every merge layer's spikes, the chip's step t + L
against the float step t (L: the layer's latency_steps).

Columns: spike agreement (fraction of (step, sample, neuron) where chip and
float both spike or both stay silent), spike Jaccard (spikes in both / spikes
in either), spike-count correlation per neuron, for both builds, and the delay
steps the pass added.

    .venv/bin/python benchmarks/bench_delay_balance.py [--steps 200] [--samples 16]

Prints a table and writes benchmarks/results/delay_balance.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from loihi_networks import residual, skip  # noqa: E402

from nirc import intref  # noqa: E402
from nirc.driver import compile as compile_model, random_spike_input  # noqa: E402
from nirc.simulate import simulate  # noqa: E402
from nirc.target import load_target  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "delay_balance.json"
TARGET = "loihi2"


def networks() -> dict[str, tuple[object, list[str]]]:
    """name -> (graph, merge layers)."""
    return {"skip, 1 vs 2 tables": (skip(depth=1, seed=5), ["merge"]),
            "skip, 1 vs 3 tables": (skip(depth=2, seed=7), ["merge"]),
            "skip, 1 vs 5 tables": (skip(depth=4, seed=8), ["merge"]),
            "residual block": (residual(seed=6), ["res"]),
            "residual block, wide": (residual(n_in=32, width=64, n_out=10, seed=9), ["res"])}


def merge_agreement(chip: np.ndarray, float_: np.ndarray, lag: int) -> dict[str, float]:
    """Chip (T, B, n) spikes at step t + lag against float spikes at step t."""
    steps = chip.shape[0]
    a = chip[lag:].astype(bool)
    b = float_[:steps - lag].astype(bool)
    either = np.count_nonzero(a | b)
    ca, cb = a.sum(axis=0).ravel().astype(float), b.sum(axis=0).ravel().astype(float)
    corr = float(np.corrcoef(ca, cb)[0, 1]) if ca.std() > 0 and cb.std() > 0 else float("nan")
    return {"agreement": float(np.mean(a == b)),
            "jaccard": float(np.count_nonzero(a & b) / either) if either else 1.0,
            "count_correlation": corr}


def measure(graph, merges: list[str], passes: list[str], inputs, steps: int) -> dict:
    target = load_target(TARGET).model_copy(update={"passes": passes})
    result = compile_model(graph, target, None, calibration_steps=0)
    net = result.network
    ran = intref.run(net, inputs, batch=True)
    floated = simulate(graph, inputs, dt=net.dt, batch=True)
    latency = result.report["pass_reports"].get("latency_steps", {})
    rows = {}
    for layer in merges:
        shape = (steps, ran.spikes[layer].shape[1], -1)
        rows[layer] = merge_agreement(ran.spikes[layer].reshape(shape),
                                      floated.spikes[layer].reshape(shape),
                                      int(latency.get(layer, 0)))
    balance = result.report["pass_reports"].get("delay_balance", {})
    return {"layers": rows, "added_delays": balance.get("added_delays", []),
            "relays": balance.get("relays", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args(argv)
    passes = list(load_target(TARGET).passes)
    unbalanced = [p for p in passes if p != "balance_delays"]
    table = Table(title=f"merge layers on {TARGET}: chip (integer, = emulator = Lava) vs float")
    for col in ("network", "layer", "agreement before", "agreement after", "jaccard before",
                "jaccard after", "count corr before", "count corr after", "added delay steps"):
        table.add_column(col, justify="left" if col in ("network", "layer") else "right")
    records = []
    for name, (graph, merges) in networks().items():
        inputs = random_spike_input(graph, args.steps, seed=1, batch=args.samples)
        before = measure(graph, merges, unbalanced, inputs, args.steps)
        after = measure(graph, merges, passes, inputs, args.steps)
        added = sum(a["added_steps"] for a in after["added_delays"])
        for layer in merges:
            b, a = before["layers"][layer], after["layers"][layer]
            table.add_row(name, layer, f"{b['agreement']:.4f}", f"{a['agreement']:.4f}",
                          f"{b['jaccard']:.3f}", f"{a['jaccard']:.3f}",
                          f"{b['count_correlation']:.3f}", f"{a['count_correlation']:.3f}",
                          str(added))
            records.append({"network": name, "layer": layer, "before": b, "after": a,
                            "added_delays": after["added_delays"], "relays": after["relays"]})
    Console().print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "delay_balance", "target": TARGET,
                                   "steps": args.steps, "samples": args.samples,
                                   "input": "seeded Bernoulli spikes, rate 0.2",
                                   "rows": records}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
