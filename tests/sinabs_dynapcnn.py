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
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module
