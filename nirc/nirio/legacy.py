"""What older NIR files call things, and the values NIR gives parameters a file leaves out.

Format history, from the ``nir`` releases:

- 0.0.x: the file root holds a group ``nodes`` (members "0", "1", ... in list order) and
  a dataset ``edges`` of integer index pairs; no ``version``. ``Linear`` carried
  ``weights`` and ``bias`` (the map 1.0 calls Affine), Conv1d/Conv2d ``weights``, LIF
  (0.0.1) its threshold as ``theta``, and Output no ``shape``.
- 0.1.0: root group ``node`` holding a NIRGraph; Affine(weight, bias), Linear(weight);
  Flatten without ``input_type``; still no ``version``.
- 0.2.0 .. 1.0.4: ``version`` dataset; Flatten ``input_type``; CubaLIF ``w_in``.
- 1.0.5+: ``v_reset`` for IF, LIF and CubaLIF; the CubaLI node.

Everything here is a table read by the generic reader; nothing is per node type in code.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

# (node type, name in an old file) -> NIR 1.0 parameter name.
RENAMED_FIELDS: dict[tuple[str, str], str] = {
    ("Affine", "weights"): "weight",
    ("Linear", "weights"): "weight",
    ("Conv1d", "weights"): "weight",
    ("Conv2d", "weights"): "weight",
    ("LIF", "theta"): "v_threshold",
    ("IF", "theta"): "v_threshold",
}

# A node type whose 0.0.x meaning is a different 1.0 type when it carries this field:
# 0.0.x "Linear" had a bias, i.e. it was what 1.0 calls Affine.
RETYPED_IF_PRESENT: dict[tuple[str, str], str] = {
    ("Linear", "bias"): "Affine",
}

# Parameters NIR defines a value for when a file leaves them out (older writers did):
# name -> value computed from the parameters that were read.
ABSENT_DEFAULTS: dict[str, Callable[[Mapping[str, Any]], np.ndarray]] = {
    "v_reset": lambda p: np.zeros_like(np.asarray(p["v_threshold"])),
    "w_in": lambda p: np.ones_like(np.asarray(p["v_leak"])),
    "bias": lambda p: np.zeros(np.asarray(p["weight"]).shape[0],
                               dtype=np.asarray(p["weight"]).dtype),
}


def current_type(type_name: str, entry_names: set[str]) -> str:
    """The NIR 1.0 type a node stored as ``type_name`` with these entries stands for."""
    for (old_type, marker), new_type in RETYPED_IF_PRESENT.items():
        if type_name == old_type and marker in entry_names:
            return new_type
    return type_name


def current_name(type_name: str, entry_name: str) -> str:
    """The NIR 1.0 parameter name of an entry of a node of (1.0) type ``type_name``."""
    return RENAMED_FIELDS.get((type_name, entry_name), entry_name)


def absent_default(field_name: str, params: Mapping[str, Any]) -> np.ndarray | None:
    """NIR's value for an absent parameter, or None when NIR defines none."""
    make = ABSENT_DEFAULTS.get(field_name)
    if make is None:
        return None
    try:
        return make(params)
    except KeyError:  # the parameter it derives from is missing too; reported separately
        return None
