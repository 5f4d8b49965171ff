"""The reference ``nir`` package (1.0.8), run in a child interpreter for compatibility tests.

The shared venv holds nir 1.0.4 (sinabs 3.1.3 requires nir<=1.0.4), so nir 1.0.8 is
installed once with ``pip install --no-deps --target`` into its own directory (beside the
venv, or $NIRC_REFERENCE_NIR) and imported first from there in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REFERENCE_VERSION = "1.0.8"


def reference_dir() -> Path:
    override = os.environ.get("NIRC_REFERENCE_NIR")
    return Path(override) if override else Path(sys.prefix) / f"reference-nir-{REFERENCE_VERSION}"


def ensure_reference() -> Path:
    """The directory holding nir 1.0.8, installing it there on first use (skip if impossible)."""
    target = reference_dir()
    if not (target / "nir" / "__init__.py").is_file():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                               "--target", str(target), f"nir=={REFERENCE_VERSION}"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot install the reference nir {REFERENCE_VERSION}: "
                        f"{done.stderr.strip().splitlines()[-1:]}")
    return target


def run_reference(script: Path, payload: object) -> object:
    """Run ``script`` under nir 1.0.8 with ``payload`` as JSON on stdin; its stdout as JSON."""
    env = dict(os.environ, PYTHONPATH=str(ensure_reference()))
    done = subprocess.run([sys.executable, str(script)], input=json.dumps(payload),
                          capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"reference nir failed:\n{done.stderr}")
    return json.loads(done.stdout)
