"""Speck emulator against sinabs' DynapcnnNetwork CPU forward, side by side, in one run.

    .venv/bin/python benchmarks/bench_speck_sinabs.py [--steps 20] [--repeats 7]

A 64x64 spiking CNN written in sinabs (5 conv/IAF layers: 8@64x64, 16@32x32,
32@16x16, 16@8x8 and a 10-neuron readout, 58k neurons; torch's default
initialisation, seed 0) is exported with ``sinabs.to_nir``, compiled by nirc
for speck2f and run by nirc's Speck emulator from the emitted config.json; the
same torch model runs through sinabs' ``DynapcnnNetwork(discretize=True)``
forward on the CPU (the chip's simulation sinabs ships). Input: Bernoulli(0.1)
events on 2x64x64 for ``--steps`` steps, and the same with every count x10.
Both are warm (one run first); times are medians of ``--repeats`` runs taken
alternately, and the figure is the ratio nirc / sinabs (< 1: nirc is faster).
Both use one thread (torch.set_num_threads(1)): nirc's emulator is single-threaded,
and on a shared 2-core machine torch's second thread mostly waits (its forward
was 10-40x slower with 2 threads under load), so one thread is the fair and
the conservative comparison.
Prints a table and writes benchmarks/results/speck_sinabs.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from nirc.driver import compile as nirc_compile  # noqa: E402
from nirc.targets.speck.emulate import SpeckEmulator  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "speck_sinabs.json"


def sinabs_cnn():
    import sinabs.layers as sl
    import torch

    torch.manual_seed(0)
    conv = lambda i, o: torch.nn.Conv2d(i, o, 3, padding=1, bias=False)  # noqa: E731
    iaf = lambda: sl.IAFSqueeze(batch_size=1)                            # noqa: E731
    return torch.nn.Sequential(
        conv(2, 8), iaf(), sl.SumPool2d(2), conv(8, 16), iaf(), sl.SumPool2d(2),
        conv(16, 32), iaf(), sl.SumPool2d(2), conv(32, 16), iaf(),
        torch.nn.Flatten(), torch.nn.Linear(16 * 8 * 8, 10, bias=False), iaf())


def alternate(runs: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each callable, calls interleaved so both see the same machine load."""
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    logging.getLogger("nirc").setLevel(logging.WARNING)
    import sinabs
    import torch

    from sinabs_dynapcnn import dynapcnn_network_class

    torch.set_num_threads(1)
    snn = sinabs_cnn()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = sinabs.to_nir(snn, torch.zeros(1, 2, 64, 64))
        import nir
        nir.write(Path(tmp) / "cnn64.nir", graph)
        nirc_compile(Path(tmp) / "cnn64.nir", "speck2f", Path(tmp) / "build", dt=1.0,
                     calibration_steps=0)
        emulator = SpeckEmulator.load(Path(tmp) / "build" / "config.json")
        # A fresh copy (same seed, same weights): to_nir's trace leaves state views behind.
        dynapcnn = dynapcnn_network_class()(sinabs_cnn(), input_shape=(2, 64, 64),
                                            discretize=True)
    neurons = sum(int(np.prod(c.out_shape)) for c in emulator.cores.values())
    rng = np.random.default_rng(0)
    base = (rng.random((args.steps, 2, 64, 64)) < 0.1).astype(np.int64)
    rows = []
    for label, scale in [("original rate (Bernoulli 0.1)", 1), ("10x event counts", 10)]:
        x = base * scale
        xt = torch.tensor(x, dtype=torch.float32)

        def run_sinabs():
            with torch.no_grad():
                sinabs.reset_states(dynapcnn)
                return dynapcnn(xt)

        def run_nirc():
            # Spikes of every layer, as `nirc emulate` without --record (sinabs returns less:
            # the last layer's output).
            return emulator.run({"input": x}, record=False)

        run_sinabs(), run_nirc()                                       # warm-up
        med = alternate({"nirc": run_nirc, "sinabs": run_sinabs}, args.repeats)
        spikes = {k: int(v.sum()) for k, v in run_nirc()["spikes"].items()}
        rows.append({"input": label, "input_events": int(x.sum()), "layer_spikes": spikes,
                     "nirc_s": med["nirc"], "sinabs_s": med["sinabs"],
                     "ratio_nirc_over_sinabs": med["nirc"] / med["sinabs"]})
    print(f"64x64 CNN, {neurons} neurons, {args.steps} steps, median of {args.repeats}")
    head = f"{'input':<30} {'events':>8} {'nirc s':>8} {'sinabs s':>9} {'nirc/sinabs':>11}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['input']:<30} {r['input_events']:>8} {r['nirc_s']:>8.4f} {r['sinabs_s']:>9.4f} "
              f"{r['ratio_nirc_over_sinabs']:>11.2f}")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps({
        "machine": platform.platform(), "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(), "network": "sinabs 64x64 CNN via sinabs.to_nir",
        "neurons": neurons, "steps": args.steps, "repeats": args.repeats, "rows": rows},
        indent=1) + "\n")
    print(f"wrote {RESULT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
