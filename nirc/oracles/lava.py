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
    """Lava's recordings ("<population>.spikes|u|v" -> (T, size) int32) and its timings in seconds."""

    recordings: dict[str, np.ndarray]
    build_s: float
    run_s: float
    steps: int


def run_lava(build_dir: Path, inputs: Mapping[str, np.ndarray], steps: int | None = None,
             record: str = "states", timeout_s: float = 600.0) -> LavaRun:
    """Run an emitted Loihi build on Lava's fixed_pt CPU models; ``inputs`` maps port -> (T, *shape)."""
    python = lava_python()
    with tempfile.TemporaryDirectory(prefix="nirc-lava-") as tmp:
        in_path, out_path = Path(tmp) / "input.npz", Path(tmp) / "lava.npz"
        np.savez(in_path, **{name: np.asarray(a) for name, a in inputs.items()})
        cmd = [str(python), str(RUNNER), str(build_dir), "--input", str(in_path),
               "--output", str(out_path), "--record", record]
        if steps is not None:
            cmd += ["--steps", str(steps)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise LavaUnavailable(f"{RUNNER.name} failed (exit {done.returncode}) on {build_dir}: {last}")
        timings = json.loads(done.stdout.strip().splitlines()[-1])
        with np.load(out_path) as npz:
            recordings = {key: npz[key] for key in npz.files}
    return LavaRun(recordings, timings["build_s"], timings["run_s"], timings["steps"])


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
            step = int(np.flatnonzero(differ.any(axis=tuple(range(1, a.ndim))))[0])
            neurons = np.flatnonzero(differ[step].ravel())
            problems.append(f"{key}: first differs at step {step}, neurons {neurons[:8].tolist()}"
                            f"{'...' if neurons.size > 8 else ''}: ours {a[step].ravel()[neurons[:4]].tolist()}"
                            f" vs Lava {b[step].ravel()[neurons[:4]].tolist()}")
    return problems
