"""Writing a NIRGraph as an HDF5 file in the layout ``nir.write`` (1.0.8) produces.

Walks each node's dataclass fields generically. Parameters ``nir.read`` requires but nirc
allows to be absent (v_reset, w_in, a convolution's bias) are written with NIR's
default value, so the reference reader loads every file nirc writes. Arrays are
gzip-compressed when ``compress`` is set (0-d datasets cannot be). The file appears
atomically: it is written beside the target and renamed into place.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from nirc.atomic import replacing
from nirc.errors import ModelError
from nirc.ir.nodes import NIRGraph, Node, as_shape
from nirc.nirio import legacy

# The nir package version whose file layout this writer reproduces.
FORMAT_VERSION = "1.0.8"


def write(path: str | Path, graph: NIRGraph, compress: bool = True) -> None:
    """Store ``graph`` in ``path`` (replacing it), readable by ``nir.read`` and ``nirc.nirio.read``."""
    if not isinstance(graph, NIRGraph):
        raise TypeError(f"write() stores a NIRGraph, got {type(graph).__name__}")
    try:
        with replacing(path) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("version", data=FORMAT_VERSION, dtype=h5py.string_dtype())
            _write_node(f.create_group("node"), graph, "", compress)
    except ModelError as err:
        raise err.at(file=str(path)) from None


def _write_node(group: h5py.Group, node: Node, path: str, compress: bool) -> None:
    group.create_dataset("type", data=node.nir_type, dtype=h5py.string_dtype())
    if node.metadata:
        _write_metadata(group.create_group("metadata"), node.metadata, path, "metadata")
    if isinstance(node, NIRGraph):
        nodes = group.create_group("nodes")
        for name, child in node.nodes.items():
            where = f"{path}.{name}" if path else name
            if not name or "/" in name or name == ".":
                raise ModelError("is not a name HDF5 can store (empty, '.' or containing '/')",
                                 node=where)
            _write_node(nodes.create_group(name), child, where, compress)
        edges = np.array([[s, t] for s, t in node.edges], dtype=object).reshape(-1, 2)
        group.create_dataset("edges", data=edges, dtype=h5py.string_dtype())
        return
    values = node.params()
    for f in fields(node):
        kind = f.metadata.get("nir")
        if kind is None:
            continue
        value = values[f.name]
        if value is None:
            value = legacy.absent_default(f.name, values)
            if value is None:
                continue
        _write_param(group, f.name, kind, value, compress)


def _write_param(group: h5py.Group, name: str, kind: str, value: Any, compress: bool) -> None:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        group.create_dataset(name, data=value, dtype=h5py.string_dtype())
        return
    if kind == "array":
        data = np.asarray(value)
    elif kind in ("shape", "spatial"):
        dims = np.asarray(as_shape(value, name), dtype=np.int64)
        # nir stores a single spatial axis (Conv1d's input_shape) as a plain integer.
        data = dims.reshape(()) if kind == "spatial" and dims.size == 1 else dims
    else:
        data = np.asarray(value, dtype=np.int64)
    options = {"compression": "gzip"} if compress and data.ndim > 0 and data.size > 0 else {}
    group.create_dataset(name, data=data, dtype=data.dtype, **options)


def _write_metadata(group: h5py.Group, metadata: Mapping[str, Any], path: str,
                    where: str) -> None:
    for key, value in metadata.items():
        if isinstance(value, Mapping):
            _write_metadata(group.create_group(str(key)), value, path, f"{where}.{key}")
        elif isinstance(value, str):
            group.create_dataset(str(key), data=value, dtype=h5py.string_dtype())
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            group.create_dataset(str(key), data=np.array(value, dtype=object),
                                 dtype=h5py.string_dtype())
        else:
            data = np.asarray(value)
            if data.dtype.kind not in "biuf":
                raise ModelError(f"cannot be stored in HDF5 ({type(value).__name__})",
                                 node=path or None, field=f"{where}.{key}")
            group.create_dataset(str(key), data=data)
