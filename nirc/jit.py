"""numba compilation with the compiled-code cache in the user's cache directory.

``@njit`` is ``numba.njit(cache=True)`` whose cache lives in
``$NIRC_CACHE_DIR`` or else the platform's user cache directory
(``$XDG_CACHE_HOME/nirc`` or ``~/.cache/nirc`` on Linux, ``~/Library/Caches/nirc``
on macOS, ``%LOCALAPPDATA%\\nirc`` on Windows), under ``numba/``, never beside
the installed sources: a read-only or shared install stays untouched. When that
directory cannot be created or written, caching is off (functions compile once
per process). ``NUMBA_CACHE_DIR``, if the user set it, wins, as numba documents.
"""

from __future__ import annotations

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


@lru_cache(maxsize=1)
def numba_cache_dir() -> str | None:
    """Where numba caches nirc's compiled functions, or None when nowhere is writable."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    path = user_cache_dir() / "numba"
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
