"""The bridge from nirc to Intel Lava's bit-accurate Loihi models, run in their own venv.

Lava needs Python 3.10, so it cannot be imported here: this module finds the
Lava venv (built by tools/lava/setup_venv.sh), runs tools/lava/run_lava.py in
it on an emitted build directory, reads back its recordings, and compares them
with the emulator's. It owns nothing of Lava's arithmetic (that is
nirc.neuron_models.loihi_cuba_lif on our side and Lava's own source on the
other); docs/oracles.md says how the two line up step by step.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from nirc.errors import NircError

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNNER = REPO_ROOT / "tools" / "lava" / "run_lava.py"
SETUP_SCRIPT = REPO_ROOT / "tools" / "lava" / "setup_venv.sh"


class LavaUnavailable(NircError):
    """The Lava venv is missing or broken."""


def lava_python() -> Path:
    """The Lava venv's interpreter: $NIRC_LAVA_VENV/bin/python, else .venv-lava at the repository root."""
    venv = Path(os.environ.get("NIRC_LAVA_VENV", REPO_ROOT / ".venv-lava"))
    python = venv / "bin" / "python"
    if not python.exists():
        raise LavaUnavailable(f"no Lava venv at {venv}: build it with {SETUP_SCRIPT.relative_to(REPO_ROOT)} "
                              "(make lava-venv)")
    return python


@dataclass(frozen=True)
class LavaRun:
    """Lava's recordings ("spikes_<pop>", "u_<pop>", "v_<pop>" -> (T, *shape) int32, as `nirc emulate
    --record` names them) and its timings in seconds."""

    recordings: dict[str, np.ndarray]
    build_s: float
    run_s: float
    steps: int
    lif_processes: int = 0      # one per neuron profile of every population


def run_lava(build_dir: Path, inputs: Mapping[str, np.ndarray], steps: int | None = None,
             record: str = "states", synapses: str = "auto", timeout_s: float = 600.0) -> LavaRun:
    """Run an emitted Loihi build on Lava's fixed_pt CPU models; ``inputs`` maps port -> (T, *shape)."""
    python = lava_python()
    with tempfile.TemporaryDirectory(prefix="nirc-lava-") as tmp:
        in_path, out_path = Path(tmp) / "input.npz", Path(tmp) / "lava.npz"
        several = len(inputs) > 1
        np.savez(in_path, **{f"input_{name}" if several else "input": np.asarray(a)
                             for name, a in inputs.items()})
        cmd = [str(python), str(RUNNER), str(build_dir), "--input", str(in_path),
               "--output", str(out_path), "--record", record, "--synapses", synapses]
        if steps is not None:
            cmd += ["--steps", str(steps)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise LavaUnavailable(f"{RUNNER.name} failed (exit {done.returncode}) on {build_dir}: {last}")
        timings = json.loads(done.stdout.strip().splitlines()[-1])
        with np.load(out_path) as npz:
            recordings = {key: npz[key] for key in npz.files}
    return LavaRun(recordings, timings["build_s"], timings["run_s"], timings["steps"],
                   int(timings.get("lif_processes", 0)))


def mismatches(ours: Mapping[str, np.ndarray], lava: Mapping[str, np.ndarray]) -> list[str]:
    """One line per recording that differs: its name, the first step and the neurons that differ there."""
    problems = []
    for key in sorted(set(ours) | set(lava)):
        if key not in ours or key not in lava:
            problems.append(f"{key}: only in {'ours' if key in ours else 'Lava'}")
            continue
        a, b = np.asarray(ours[key]), np.asarray(lava[key])
        if a.shape != b.shape:
            problems.append(f"{key}: shape {a.shape} (ours) vs {b.shape} (Lava)")
            continue
        differ = a.astype(np.int64) != b.astype(np.int64)
        if differ.any():
            step = int(np.flatnonzero(differ.reshape(differ.shape[0], -1).any(axis=1))[0])
            neurons = np.flatnonzero(differ[step].ravel())
            problems.append(f"{key}: first differs at step {step}, neurons {neurons[:8].tolist()}"
                            f"{'...' if neurons.size > 8 else ''}: ours {a[step].ravel()[neurons[:4]].tolist()}"
                            f" vs Lava {b[step].ravel()[neurons[:4]].tolist()}")
    return problems


def emulator_recordings(build_dir: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Spikes, u and v of every population from nirc's emulator, named as `nirc emulate --record` does."""
    from nirc.emulator import Chip

    run = Chip.load(build_dir).run(inputs, record=True)
    recordings = {f"{q}_{pop}": a for pop, states in run.states.items() for q, a in states.items()}
    recordings.update({f"spikes_{pop}": s for pop, s in run.spikes.items()})
    return recordings


def compare_build(build_dir: Path, inputs: Mapping[str, np.ndarray]) -> tuple[list[str], LavaRun, int]:
    """Run ``build_dir`` on nirc's emulator and on Lava; returns (mismatches, Lava's run, recordings compared)."""
    recordings = emulator_recordings(build_dir, inputs)
    lava = run_lava(Path(build_dir), inputs)
    return mismatches(recordings, lava.recordings), lava, len(recordings)


def main(argv: list[str] | None = None) -> int:
    """`python -m nirc.oracles.lava BUILD_DIR --input IN.npz`: emulator vs Lava, exit 1 on any difference."""
    import argparse
    import sys

    from nirc.commands.emulate import read_npz_inputs
    from nirc.emulator import Chip

    parser = argparse.ArgumentParser(prog="python -m nirc.oracles.lava",
                                     description="Run a loihi2 build on nirc's emulator and on Lava's "
                                                 "bit-accurate models; compare every spike, u and v.")
    parser.add_argument("build", type=Path, metavar="BUILD_DIR")
    parser.add_argument("--input", required=True, metavar="IN.npz",
                        help="'input' (T, *shape) or 'input_<name>' per input port, as for nirc emulate")
    args = parser.parse_args(argv)
    try:
        chip = Chip.load(args.build)
        inputs = read_npz_inputs(args.input, chip.inputs, batch=False, model=chip.model)
        problems, lava, compared = compare_build(args.build, inputs)
    except NircError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in problems:
        print(f"MISMATCH {line}")
    verdict = "differ" if problems else "equal bit for bit"
    print(f"{args.build}: emulator and Lava {verdict} on {compared} recordings x {lava.steps} steps "
          f"(Lava: {lava.build_s:.2f} s to build, {lava.run_s:.2f} s to run)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
