"""numba's compiled-code cache goes to the user's cache directory, never into the package."""

import os
import subprocess
import sys
from pathlib import Path

import nirc

PACKAGE_DIRS = [Path(nirc.__file__).parent, Path(nirc.__file__).parents[1] / "targets"]

# Compiles (or loads) the Speck engine and the Xylo fabric and runs both once.
SCRIPT = """
import numpy as np
from nirc.jit import numba_cache_dir
from nirc.neuron_models.speck_iaf import update
from nirc.neuron_models.xylo_lif import run_fabric
from nirc.targets.speck.engine import run_events
print(numba_cache_dir())
print(update(5, 3, 7, -10, 0))
"""


def cache_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.suffix in (".nbi", ".nbc")}


def run(tmp_path, cache_dir):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["NIRC_CACHE_DIR"] = str(cache_dir)
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_compiled_code_is_cached_in_the_user_cache_directory(tmp_path):
    before = set().union(*(cache_files(d) for d in PACKAGE_DIRS))
    where, result = run(tmp_path, tmp_path / "cache")
    assert Path(where).parent == tmp_path / "cache" / "numba" and result == "(1, True)"
    assert cache_files(tmp_path / "cache")
    assert set().union(*(cache_files(d) for d in PACKAGE_DIRS)) == before


def test_an_unwritable_cache_directory_turns_caching_off(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    before = set().union(*(cache_files(d) for d in PACKAGE_DIRS))
    where, result = run(tmp_path, blocker)
    assert where == "None" and result == "(1, True)"
    assert set().union(*(cache_files(d) for d in PACKAGE_DIRS)) == before


def test_the_cache_is_keyed_by_every_module_that_compiles_with_numba(tmp_path):
    # numba checks a cached function against its own file only: the Speck engine inlines
    # the neuron model's update, so a change to that other file must change the cache.
    from nirc.jit import source_key
    (tmp_path / "model.py").write_text("from nirc.jit import njit\nSTEP = 1\n")
    (tmp_path / "engine.py").write_text("from nirc.jit import njit\n")
    (tmp_path / "other.py").write_text("X = 1\n")
    first = source_key([tmp_path])
    (tmp_path / "other.py").write_text("X = 2\n")
    assert source_key([tmp_path]) == first
    (tmp_path / "model.py").write_text("from nirc.jit import njit\nSTEP = 2\n")
    assert source_key([tmp_path]) != first
