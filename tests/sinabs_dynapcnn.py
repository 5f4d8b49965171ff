"""sinabs' DYNAP-CNN backend without samna, for cross-checks.

``sinabs.backend.dynapcnn``'s package __init__ (and its chips/__init__) import
samna, whose PyPI package is an installer stub that tries to download the real
one. The modules the tests need — dynapcnn_layer (memory_summary), mapping
(get_valid_mapping), discretize, and chips/dynapcnn.py (get_constraints) — do
not use samna at runtime, so this loads them with empty parent packages and a
placeholder ``samna`` module, then restores sys.modules.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

MODULES = ("dynapcnn_layer", "mapping", "discretize", "chips.dynapcnn")


def _restore(saved: dict[str, types.ModuleType | None]) -> None:
    """Put sys.modules' entries back as they were before a stub replaced them."""
    for key, module in saved.items():
        if module is None:
            sys.modules.pop(key, None)
        else:
            sys.modules[key] = module


def load() -> dict[str, types.ModuleType]:
    import sinabs

    root = Path(sinabs.__file__).parent / "backend" / "dynapcnn"
    saved = {k: sys.modules.get(k) for k in ("samna", "sinabs.backend.dynapcnn",
                                              "sinabs.backend.dynapcnn.chips")}
    try:
        sys.modules["samna"] = types.ModuleType("samna")
        pkg = types.ModuleType("sinabs.backend.dynapcnn")
        pkg.__path__ = [str(root)]
        chips = types.ModuleType("sinabs.backend.dynapcnn.chips")
        chips.__path__ = [str(root / "chips")]
        sys.modules["sinabs.backend.dynapcnn"] = pkg
        sys.modules["sinabs.backend.dynapcnn.chips"] = chips
        return {name: importlib.import_module(f"sinabs.backend.dynapcnn.{name}")
                for name in MODULES}
    finally:
        _restore(saved)


class _Placeholder(types.ModuleType):
    """A module whose every attribute is a stand-in (samna's names used at import time)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        from unittest import mock
        return mock.MagicMock(name=f"{self.__name__}.{name}")


def dynapcnn_network_class():
    """sinabs' DynapcnnNetwork, importable without samna (its CPU forward never calls samna).

    The package imports samna and its chip submodules at import time (to talk to
    devices); placeholders stand in for them while sinabs.backend.dynapcnn loads.
    """
    names = ("samna", "samnagui", "samna.speck2f", "samna.speck2f.configuration", "samna.speck2e",
             "samna.speck2e.configuration", "samna.specksim", "samna.specksim.nodes",
             "samna.dynapcnn", "samna.dynapcnn.configuration")
    saved = {k: sys.modules.get(k) for k in names}
    try:
        for name in names:
            sys.modules[name] = _Placeholder(name)
        sys.modules["samna"].__path__ = []
        from sinabs.backend.dynapcnn import DynapcnnNetwork
        return DynapcnnNetwork
    finally:
        _restore(saved)
