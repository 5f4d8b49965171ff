"""Reading NIR HDF5 files into a validated NIRGraph.

Layout (as ``nir.write`` produces it): root dataset ``version`` and group ``node``; a node
is a group with a string dataset ``type`` and one dataset per parameter, plus an optional
``metadata`` group (nested dicts as groups); a NIRGraph has a group ``nodes`` and a dataset
``edges`` of (source, target) strings. Older layouts are mapped through legacy.py.

The reader walks each node class's dataclass fields (``param`` kinds) — one table for all
types. Every dataset's shape and type are checked from HDF5 metadata before its data is
read, so a file declaring an absurd array is refused without allocating it. After
reading, quirks.repair fixes known exporter quirks (with NircWarning) and the graph is
validated and shape-checked; every failure is a one-line ModelError naming the file, the
node (dotted inside nested graphs) and the parameter.
"""

from __future__ import annotations

import functools
import gc
import math
import re
import warnings
from contextlib import contextmanager
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np
from h5py import h5d, h5g, h5i, h5o, h5s, h5t

from nirc.errors import ModelError, NircWarning, locate
from nirc.ir.nodes import NODE_TYPES, NIRGraph, Node
from nirc.nirio import legacy
from nirc.nirio.quirks import repair

# Limits checked from HDF5 metadata before any data is read (docs/limits.md): a file
# declaring more is refused, so reading never holds more than MAX_FILE_BYTES of arrays.
MAX_DATASET_ELEMENTS = 1 << 28      # elements of one dataset
MAX_FILE_BYTES = 1 << 30            # bytes of all datasets of one file together (1 GiB)
MAX_STRING_BYTES = 1 << 16          # item size of a fixed-length string dataset (64 KiB)
MAX_NODES = 100_000                 # nodes, nested graphs included
MAX_NESTING = 64                    # levels of nested graphs and metadata groups
# Parameters beyond this magnitude are refused: products of two of them would overflow
# float64 into Inf/NaN somewhere in lowering (e.g. 1.7e308 weights).
MAX_MAGNITUDE = 1e30

# Entries some writers add to a node that are not NIR parameters: shape hints.
TYPE_HINTS = ("input_type", "output_type")


def read(path: str | Path) -> NIRGraph:
    """The NIR graph stored in ``path``: validated, quirks repaired, shapes consistent."""
    name = str(path)
    if not Path(path).is_file():
        raise ModelError("is a directory" if Path(path).is_dir() else "no such file", file=name)
    if Path(path).stat().st_size == 0:
        raise ModelError("is empty (0 bytes)", file=name)
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ModelError(_open_failure(err), file=name) from None
    try:
        reader = _Reader(name)
        with handle, _address_space_cap(MAX_FILE_BYTES + (512 << 20)), _watchdog(name, reader), \
                _collector_paused():
            try:
                graph, hints = reader.read_root(handle)
            except (OSError, RuntimeError, KeyError) as err:
                # HDF5 itself failed on a damaged structure (heap, B-tree, object header)
                raise ModelError(f"is damaged: HDF5 cannot read it ({_first_line(err)})") \
                    from None
        return repair(graph, hints, file=name)
    except ModelError as err:
        raise err.at(file=name) from None


# Set by the command line (nirc.cli): a read during which HDF5 makes no progress (no node
# or dataset read) for this many seconds ends the process with one error line. HDF5 can
# loop forever on some damaged heaps, inside C code no Python exception can interrupt; a
# large file that is merely slow to read (10^5 nodes: tens of seconds) keeps progressing.
# None (library use): no limit.
READ_TIME_LIMIT_S: float | None = None


