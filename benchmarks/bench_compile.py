"""Compile time, peak memory and emulator throughput for CNNs of 10^4 ... 10^7 synapses.

    .venv/bin/python benchmarks/bench_compile.py [--sizes 1e4 1e5 1e6 1e7] [--cpsat-max 1e6]

Each network is two 3x3 convolutions (padding 1) with LIF layers, C channels
on an S x S map, compiled for benchmarks/targets/loihi2_1024.yaml (loihi2's
arithmetic and cores, 1024 of them so 10^7 synapses fit). Every compile runs
in its own subprocess so its peak resident memory (ru_maxrss) is its own.
Placement runs both ways where affordable: OR-Tools CP-SAT (the default) and
the sequential fill, side by side as a ratio. The emulator is timed on the
compiled build, one sample and a batch of 16, counting synaptic events
(spikes x their synapses). Prints a table and writes benchmarks/results/compile.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _events import synaptic_events

HERE = Path(__file__).resolve().parent
TARGET = HERE / "targets" / "loihi2_1024.yaml"
RESULTS = HERE / "results" / "compile.json"

# (channels, map side) giving about 10^4, 10^5, 10^6 and 10^7 synapses.
SHAPES = {1e4: (2, 12), 1e5: (4, 20), 1e6: (8, 28), 1e7: (16, 47)}


def cnn(channels: int, side: int):
    from nirc.ir.nodes import LIF, Conv2d, Input, NIRGraph, Output

    rng = np.random.default_rng(0)
    shape = (channels, side, side)

    def lif():
        return LIF(tau=np.full(shape, 0.01), r=np.full(shape, 1.0), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, 0.5), v_reset=np.zeros(shape))

    def conv():
        return Conv2d(weight=rng.normal(0, 0.4, (channels, channels, 3, 3)), padding=1,
                      bias=np.zeros(channels))

    return NIRGraph(nodes={"in": Input(shape=np.array(shape)), "c1": conv(), "l1": lif(),
                           "c2": conv(), "l2": lif(), "out": Output(shape=np.array(shape))},
                    edges=(("in", "c1"), ("c1", "l1"), ("l1", "c2"), ("c2", "l2"),
                           ("l2", "out")))


def one(channels: int, side: int, method: str, emulate: bool) -> dict:
    """Compile (and optionally emulate) one network in this process; returns measurements."""
    from nirc.driver import compile
    from nirc.emulator import Chip

    graph = cnn(channels, side)
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp) / "build"
        start = time.perf_counter()
        result = compile(graph, str(TARGET), build, calibration_steps=20,
                         partition_method=method)
        total = time.perf_counter() - start
        out = {"channels": channels, "side": side, "partition_method": method,
               "neurons": result.network.neuron_count, "synapses": result.network.synapse_count,
               "cores": result.placement.cores_used, "lower_bound": result.placement.lower_bound,
               "stages_s": {k: round(v, 4) for k, v in result.timings.items()},
               "compile_s": round(total, 4),
               "build_bytes": sum(p.stat().st_size for p in build.iterdir() if p.is_file())}
        if emulate:
            chip = Chip.load(build)
            rng = np.random.default_rng(1)
            steps = 20
            for batch in (1, 16):
                x = (rng.random((steps, batch, channels, side, side)) < 0.2).astype(np.float64)
                start = time.perf_counter()
                res = chip.run({"in": x}, batch=True)
                elapsed = time.perf_counter() - start
                events = synaptic_events(chip.config, chip._arrays, {**res.spikes, "in": x}.get)
                out[f"emulate_batch{batch}"] = {
                    "steps": steps, "seconds": round(elapsed, 4),
                    "steps_per_s": round(steps / elapsed, 2),
                    "sample_steps_per_s": round(steps * batch / elapsed, 2),
                    "synaptic_events_per_s": round(events / elapsed, 1)}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=sorted(SHAPES))
    parser.add_argument("--cpsat-max", type=float, default=1e6,
                        help="also place with CP-SAT up to this many synapses (default 1e6)")
    parser.add_argument("--emulate-max", type=float, default=1e6,
                        help="time the emulator up to this many synapses (default 1e6)")
    parser.add_argument("--one", nargs=4, metavar=("C", "S", "METHOD", "EMULATE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        c, s, method, emulate = args.one
        print(json.dumps(one(int(c), int(s), method, emulate == "1")))
        return 0

    rows = []
    for size in args.sizes:
        c, s = SHAPES[size]
        methods = ["sequential"] + (["cpsat"] if size <= args.cpsat_max else [])
        for method in methods:
            emulate = method == "sequential" and size <= args.emulate_max
            proc = subprocess.run([sys.executable, __file__, "--one", str(c), str(s), method,
                                   "1" if emulate else "0"], capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                rows.append({"size": size, "partition_method": method, "error":
                             proc.stderr.strip().splitlines()[-1]})
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["size"] = size
            rows.append(row)
            print(f"  {int(size):>9} synapses ({row['synapses']}), {method}: "
                  f"{row['compile_s']:.2f} s, {row['peak_rss_mb']:.0f} MB", file=sys.stderr)

    print(f"\n{'synapses':>10} {'neurons':>8} {'cores':>5} {'passes s':>9} {'calib s':>8} "
          f"{'seq part s':>10} {'emit s':>7} {'seq total':>9} {'cpsat total':>11} {'ratio':>6} "
          f"{'peak MB':>8}")
    by = {}
    for r in rows:
        by.setdefault(r["size"], {})[r["partition_method"]] = r
    for size, runs in by.items():
        seq = runs.get("sequential", {})
        cp = runs.get("cpsat", {})
        if "error" in seq:
            print(f"{int(size):>10} error: {seq['error']}")
            continue
        st = seq["stages_s"]
        passes = sum(v for k, v in st.items() if k not in ("calibrate", "partition", "emit"))
        cps = cp.get("compile_s")
        ratio = f"{cps / seq['compile_s']:.1f}x" if cps else "-"
        print(f"{seq['synapses']:>10} {seq['neurons']:>8} {seq['cores']:>5} {passes:>9.2f} "
              f"{st.get('calibrate', 0):>8.2f} {st['partition']:>10.2f} {st['emit']:>7.2f} "
              f"{seq['compile_s']:>9.2f} {cps if cps else '-':>11} {ratio:>6} "
              f"{max(seq['peak_rss_mb'], cp.get('peak_rss_mb', 0)):>8.0f}")
    print(f"\n{'synapses':>10} {'batch':>5} {'steps/s':>8} {'sample-steps/s':>14} "
          f"{'syn. events/s':>14}")
    for runs in by.values():
        seq = runs.get("sequential", {})
        for b in (1, 16):
            e = seq.get(f"emulate_batch{b}")
            if e:
                print(f"{seq['synapses']:>10} {b:>5} {e['steps_per_s']:>8.1f} "
                      f"{e['sample_steps_per_s']:>14.1f} {e['synaptic_events_per_s']:>14.3g}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "compile", "target": TARGET.name, "rows": rows},
                                  indent=1) + "\n")
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
