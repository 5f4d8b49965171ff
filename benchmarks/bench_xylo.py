"""nirc's Xylo emulator against SynSense's C++ simulator xylosim on the same config, side by side.

For each network: a Xylo config (XyloSpec) and one input of event counts; then
- xylosim.v2.XyloLayer.evolve on one sample (layer built beforehand, build time apart);
- nirc's XyloFabric.run on one sample, and on a batch of samples (sample-steps).
Reported: time steps per second, synaptic events per second (source events
times their fan-out, counted by nirc) and nirc/xylosim ratios (> 1: nirc
faster). Every recording of nirc's single-sample run is compared with
xylosim's, so a speed-up never hides a difference.

Networks: the compiled examples/srnn.nir (16-64-8), a compiled six-layer
feed-forward CubaLIF network (16-6x64-8, 384 hidden neurons), a random
full-size XyloAudio 2 fabric (16-1000-8, 2 % connectivity) and the same
fabric driven into saturation (many deliveries take the ordered path).

    .venv/bin/python benchmarks/bench_xylo.py [--steps 300] [--batch 32] [--quick]

Prints a table and writes benchmarks/results/xylo.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _timing import best_time  # noqa: E402
from test_xylo_compile import graph, lower  # noqa: E402
from test_xylo_vs_xylosim import RECORDINGS, random_events, random_spec  # noqa: E402

from nirc.neuron_models.xylo_lif import XyloFabric  # noqa: E402
from nirc.nirio import read  # noqa: E402
from nirc.targets.xylo import backend  # noqa: E402
from nirc.targets.xylo.config import read_config  # noqa: E402
from nirc.targets.xylo.xylosim_bridge import run_xylosim, xylosim_layer  # noqa: E402


def compiled_spec(g, dt: float):
    net, report, target = lower(g, dt=dt)
    with tempfile.TemporaryDirectory() as tmp:
        out = backend.emit(net, target, Path(tmp) / "build", report)
        spec, _ = read_config(out)
    return spec


def networks(steps: int):
    srnn = read(ROOT / "examples" / "srnn.nir")
    deep = graph(hidden=(64, 64, 64, 64, 64, 64), recurrent=False, seed=4)
    return {
        "srnn example 16-64-8": (compiled_spec(srnn, float(srnn.metadata.get("dt", 1e-3))),
                                 random_events(11, steps, 16, rate=0.1, max_count=1)),
        "compiled 16-6x64-8": (compiled_spec(deep, 1e-3), random_events(13, steps, 16, rate=0.3, max_count=2)),
        "XyloAudio2 16-1000-8": (random_spec(12, nh=1000, density=0.02, threshold=(2000, 8000),
                                             shifts=(4, 2, 2)),
                                 random_events(12, steps, 16, rate=0.3, max_count=3)),
        "XyloAudio2 saturating": (random_spec(9, nh=1000, density=0.03, threshold=(100, 800), shifts=(4, 3, 3)),
                                  random_events(9, steps, 16, rate=0.4, max_count=5)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="100 steps, batch 16, one repeat")
    args = parser.parse_args()
    steps, batch, repeat = (100, 16, 1) if args.quick else (args.steps, args.batch, 3)

    rows = []
    for name, (spec, counts) in networks(steps).items():
        fabric = XyloFabric.build(spec)
        fabric.run(counts[:2])          # warm-up: one-time library discovery stays out of the timing
        t0 = time.perf_counter()
        layer = xylosim_layer(spec)
        build_s = time.perf_counter() - t0

        def xylosim_run():
            layer.reset_all()
            return run_xylosim(spec, counts, layer)

        t_x, theirs = best_time(xylosim_run, repeat)
        t_1, (ours, _) = best_time(lambda: fabric.run(counts), repeat)
        identical = all(np.array_equal(getattr(ours, f), getattr(theirs, f)) for f in RECORDINGS)
        rng = np.random.default_rng(0)
        many = np.stack([np.roll(counts, int(rng.integers(steps)), axis=0) for _ in range(batch)])
        t_b, (ours_b, _) = best_time(lambda: fabric.run(many), repeat)
        events_1 = ours.synaptic_events
        rows.append({
            "network": name, "hidden": spec.n_hidden, "steps": steps, "batch": batch,
            "synaptic_events_per_sample": events_1, "saturated_currents": ours.saturated_currents,
            "xylosim_build_s": build_s,
            "xylosim_steps_per_s": steps / t_x, "xylosim_events_per_s": events_1 / t_x,
            "nirc_steps_per_s": steps / t_1, "nirc_events_per_s": events_1 / t_1,
            "nirc_batch_sample_steps_per_s": batch * steps / t_b,
            "nirc_batch_events_per_s": ours_b.synaptic_events / t_b,
            "ratio_single": t_x / t_1, "ratio_batch_per_sample": (t_x * batch) / t_b,
            # The same as time ratios (nirc / xylosim, < 1: nirc faster), as the README quotes them.
            "time_ratio_single": t_1 / t_x, "time_ratio_batch_per_sample": t_b / (t_x * batch),
            "bit_identical": identical,
        })

    table = Table(title=f"Xylo: nirc emulator vs xylosim ({steps} steps; batch {batch})")
    for col in ("network", "xylosim steps/s", "nirc steps/s", "nirc/xylosim", "xylosim ev/s",
                "nirc ev/s", "nirc batch sample-steps/s", "batch nirc/xylosim", "identical"):
        table.add_column(col, justify="right" if col != "network" else "left")
    for r in rows:
        table.add_row(r["network"], f"{r['xylosim_steps_per_s']:,.0f}", f"{r['nirc_steps_per_s']:,.0f}",
                      f"{r['ratio_single']:.2f}x", f"{r['xylosim_events_per_s']:,.0f}",
                      f"{r['nirc_events_per_s']:,.0f}", f"{r['nirc_batch_sample_steps_per_s']:,.0f}",
                      f"{r['ratio_batch_per_sample']:.2f}x", "yes" if r["bit_identical"] else "NO")
    Console(width=170).print(table)
    out = ROOT / "benchmarks" / "results" / "xylo.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                               "steps": steps, "batch": batch, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if all(r["bit_identical"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