@contextmanager
def _watchdog(file: str, reader: "_Reader") -> Iterator[None]:
    if READ_TIME_LIMIT_S is None:
        yield
        return
    import os
    import sys
    import threading
    import time

    def give_up() -> None:
        from nirc.errors import printable

        message = (f"error: {printable(file)}: reading made no progress for "
                   f"{READ_TIME_LIMIT_S:g} s (HDF5 is stuck on a damaged structure in the file)\n")
        try:
            sys.stderr.flush()
        finally:
            os.write(2, message.encode("utf-8", errors="replace"))
            os._exit(2)

    stop = threading.Event()

    def watch() -> None:
        seen, since = -1, time.monotonic()
        while not stop.wait(min(1.0, READ_TIME_LIMIT_S / 4)):
            now = time.monotonic()
            if reader.progress != seen:
                seen, since = reader.progress, now
            elif now - since >= READ_TIME_LIMIT_S:
                give_up()

    thread = threading.Thread(target=watch, name="nirc-read-watchdog", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a file is read: reading makes no cycles,
    and on a 10^5-node file the collector's full passes over the growing graph (each one
    walks every object the process holds) took a tenth of the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def _address_space_cap(extra: int) -> Iterator[None]:
    """Cap the process's address space at its current size plus ``extra`` bytes while a
    file is read (Linux; elsewhere a no-op). Array sizes are checked from headers, but
    HDF5 sizes the buffer of each variable-length string from the file's heap, so a damaged
    heap could claim gigabytes: under the cap that allocation fails, and HDF5 reports an
    error, which becomes one ModelError line."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * resource.getpagesize()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        yield
        return
    cap = current + extra
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class _Reader:
    def __init__(self, file: str):
        self.file = file
        self.hints: dict[str, dict[str, tuple[int, ...]]] = {}
        self.bytes_read = 0
        self.nodes_read = 0
        self.progress = 0          # datasets read so far (the watchdog's sign of life)
        self.groups_seen: set[int] = set()

    def enter(self, group: h5g.GroupID, path: str, field: str | None = None) -> None:
        """Refuse a group reached twice (a link back to itself or an ancestor would recurse
        forever; a group shared by many parents would multiply the work) or nested too deep."""
        # h5py hashes an object by its file and address (the fields of H5Oget_info that cost
        # least: h5o.get_info reads them all, 40-70 us a group on a 10^5-node file).
        key = hash(group)
        if key in self.groups_seen:
            name = _text(h5i.get_name(group) or b"?")
            raise ModelError(f"group '{name}' is linked from more than one place (a link "
                             f"back to itself or an ancestor); NIR files are trees",
                             node=path or None, field=field)
        self.groups_seen.add(key)
        depth = path.count(".") + 1 + (field.count(".") if field else 0)
        if depth > MAX_NESTING:
            raise ModelError(f"nested more than {MAX_NESTING} levels deep", node=path or None,
                             field=field)

    def warn(self, message: str, node: str | None = None, field: str | None = None) -> None:
        warnings.warn(NircWarning(f"{locate(self.file, node, field)}: {message}"), stacklevel=4)

    # --- layout --------------------------------------------------------------------

    def read_root(self, f: h5py.File) -> tuple[NIRGraph, dict[str, dict[str, tuple[int, ...]]]]:
        root = dict(_members(f["/"].id))
        if isinstance(root.get("node"), h5g.GroupID):
            graph = self.read_node(root["node"], "")
            if not isinstance(graph, NIRGraph):
                raise ModelError(f"the root node is a {type(graph).nir_type}, not a NIRGraph",
                                 field="type")
            return graph, self.hints
        if isinstance(root.get("nodes"), h5g.GroupID) \
                and isinstance(root.get("edges"), h5d.DatasetID):
            self.warn("file uses the NIR 0.0.x layout (no root 'node' group); reading it with "
                      "the old field names")
            return self.read_list_layout(root), self.hints
        raise ModelError("not a NIR file: no 'node' group at the root (found: "
                         f"{', '.join(sorted(root)) or 'nothing'})")

    def read_list_layout(self, root: dict[str, Any]) -> NIRGraph:
        """0.0.x: nodes '0', '1', ... and edges as integer index pairs."""
        nodes = {key: self.read_node(group, key) for key, group in _members(root["nodes"])}
        raw = self.read_array(root["edges"], "", "edges")
        if raw.size == 0:
            return NIRGraph(nodes=nodes, edges=())
        if raw.ndim != 2 or raw.shape[1] != 2 or raw.dtype.kind not in "iu":
            raise ModelError(f"expected (E, 2) node indices, got shape {list(raw.shape)}",
                             field="edges")
        return NIRGraph(nodes=nodes, edges=tuple((str(a), str(b)) for a, b in raw.tolist()))

    # --- nodes ---------------------------------------------------------------------

    def read_node(self, group: Any, path: str) -> Node:
        where = path or None
        if not isinstance(group, h5g.GroupID):
            raise ModelError("expected a group holding a node, found a dataset", node=where)
        self.enter(group, path)
        # The root graph is the file, not one of its nodes: a graph of exactly MAX_NODES reads.
        self.nodes_read += 1 if path else 0
        if self.nodes_read > MAX_NODES:
            raise ModelError(f"holds more than {MAX_NODES:,} nodes, the most nirc reads")
        entries = dict(_members(group))
        if "type" not in entries:
            raise ModelError("missing (every node stores its type)", node=where, field="type")
        stored_type = self.read_string(entries.pop("type"), path, "type")
        metadata = self.read_metadata(entries.pop("metadata"), path) if "metadata" in entries \
            else {}
        if stored_type == "NIRGraph":
            return self.read_graph(entries, path, metadata)
        type_name = legacy.current_type(stored_type, set(entries))
        cls = NODE_TYPES.get(type_name)
        if cls is None:
            raise ModelError(f"unknown node type '{stored_type}' (NIR 1.0 types: "
                             f"{', '.join(sorted(NODE_TYPES))})", node=where, field="type")
        params = {legacy.current_name(type_name, k): v for k, v in entries.items()}
        values: dict[str, Any] = {}
        specs = _parameters(cls)
        for name, kind, required in specs:
            if name in params:
                values[name] = self.read_param(params.pop(name), kind, path, name)
            elif required:
                raise ModelError(f"missing ({type_name} needs "
                                 f"{', '.join(_required(cls))})", node=where, field=name)
        for name in [n for n in params if n in TYPE_HINTS]:
            self.hints.setdefault(path, {})[name] = self.read_hint(params.pop(name), path, name)
        for name in params:
            self.warn(f"ignored: not a parameter of {type_name}", node=where, field=name)
        for name, _, _ in specs:
            if values.get(name) is None:
                default = legacy.absent_default(name, values)
                if default is not None:
                    values[name] = default
        return cls(**values, metadata=metadata)

    def read_graph(self, group: dict[str, Any], path: str, metadata: dict) -> NIRGraph:
        where = path or None
        if not isinstance(group.get("nodes"), h5g.GroupID):
            raise ModelError("missing (a NIRGraph stores its nodes in a group 'nodes')",
                             node=where, field="nodes")
        prefix = f"{path}." if path else ""
        self.enter(group["nodes"], path, "nodes")
        nodes = {key: self.read_node(sub, prefix + key) for key, sub in _members(group["nodes"])}
        if "edges" not in group:
            raise ModelError("missing (a NIRGraph stores its edges as (source, target) names)",
                             node=where, field="edges")
        raw = self.read_array(group["edges"], path, "edges", allow_strings=True)
        if raw.size == 0:
            edges: tuple[tuple[str, str], ...] = ()
        elif raw.ndim != 2 or raw.shape[1] != 2 or raw.dtype.kind not in "OSU":
            raise ModelError(f"expected (E, 2) node names, got {raw.dtype} of shape "
                             f"{list(raw.shape)}", node=where, field="edges")
        else:
            edges = tuple((_text(a), _text(b)) for a, b in raw.tolist())
        return NIRGraph(nodes=nodes, edges=edges, metadata=metadata)

    # --- datasets ------------------------------------------------------------------

    def read_array(self, ds: Any, path: str, field: str, allow_strings: bool = False
                   ) -> np.ndarray:
        """A dataset's contents, after checking its declared shape and type."""
        where = path or None
        if not isinstance(ds, h5d.DatasetID):
            raise ModelError("expected a dataset, found a group", node=where, field=field)
        shape, dtype = ds.shape, _dtype_of(ds)  # HDF5 metadata only; no data read yet
        if shape is None:  # an HDF5 null dataspace
            raise ModelError("is an empty (null) dataset", node=where, field=field)
        if math.prod(shape) > MAX_DATASET_ELEMENTS:
            raise ModelError(f"declares a dataset of shape {list(shape)}, more than the "
                             f"{MAX_DATASET_ELEMENTS} elements nirc reads", node=where,
                             field=field)
        is_string = dtype.kind in "SU" or (dtype.kind == "O"
                                           and h5py.check_string_dtype(dtype) is not None)
        if dtype.kind in "SUV" and dtype.itemsize > MAX_STRING_BYTES:
            raise ModelError(f"declares items of {dtype.itemsize:,} bytes each, more than the "
                             f"{MAX_STRING_BYTES:,} nirc reads", node=where, field=field)
        size = math.prod(shape) * dtype.itemsize
        if self.bytes_read + size > MAX_FILE_BYTES:
            raise ModelError(f"declares {size:,} bytes, which would take the file's arrays past "
                             f"the {MAX_FILE_BYTES:,} bytes nirc reads from one file",
                             node=where, field=field)
        self.bytes_read += size
        self.progress += 1
        if is_string and not allow_strings:
            raise ModelError(f"expected numbers, got the text '{_preview(ds, shape, dtype)}'",
                             node=where, field=field)
        if not is_string and dtype.kind not in "biuf":
            raise ModelError(f"expected numbers, got HDF5 type {dtype}", node=where,
                             field=field)
        try:
            return _load(ds, shape, dtype)
        except (OSError, ValueError, TypeError) as err:
            raise ModelError(f"cannot be read ({_first_line(err)})", node=where,
                             field=field) from None

    def read_string(self, ds: Any, path: str, field: str) -> str:
        value = self.read_array(ds, path, field, allow_strings=True)
        if value.ndim != 0 or value.dtype.kind not in "OSU":
            shown = value.item() if value.size == 1 else f"an array of shape {list(value.shape)}"
            raise ModelError(f"expected a string, got {shown} ({value.dtype})",
                             node=path or None, field=field)
        return _text(value.item())

    def read_param(self, ds: Any, kind: str, path: str, field: str) -> Any:
        """One parameter as the node field expects it (see nirc.ir.nodes.param)."""
        where = path or None
        value = self.read_array(ds, path, field, allow_strings=(kind == "padding"))
        if value.dtype.kind in "OSU":  # a padding string
            text = _text(value.item()) if value.ndim == 0 else None
            if text not in ("same", "valid"):
                shown = repr(text) if text is not None else str([_text(v) for v in value.ravel()])
                raise ModelError(f"must be an integer, a list or 'same'/'valid', got {shown}",
                                 node=where, field=field)
            return text
        if kind == "array":
            value = value if value.dtype.kind == "f" else value.astype(np.float64)
            if value.size == 0 or bool((np.abs(value) <= MAX_MAGNITUDE).all()):
                return value        # (one pass; NaN and Inf fail it and are sorted out below)
            finite = value[np.isfinite(value)]
            if finite.size and np.max(np.abs(finite)) > MAX_MAGNITUDE:
                biggest = finite[np.argmax(np.abs(finite))]
                raise ModelError(f"holds {biggest:g}; nirc reads parameters up to "
                                 f"{MAX_MAGNITUDE:g} in magnitude (larger ones overflow float64 "
                                 f"arithmetic)", node=where, field=field)
            return value
        ints = _integers(value, where, field)
        if kind == "int":
            if ints.size != 1:
                raise ModelError(f"expected one integer, got {ints.tolist()}", node=where,
                                 field=field)
            return int(ints.reshape(()))
        if kind == "shape" and ints.ndim == 0:
            self.warn(f"stored as the scalar {int(ints)}; read as the shape [{int(ints)}]",
                      node=where, field=field)
        if kind in ("shape", "spatial"):
            return np.atleast_1d(ints)
        return int(ints) if ints.ndim == 0 else tuple(int(v) for v in ints.ravel())

    def read_hint(self, entry: Any, path: str, field: str) -> tuple[int, ...]:
        """input_type/output_type some writers store: a dataset, or a group of one dataset."""
        if isinstance(entry, h5g.GroupID):
            members = [member for _, member in _members(entry)]
            if len(members) != 1:
                return ()
            entry = members[0]
        value = self.read_array(entry, path, field)
        return tuple(int(v) for v in _integers(value, path or None, field).ravel())

    def read_metadata(self, group: Any, path: str, where: str = "metadata") -> dict:
        """A metadata group as nested dicts: text as str, 0-d numbers as Python scalars."""
        if not isinstance(group, h5g.GroupID):
            raise ModelError("expected a group", node=path or None, field=where)
        self.enter(group, path, where)
        out: dict[str, Any] = {}
        for key, item in _members(group):
            if isinstance(item, h5g.GroupID):
                out[key] = self.read_metadata(item, path, f"{where}.{key}")
                continue
            value = self.read_array(item, path, f"{where}.{key}", allow_strings=True)
            if value.ndim == 0:
                out[key] = _text(value.item())
            elif value.dtype.kind in "OSU":
                out[key] = [_text(v) for v in value.ravel().tolist()]
            else:
                out[key] = value
        return out


