"""Write an HDF5 file from a nested dict, byte for byte as a test wants it (no nirc code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np


def write_tree(path: str | Path, tree: dict[str, Any]) -> Path:
    """dict -> group, str -> variable-length string dataset, anything else -> dataset as is
    (uncompressed, so 0-d values stay 0-d as exporters write them)."""
    with h5py.File(path, "w") as f:
        _fill(f, tree)
    return Path(path)


def _fill(group: h5py.Group, tree: dict[str, Any]) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            _fill(group.create_group(key), value)
        elif isinstance(value, str):
            group.create_dataset(key, data=value, dtype=h5py.string_dtype())
        elif isinstance(value, list) and value and isinstance(value[0], (list, tuple)) \
                and isinstance(value[0][0], str):
            group.create_dataset(key, data=np.array(value, dtype=object),
                                 dtype=h5py.string_dtype())
        else:
            group.create_dataset(key, data=value)


def graph_tree(nodes: dict[str, dict], edges: list[tuple[str, str]], version: str | None = "1.0.8",
               **extra: Any) -> dict[str, Any]:
    """The tree of a NIR 1.0 file holding one graph."""
    tree: dict[str, Any] = {"node": {"type": "NIRGraph", "nodes": nodes,
                                     "edges": [list(e) for e in edges], **extra}}
    if version is not None:
        tree["version"] = version
    return tree


def nested_graph_tree(inner_lif: dict) -> dict:
    """input(4) -> Affine -> a nested graph (input -> ``inner_lif`` (3) -> output) -> output."""
    sub = {"type": "NIRGraph",
           "nodes": {"input": {"type": "Input", "shape": np.array([3])}, "lif": inner_lif,
                     "output": {"type": "Output", "shape": np.array([3])}},
           "edges": [["input", "lif"], ["lif", "output"]]}
    return graph_tree({"input": {"type": "Input", "shape": np.array([4])},
                       "fc": {"type": "Affine", "weight": np.ones((3, 4)), "bias": np.zeros(3)},
                       "sub": sub, "output": {"type": "Output", "shape": np.array([3])}},
                      [("input", "fc"), ("fc", "sub"), ("sub", "output")])
