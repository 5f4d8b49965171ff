"""numba compilation with the compiled-code cache in the user's cache directory.

``@njit`` is ``numba.njit(cache=True)`` whose cache lives in
``$NIRC_CACHE_DIR`` or else the platform's user cache directory
(``$XDG_CACHE_HOME/nirc`` or ``~/.cache/nirc`` on Linux, ``~/Library/Caches/nirc``
on macOS, ``%LOCALAPPDATA%\\nirc`` on Windows), under ``numba/<source key>``, never
beside the installed sources: a read-only or shared install stays untouched. When
that directory cannot be created or written, caching is off (functions compile once
per process). ``NUMBA_CACHE_DIR``, if the user set it, takes the place of
``numba/``, as numba documents.

The source key is a hash of every nirc module that compiles with numba. numba
checks a cached function against its own file only, so a function that inlined
another module's function (the Speck engine calls the neuron model's update)
would keep the old arithmetic after that other file changed; a new key per
source version gives every version its own cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import numba
from numba.core import config as numba_config


def user_cache_dir() -> Path:
    """nirc's cache directory for this user (not created here)."""
    if os.environ.get("NIRC_CACHE_DIR"):
        return Path(os.environ["NIRC_CACHE_DIR"])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "nirc"
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "nirc"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nirc"


def source_key(roots: list[Path]) -> str:
    """A hash of the Python files under ``roots`` that compile with numba (import this module)."""
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            text = path.read_bytes()
            if b"nirc.jit import" in text:
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + text)
    return digest.hexdigest()[:16]


def package_roots() -> list[Path]:
    """The directories nirc's modules are installed from (nirc, nirc.passes, nirc.targets)."""
    roots = [Path(__file__).parent]
    for name in ("nirc.passes", "nirc.targets"):
        spec = importlib.util.find_spec(name)
        roots += [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    return sorted(set(roots))


@lru_cache(maxsize=1)
def numba_cache_dir() -> str | None:
    """Where numba caches nirc's compiled functions, or None when nowhere is writable."""
    base = (Path(os.environ["NUMBA_CACHE_DIR"]) if os.environ.get("NUMBA_CACHE_DIR")
            else user_cache_dir() / "numba")
    path = base / source_key(package_roots())
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError:
        return None
    return str(path)


def njit(fn=None, **options):
    """``numba.njit`` with nirc's cache location (see the module docstring)."""
    def decorate(f):
        where = numba_cache_dir()
        if where is None:
            return numba.njit(cache=False, **options)(f)
        # numba picks a function's cache locator when it is decorated, from
        # config.CACHE_DIR; set it for our functions only and restore it.
        saved = numba_config.CACHE_DIR
        numba_config.CACHE_DIR = where
        try:
            return numba.njit(cache=True, **options)(f)
        finally:
            numba_config.CACHE_DIR = saved
    return decorate(fn) if fn is not None else decorate
