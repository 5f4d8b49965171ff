"""nirc's Loihi emulator against Lava's bit-accurate CPU simulation of the same build, in one run.

For each network: compile for loihi2 and emit the build directory, then run the
same Bernoulli input through
- Lava (PyLifModelBitAcc + PyDenseModelBitAcc, Loihi2SimCfg(select_tag="fixed_pt"),
  recording spikes) in the Lava venv, one sample;
- nirc's emulator (nirc.emulator.Chip) on one sample and on a batch of samples.
Reported: time steps per second (sample-steps for the batch), synaptic events
per second (spikes delivered times their fan-out), and the emulator/Lava ratio.
Lava's process build time is reported apart from its stepping time; the
ratios compare stepping only (the emulator's load time is reported too). The
spikes of both sides are compared, so a speed-up never hides a difference.

    .venv/bin/python benchmarks/bench_lava.py [--steps 200] [--batch 32] [--quick]

Prints a table and writes benchmarks/results/lava.json. Needs .venv-lava
(tools/lava/setup_venv.sh).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _events import synaptic_events  # noqa: E402
from _timing import best_time  # noqa: E402
from loihi_networks import bernoulli_input, cnn, mlp, recurrent  # noqa: E402

from nirc.driver import compile as compile_model  # noqa: E402
from nirc.emulator import Chip  # noqa: E402
from nirc.nirio import read  # noqa: E402
from nirc.oracles.lava import mismatches, run_lava  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "lava.json"


def networks(quick: bool) -> dict[str, object]:
    nets = {"mlp 256-512-64": lambda: mlp(256, 512, 64, seed=0),
            "cnn 2x16x16 conv8 pool fc10": lambda: cnn(channels=2, size=16, features=8, n_out=10, seed=1),
            "recurrent 32-128(rec)-8": lambda: recurrent(32, 128, 8, seed=2),
            "examples/srnn.nir": lambda: read(ROOT / "examples" / "srnn.nir")}
    if quick:
        nets = {k: nets[k] for k in ("mlp 256-512-64", "examples/srnn.nir")}
    return nets


def build_synaptic_events(build: Path, spikes: dict[str, np.ndarray], inputs: dict[str, np.ndarray]) -> int:
    """Spikes sent over every table of ``build`` times the number of synapses each one drives."""
    config = json.loads((build / "config.json").read_text())
    with np.load(build / config["arrays"]) as arrays:
        return synaptic_events(config, arrays,
                               lambda source: inputs[source] if source in inputs else spikes[f"spikes_{source}"])


def bench_one(name: str, graph, steps: int, batch: int, build: Path) -> dict:
    net = compile_model(graph, "loihi2", build).network
    single = bernoulli_input(graph, steps, rate=0.2, seed=3)
    batched = {k: np.moveaxis(v, 0, 1) for k, v in
               bernoulli_input(graph, steps, rate=0.2, seed=4, batch=batch).items()}

    lava = run_lava(build, single, record="spikes")
    load_s, chip = best_time(lambda: Chip.load(build), 3)
    single_s, ours = best_time(lambda: chip.run(single), 3)
    batch_s, _ = best_time(lambda: chip.run(batched, batch=True), 3)

    ours_spikes = {f"spikes_{p}": s for p, s in ours.spikes.items()}
    differences = mismatches(ours_spikes, lava.recordings)
    events = build_synaptic_events(build, lava.recordings, single)
    row = {
        "network": name, "neurons": net.neuron_count, "synapses": net.synapse_count,
        "steps": steps, "batch": batch, "synaptic_events_per_sample": events,
        "spikes_bit_exact": not differences, "differences": differences,
        "lava": {"build_s": lava.build_s, "run_s": lava.run_s, "steps_per_s": steps / lava.run_s,
                 "events_per_s": events / lava.run_s},
        "emulator_single": {"load_s": load_s, "run_s": single_s, "steps_per_s": steps / single_s,
                            "events_per_s": events / single_s},
        "emulator_batch": {"run_s": batch_s, "sample_steps_per_s": batch * steps / batch_s},
    }
    row["speedup_single"] = row["emulator_single"]["steps_per_s"] / row["lava"]["steps_per_s"]
    row["speedup_batch"] = row["emulator_batch"]["sample_steps_per_s"] / row["lava"]["steps_per_s"]
    row["speedup_single_with_setup"] = (lava.build_s + lava.run_s) / (load_s + single_s)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="two networks only")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # exporter-quirk warnings of the example files are not the point here

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lava-") as tmp:
        for k, (name, make) in enumerate(networks(args.quick).items()):
            rows.append(bench_one(name, make(), args.steps, args.batch, Path(tmp) / f"build{k}"))

    table = Table(title=f"nirc emulator vs Lava fixed_pt CPU ({args.steps} steps; batch {args.batch})")
    for col in ("network", "neurons", "synapses", "Lava steps/s", "Lava build s", "emu steps/s",
                f"emu x{args.batch} steps/s", "emu Mev/s", "ratio 1", f"ratio x{args.batch}", "equal"):
        table.add_column(col, justify="left" if col == "network" else "right")
    for r in rows:
        table.add_row(r["network"], str(r["neurons"]), str(r["synapses"]),
                      f"{r['lava']['steps_per_s']:.0f}", f"{r['lava']['build_s']:.2f}",
                      f"{r['emulator_single']['steps_per_s']:.0f}",
                      f"{r['emulator_batch']['sample_steps_per_s']:.0f}",
                      f"{r['emulator_single']['events_per_s'] / 1e6:.2f}",
                      f"{r['speedup_single']:.1f}", f"{r['speedup_batch']:.1f}",
                      "yes" if r["spikes_bit_exact"] else "NO")
    Console(width=150).print(table)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "bench_lava", "steps": args.steps, "batch": args.batch,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "results": rows}, indent=1) + "\n")
    print(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0 if all(r["spikes_bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