def _members(group: h5g.GroupID) -> list[tuple[str, Any]]:
    """A group's members by name, as low-level h5py ids (GroupID / DatasetID): the
    high-level objects cost more per node than the reading itself on many-node files."""
    try:
        if group.get_num_objs() > MAX_NODES:
            name = _text(h5i.get_name(group) or b"?")
            raise ModelError(f"group '{name}' holds {group.get_num_objs():,} members, more than "
                             f"the {MAX_NODES:,} nirc reads")
        return [(raw.decode("utf-8", errors="replace"), h5o.open(group, raw))
                for raw in group]
    except (OSError, KeyError, RuntimeError, ValueError) as err:
        name = _text(h5i.get_name(group) or b"?")
        raise ModelError(f"group '{name}' cannot be read ({_first_line(err)})") from None


_FLOAT64 = np.dtype("<f8")


def _dtype_of(ds: h5d.DatasetID) -> np.dtype:
    """``ds.dtype``, with the commonest type (little-endian float64, nir's arrays) told by
    comparing HDF5 types: h5py's conversion of a type to numpy's took a sixth of reading a
    10^5-node file."""
    tid = ds.get_type()
    return _FLOAT64 if tid == h5t.IEEE_F64LE else tid.dtype


def _load(ds: h5d.DatasetID, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    out = np.empty(shape, dtype=dtype)
    if out.size:
        ds.read(h5s.ALL, h5s.ALL, out, _memory_type(dtype))
    return out


# HDF5 memory types by numpy dtype (and h5py's string metadata). h5py makes one per read
# when not given one: a tenth of the time reading a 10^5-node file takes. Fixed-length
# strings are left to h5py (one type per length: the cache would grow with the file).
_MEMORY_TYPES: dict[tuple[np.dtype, str], h5t.TypeID] = {}


def _memory_type(dtype: np.dtype) -> h5t.TypeID | None:
    if dtype.kind in "SU":
        return None
    key = (dtype, None if dtype.metadata is None else repr(dtype.metadata))
    mtype = _MEMORY_TYPES.get(key)
    if mtype is None:
        mtype = _MEMORY_TYPES[key] = h5t.py_create(dtype)
    return mtype


def _integers(value: np.ndarray, where: str | None, field: str) -> np.ndarray:
    if value.dtype.kind in "iub":
        return value.astype(np.int64)
    if not np.all(np.isfinite(value)) or np.any(value != np.round(value)):
        raise ModelError(f"expected integers, got {value.tolist()}", node=where, field=field)
    return value.astype(np.int64)


@functools.lru_cache(maxsize=None)
def _parameters(cls: type) -> tuple[tuple[str, str, bool], ...]:
    """(name, kind, required) of each NIR parameter of a node class, in field order (fields()
    per node costs as much as reading a small node's datasets)."""
    return tuple((f.name, f.metadata["nir"], f.default is MISSING and not f.metadata["optional"])
                 for f in fields(cls) if f.metadata.get("nir") is not None)


def _required(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.metadata.get("nir") and f.default is MISSING
            and not f.metadata["optional"]]


def _text(value: Any) -> Any:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _preview(ds: h5d.DatasetID, shape: tuple[int, ...], dtype: np.dtype) -> str:
    if math.prod(shape) != 1:
        return f"<{math.prod(shape)} strings>"
    try:
        value = _load(ds, shape, dtype).ravel()[0]
    except (OSError, ValueError, TypeError):
        return "?"
    text = str(_text(value))
    return text if len(text) <= 40 else text[:37] + "..."


def _open_failure(err: OSError) -> str:
    """h5py's reason a file does not open, said for a user."""
    text = str(err)
    if "signature not found" in text:
        return "not an HDF5 file (a NIR model is an HDF5 file)"
    truncated = re.search(r"eof = (\d+).*stored_eof = (\d+)", text)
    if truncated:
        return (f"truncated: the file holds {truncated.group(1)} of the "
                f"{truncated.group(2)} bytes it was written with")
    return f"not a readable HDF5 file ({_first_line(err)})"


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def file_version(path: str | Path) -> str | None:
    """The nir version string a file records (None for 0.x files, which record none)."""
    try:
        with h5py.File(path, "r") as f:
            ds = f.get("version")
            if isinstance(ds, h5py.Dataset) and ds.shape == ():
                return str(_text(ds[()]))
    except OSError:
        pass
    return None
