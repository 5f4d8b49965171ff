"""The CLI's NPZ files: named input arrays read and checked, named output arrays written atomically.

Layout shared by `nirc simulate`, `nirc emulate` and `nirc verify --input`:
one array ``input`` when the model has a single input (``input_<name>`` per
input otherwise), shaped (T, *shape), or (T, B, *shape) with a batch axis;
outputs likewise ``output`` / ``output_<name>``.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from nirc.atomic import replacing
from nirc.errors import NircError


def input_key(name: str, several: bool) -> str:
    return f"input_{name}" if several else "input"


def output_key(name: str, several: bool) -> str:
    return f"output_{name}" if several else "output"


# Limits, checked from the archive's and each member's header before any data is read
# (docs/limits.md). Members other than the inputs the model needs are never opened.
MAX_INPUT_BYTES = 1 << 30      # all input arrays of one file together (1 GiB)
MAX_STEPS = 1_000_000          # time steps of one run
NPY_MAGIC = b"\x93NUMPY"


def read_inputs(path: str, shapes: dict[str, tuple[int, ...]], batch: bool = False,
                kind: str = "input") -> dict[str, np.ndarray]:
    """The array for each input (``kind`` names what they feed in messages, e.g. "Input node");
    NircError naming the file and the array on any problem.

    Never unpickles: a member holding Python objects is refused, as is anything larger
    than MAX_INPUT_BYTES or longer than MAX_STEPS, before its data is read."""
    several = len(shapes) > 1
    lead = 2 if batch else 1
    wanted = {input_key(name, several): name for name in shapes}
    arrays, present = _read_members(path, list(wanted))
    inputs = {}
    steps = None
    for name, shape in shapes.items():
        key = input_key(name, several)
        expected = f"({'T, B' if batch else 'T'}, {', '.join(map(str, shape))})"
        if key not in arrays:
            raise NircError(f"no array '{key}' for {kind} '{name}' (expected shape {expected}; "
                            f"the file holds {present or 'nothing'})", file=path)
        array = arrays[key]
        if array.ndim != len(shape) + lead or tuple(array.shape[lead:]) != tuple(shape):
            raise NircError(f"array '{key}' has shape {tuple(array.shape)}, expected {expected} "
                            f"for {kind} '{name}'", file=path)
        if array.shape[0] == 0:
            raise NircError(f"array '{key}' has 0 time steps; give at least one", file=path)
        if batch and array.shape[1] == 0:
            raise NircError(f"array '{key}' has 0 samples on its batch axis", file=path)
        if array.shape[0] > MAX_STEPS:
            raise NircError(f"array '{key}' has {array.shape[0]:,} time steps, more than the "
                            f"{MAX_STEPS:,} nirc runs at once; split the input", file=path)
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise NircError(f"array '{key}' contains NaN or Inf", file=path)
        if steps is not None and array.shape[:lead] != steps:
            raise NircError(f"array '{key}' has (T{', B' if batch else ''}) = "
                            f"{array.shape[:lead]}, the others {steps}", file=path)
        steps = array.shape[:lead]
        inputs[name] = array
    return inputs


def read_archive(path: str, budget: int) -> dict[str, np.ndarray]:
    """Every array of the NPZ archive at ``path``, each read after its header is checked
    (numbers only, never a pickle; no more than ``budget`` bytes in all)."""
    _, names = _read_members(path, [], budget, max_steps=None)
    return _read_members(path, names, budget, max_steps=None)[0]


def _read_members(path: str, keys: list[str], budget: int = MAX_INPUT_BYTES,
                  max_steps: int | None = MAX_STEPS) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays ``keys`` of the NPZ archive at ``path`` (those present), and the names of
    every member. Only the members asked for are read, each after its header is checked."""
    file = Path(path)
    if not file.exists():
        raise NircError("no such file", file=path)
    if not file.is_file():
        raise NircError("is not a regular file (an .npz archive is a file)", file=path)
    try:
        with open(file, "rb") as f:
            head = f.read(len(NPY_MAGIC))
        if not head:
            raise NircError("is empty (0 bytes); expected an .npz archive", file=path)
        if head == NPY_MAGIC:
            raise NircError("is a single .npy array, not an .npz archive; save the input with "
                            "numpy.savez(path, input=array)", file=path)
        with zipfile.ZipFile(file) as zf:
            members = {info.filename[:-len(".npy")]: info for info in zf.infolist()
                       if info.filename.endswith(".npy")}
            arrays = {}
            for key in keys:
                if key in members:
                    arrays[key] = _read_member(zf, members[key], key, path, budget, max_steps)
                    budget -= arrays[key].nbytes
            return arrays, sorted(members)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError,
            NotImplementedError) as err:
        if isinstance(err, FileNotFoundError):
            raise NircError("no such file", file=path) from None
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise NircError(f"cannot read as .npz ({why})", file=path) from None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, path: str,
                 budget: int, max_steps: int | None) -> np.ndarray:
    with zf.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = header(member)
        except ValueError as err:
            raise NircError(f"array '{key}' is not a .npy array ({_first_line(err)})",
                            file=path) from None
        if dtype.hasobject:
            raise NircError(f"array '{key}' holds Python objects (a pickle); nirc never "
                            f"unpickles input files: store numbers", file=path)
        if dtype.kind not in "biuf":
            raise NircError(f"array '{key}' has dtype {dtype}, expected numbers", file=path)
        if max_steps is not None and len(shape) and shape[0] > max_steps:
            raise NircError(f"array '{key}' has {shape[0]:,} time steps, more than the "
                            f"{MAX_STEPS:,} nirc runs at once; split the input", file=path)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > budget:
            cap = f"the {MAX_INPUT_BYTES:,} bytes of input nirc reads from one file" \
                if max_steps is not None else "nirc reads from one build's arrays"
            raise NircError(f"array '{key}' declares shape {list(shape)} ({nbytes:,} bytes), "
                            f"more than {cap}", file=path)
        stored = info.file_size - member.tell()
        if stored != nbytes:
            raise NircError(f"array '{key}' declares shape {list(shape)} ({nbytes:,} bytes) but "
                            f"holds {stored:,} bytes (truncated or corrupt)", file=path)
        data = bytearray(nbytes)
        if member.readinto(data) != nbytes:
            raise NircError(f"array '{key}' is truncated", file=path)
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def write_atomically(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed NPZ so that a failure leaves no file."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
