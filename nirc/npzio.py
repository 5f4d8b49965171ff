"""The CLI's NPZ files: named input arrays read and checked, named output arrays written atomically.

Layout shared by `nirc simulate`, `nirc emulate` and `nirc verify --input`:
one array ``input`` when the model has a single input (``input_<name>`` per
input otherwise), shaped (T, *shape), or (T, B, *shape) with a batch axis;
outputs likewise ``output`` / ``output_<name>``.
"""

from __future__ import annotations

import zipfile

import numpy as np

from nirc.atomic import replacing
from nirc.errors import NircError


def input_key(name: str, several: bool) -> str:
    return f"input_{name}" if several else "input"


def output_key(name: str, several: bool) -> str:
    return f"output_{name}" if several else "output"


def read_inputs(path: str, shapes: dict[str, tuple[int, ...]], batch: bool = False,
                kind: str = "input") -> dict[str, np.ndarray]:
    """The array for each input (``kind`` names what they feed in messages, e.g. "Input node");
    NircError naming the file and the array on any problem."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise NircError("no such file", file=path) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise NircError(f"cannot read as .npz ({why})", file=path) from None
    several = len(shapes) > 1
    lead = 2 if batch else 1
    inputs = {}
    steps = None
    for name, shape in shapes.items():
        key = input_key(name, several)
        expected = f"({'T, B' if batch else 'T'}, {', '.join(map(str, shape))})"
        if key not in arrays:
            raise NircError(f"no array '{key}' for {kind} '{name}' (expected shape {expected}; "
                            f"the file holds {sorted(arrays) or 'nothing'})", file=path)
        array = arrays[key]
        if array.ndim != len(shape) + lead or tuple(array.shape[lead:]) != tuple(shape):
            raise NircError(f"array '{key}' has shape {tuple(array.shape)}, expected {expected} "
                            f"for {kind} '{name}'", file=path)
        if array.dtype.kind not in "biuf":
            raise NircError(f"array '{key}' has dtype {array.dtype}, expected numbers", file=path)
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise NircError(f"array '{key}' contains NaN or Inf", file=path)
        if steps is not None and array.shape[:lead] != steps:
            raise NircError(f"array '{key}' has (T{', B' if batch else ''}) = "
                            f"{array.shape[:lead]}, the others {steps}", file=path)
        steps = array.shape[:lead]
        inputs[name] = array
    return inputs


def write_atomically(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed NPZ so that a failure leaves no file."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
