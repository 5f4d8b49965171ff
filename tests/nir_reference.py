"""The reference ``nir`` package (1.0.8), run in a child interpreter for compatibility tests.

The venv's own nir is used when it is 1.0.8. Otherwise (sinabs 3.1.3 asks for nir<=1.0.4,
so an environment may hold that) nir 1.0.8 is installed once with ``pip install --no-deps
--target`` into its own directory (in the venv, or $NIRC_REFERENCE_NIR) and imported first
from there. Either way it runs in a child process, so the test process keeps its own nir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

REFERENCE_VERSION = "1.0.8"


def reference_dir() -> Path:
    override = os.environ.get("NIRC_REFERENCE_NIR")
    return Path(override) if override else Path(sys.prefix) / f"reference-nir-{REFERENCE_VERSION}"


def ensure_reference() -> Path | None:
    """Where nir 1.0.8 is (None: the venv's own), installing it on first use (skip if impossible)."""
    try:
        if metadata.version("nir") == REFERENCE_VERSION:
            return None
    except metadata.PackageNotFoundError:
        pass
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
    where = ensure_reference()
    env = dict(os.environ)
    if where is not None:
        env["PYTHONPATH"] = str(where)
    done = subprocess.run([sys.executable, str(script)], input=json.dumps(payload),
                          capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"reference nir failed:\n{done.stderr}")
    return json.loads(done.stdout)
