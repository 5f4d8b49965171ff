"""Merge layers of skip and residual graphs on loihi2: chip vs float, by pass list, in one run.

Every Loihi table delivers one step late, so a layer fed by paths of different
lengths receives the short path early unless the balance_delays pass lengthens
it. For each network, compile for loihi2 three ways: without balance_delays
and split_signs (what nirc did before them), with balance_delays only, and with
loihi2's pass list as shipped (split_signs too: each mixed-sign table becomes
an excitatory and an inhibitory one with 8-bit magnitudes). Run the integer
reference (bit-exact with the emulator and with Lava) and the float simulation
on the same seeded Bernoulli input, and compare every merge layer's spikes:
the chip's step t + L against the float step t (L: the layer's latency_steps).

Columns: spike agreement (fraction of (step, sample, neuron) where chip and
float both spike or both stay silent) for each pass list; spike Jaccard (spikes
in both / spikes in either) as shipped; the agreement of the merge layer's
deepest input layer as shipped (a merge layer cannot agree better than what
it is fed: what remains below 1 there is weight rounding, not latency); the
delay steps balance_delays added.

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


def networks() -> dict[str, tuple[object, str, str]]:
    """name -> (graph, merge layer, its deepest input layer)."""
    return {"skip, 1 vs 2 tables": (skip(depth=1, seed=5), "merge", "lif0"),
            "skip, 1 vs 3 tables": (skip(depth=2, seed=7), "merge", "lif1"),
            "skip, 1 vs 5 tables": (skip(depth=4, seed=8), "merge", "lif3"),
            "residual block": (residual(seed=6), "res", "block"),
            "residual block, wide": (residual(n_in=32, width=64, n_out=10, seed=9), "res", "block")}


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


def measure(graph, layers: list[str], passes: list[str], inputs, steps: int) -> dict:
    target = load_target(TARGET).model_copy(update={"passes": passes})
    result = compile_model(graph, target, None, calibration_steps=0)
    net = result.network
    ran = intref.run(net, inputs, batch=True)
    floated = simulate(graph, inputs, dt=net.dt, batch=True)
    latency = result.report["pass_reports"].get("latency_steps", {})
    rows = {}
    for layer in layers:
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
    shipped = list(load_target(TARGET).passes)
    lists = {"before": [p for p in shipped if p not in ("balance_delays", "split_signs")],
             "balanced": [p for p in shipped if p != "split_signs"],
             "shipped": shipped}
    table = Table(title=f"merge layers on {TARGET}: chip (integer, = emulator = Lava) vs float")
    for col in ("network", "layer", "agreement before", "balanced", "balanced + split_signs",
                "jaccard", "input layer agreement", "added delay steps"):
        table.add_column(col, justify="left" if col in ("network", "layer") else "right")
    records = []
    for name, (graph, merge, upstream) in networks().items():
        inputs = random_spike_input(graph, args.steps, seed=1, batch=args.samples)
        runs = {k: measure(graph, [merge, upstream], passes, inputs, args.steps)
                for k, passes in lists.items()}
        added = runs["shipped"]["added_delays"]
        steps_added = sorted({a["added_steps"] for a in added})
        row = {k: r["layers"][merge] for k, r in runs.items()}
        table.add_row(name, merge, f"{row['before']['agreement']:.4f}",
                      f"{row['balanced']['agreement']:.4f}", f"{row['shipped']['agreement']:.4f}",
                      f"{row['shipped']['jaccard']:.3f}",
                      f"{runs['shipped']['layers'][upstream]['agreement']:.4f} ({upstream})",
                      ", ".join(map(str, steps_added)))
        records.append({"network": name, "layer": merge, "input_layer": upstream,
                        **{k: {"merge": r["layers"][merge], "input_layer": r["layers"][upstream]}
                           for k, r in runs.items()},
                        "added_delays": added, "relays": runs["shipped"]["relays"]})
    Console().print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "delay_balance", "target": TARGET,
                                   "steps": args.steps, "samples": args.samples,
                                   "input": "seeded Bernoulli spikes, rate 0.2",
                                   "pass_lists": lists, "rows": records}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
