"""Repairs of known exporter quirks, each announced with a NircWarning, then final checks.

Real exports (snnTorch, Norse, Sinabs, Rockpool through the ``nir`` package) deviate
from NIR 1.0 in a few recurring ways. None of them is reinterpreted silently:

- a batch dimension leaked into an Input or Output shape (Input (1, 784) feeding a layer
  that expects (784,), or (B, 2, 34, 34) feeding a convolution over (2, 34, 34));
- Flatten counting the batch dimension (torch's ``start_dim=1``), in its dims and/or
  its ``input_type``; Flatten without ``input_type``; Output without ``shape``;
- 0-d (scalar) parameters on neurons and other elementwise nodes, broadcast to the layer
  width that shape inference finds from the neighbours;
- ``input_type``/``output_type`` entries stored on nodes (empty ones are ignored).

A batch-dimension repair is applied only when shape inference fails without it and
succeeds with it (the smallest such set of repairs is chosen, plus any unit batch on
another Input/Output that still fits); otherwise the file means what NIR says it means. Requires: a graph read from a file. Guarantees: the returned
graph passes ``validate()`` and ``infer_shapes(flatten(graph))``.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from typing import Callable

import numpy as np

from nirc.errors import ModelError, NircWarning, locate
from nirc.ir.graph import NodeShapes, flatten, infer_shapes
from nirc.ir.nodes import Flatten, Input, NIRGraph, Node, Output, _Elementwise

# Batch-dimension repairs tried together at most; enough for an Input, an Output and a
# Flatten, and it bounds the search at 1 + C + C(C-1)/2 + ... shape inferences, which
# MAX_TRIALS caps for graphs with many Flattens (only malformed files get that far).
MAX_REPAIRS = 3
MAX_TRIALS = 400

Hints = dict[str, dict[str, tuple[int, ...]]]


@dataclasses.dataclass(frozen=True)
class _Repair:
    node: str          # flattened (dotted) name
    replacement: Node
    message: str
    unit_strip: bool = False  # drops only leading dimensions of size 1 from an Input/Output


def repair(graph: NIRGraph, hints: Hints, file: str | None = None) -> NIRGraph:
    """The graph with quirks repaired (each with a NircWarning), validated and shape-checked."""
    graph.validate()
    for path, types in hints.items():
        for name, shape in types.items():
            if not shape:
                _warn(file, path, name, "is stored but empty; ignored, the shape comes from "
                      "the neighbours")
    graph, flat, shapes = _strip_batch_dimensions(graph, file)
    replacements = _complete_shapes(flat, shapes, hints, file)
    if not replacements:
        return graph
    for name, node in replacements.items():
        try:
            node.validate()
        except ModelError as err:
            raise err.at(node=name) from None
    graph = replace_nodes(graph, replacements)
    infer_shapes(flatten(graph))
    return graph


def replace_nodes(graph: NIRGraph, replacements: dict[str, Node]) -> NIRGraph:
    """A copy of ``graph`` with nodes swapped, named as ``flatten`` names them ("sub.inner")."""
    if not replacements:
        return graph
    nodes = dict(graph.nodes)
    nested: dict[str, dict[str, Node]] = {}
    for name, node in replacements.items():
        if name in nodes:
            nodes[name] = node
            continue
        owner = next((k for k, v in graph.nodes.items()
                      if isinstance(v, NIRGraph) and name.startswith(k + ".")), None)
        if owner is None:
            raise KeyError(name)
        nested.setdefault(owner, {})[name[len(owner) + 1:]] = node
    for owner, inner in nested.items():
        nodes[owner] = replace_nodes(nodes[owner], inner)
    return dataclasses.replace(graph, nodes=nodes)


# --- batch dimensions ------------------------------------------------------------------


def _strip_batch_dimensions(graph: NIRGraph, file: str | None
                            ) -> tuple[NIRGraph, NIRGraph, dict[str, NodeShapes]]:
    """The graph (repaired if it must be), its flattened form and its shapes."""
    first = _shapes_or_error(graph)
    if not isinstance(first, ModelError):
        return graph, *first
    candidates = _batch_candidates(graph)
    combinations = itertools.chain.from_iterable(
        itertools.combinations(candidates, count)
        for count in range(1, min(MAX_REPAIRS, len(candidates)) + 1))
    for chosen in itertools.islice(combinations, MAX_TRIALS):
        if len({r.node for r in chosen}) < len(chosen):
            continue  # two alternative repairs of the same node
        fixed = replace_nodes(graph, {r.node: r.replacement for r in chosen})
        result = _shapes_or_error(fixed)
        if not isinstance(result, ModelError):
            repairs, fixed, result = _also_strip_unit_batches(graph, list(chosen), fixed,
                                                              result, candidates)
            for r in repairs:
                _warn(file, r.node, None, r.message)
            return fixed, *result
    raise first


def _also_strip_unit_batches(graph: NIRGraph, chosen: list[_Repair], fixed: NIRGraph,
                             result: tuple[NIRGraph, dict[str, NodeShapes]],
                             candidates: list[_Repair]
                             ) -> tuple[list[_Repair], NIRGraph,
                                        tuple[NIRGraph, dict[str, NodeShapes]]]:
    """Once a file is known to leak the batch dimension, a leading 1 on another Input or
    Output is that batch too, when dropping it keeps the shapes consistent (a Flatten over
    (1, C, H, W) with torch's start_dim=1 also fits the graph if only the Flatten is
    repaired, but then the Input would keep the batch)."""
    for extra in candidates:
        if extra.node in {r.node for r in chosen} or not extra.unit_strip:
            continue
        trial = [*chosen, extra]
        trial_graph = replace_nodes(graph, {r.node: r.replacement for r in trial})
        trial_result = _shapes_or_error(trial_graph)
        if not isinstance(trial_result, ModelError):
            chosen, fixed, result = trial, trial_graph, trial_result
    chosen.sort(key=candidates.index)
    return chosen, fixed, result


def _shapes_or_error(graph: NIRGraph) -> tuple[NIRGraph, dict[str, NodeShapes]] | ModelError:
    try:
        flat = flatten(graph)
        return flat, infer_shapes(flat)
    except ModelError as err:
        return err


def _batch_candidates(graph: NIRGraph) -> list[_Repair]:
    out: list[_Repair] = []
    for name, node in graph.nodes.items():
        if isinstance(node, (Input, Output)) and node.shape is not None:
            shape = [int(d) for d in np.ravel(node.shape)]
            # Rockpool writes Output (1, 1, N): batch and time both leaked.
            for lead in range(1, len(shape)):
                what = "a batch dimension" if lead == 1 else \
                    f"{lead} leading (batch/time) dimensions"
                out.append(_Repair(name, dataclasses.replace(node, shape=np.asarray(shape[lead:])),
                                   f"shape {shape} includes {what}; read as {shape[lead:]}",
                                   unit_strip=all(d == 1 for d in shape[:lead])))
    for name, node in flatten(graph).nodes.items():
        if isinstance(node, Flatten):
            out.extend(_flatten_candidates(name, node))
    return out


def _flatten_candidates(name: str, node: Flatten) -> list[_Repair]:
    shift: Callable[[int], int] = lambda d: d - 1 if d > 0 else d  # noqa: E731
    dims = f"start_dim={node.start_dim}, end_dim={node.end_dim}"
    new_dims = f"start_dim={shift(node.start_dim)}, end_dim={shift(node.end_dim)}"
    out = []
    if node.start_dim >= 1:
        if node.input_type is not None and np.size(node.input_type) >= 2:
            shape = [int(d) for d in np.ravel(node.input_type)]
            out.append(_Repair(name, dataclasses.replace(
                node, start_dim=shift(node.start_dim), end_dim=shift(node.end_dim),
                input_type=np.asarray(shape[1:])),
                f"input_type {shape} and {dims} count the batch dimension; read as "
                f"input_type {shape[1:]}, {new_dims}"))
        out.append(_Repair(name, dataclasses.replace(
            node, start_dim=shift(node.start_dim), end_dim=shift(node.end_dim)),
            f"{dims} count the batch dimension (as torch.nn.Flatten does); read as "
            f"{new_dims}"))
    return out


# --- shapes the file left out -------------------------------------------------------------


def _complete_shapes(flat: NIRGraph, shapes: dict[str, NodeShapes], hints: Hints,
                     file: str | None) -> dict[str, Node]:
    """Replacement nodes (by flattened name) that carry the shapes the file left out."""
    replacements: dict[str, Node] = {}
    for name, node in flat.nodes.items():
        arriving = shapes[name].input
        if isinstance(node, Output) and node.shape is None:
            if arriving is None:
                raise ModelError("missing, and no connected node fixes it", node=name,
                                 field="shape")
            replacements[name] = dataclasses.replace(node, shape=np.asarray(arriving))
            _warn(file, name, "shape", f"missing; set to {list(arriving)} from its input")
        elif isinstance(node, Flatten) and node.input_type is None and arriving is not None:
            replacements[name] = dataclasses.replace(node, input_type=np.asarray(arriving))
            _warn(file, name, "input_type", f"missing; set to {list(arriving)} from its input")
        elif isinstance(node, _Elementwise):
            layer = shapes[name].output or _hinted_shape(hints.get(name, {}))
            fixed = _broadcast_parameters(name, node, layer, file)
            if fixed is not node:
                replacements[name] = fixed
    return replacements


def _hinted_shape(types: dict[str, tuple[int, ...]]) -> tuple[int, ...] | None:
    return next((shape for shape in types.values() if shape), None)


def _broadcast_parameters(name: str, node: _Elementwise, layer: tuple[int, ...] | None,
                          file: str | None) -> Node:
    params = {k: v for k, v in node.params().items() if isinstance(v, np.ndarray)}
    odd = [k for k, v in params.items() if layer is None or v.shape != tuple(layer)]
    if not odd:
        return node
    if layer is None:
        raise ModelError("is a 0-d scalar and no connected node fixes the layer width",
                         node=name, field=odd[0])
    try:
        fixed = {k: np.broadcast_to(params[k], layer).copy() for k in odd}
    except ValueError:
        k = next(k for k in odd if np.ndim(params[k]) and params[k].shape != tuple(layer))
        raise ModelError(f"shape {list(params[k].shape)} does not fit the layer shape "
                         f"{list(layer)}", node=name, field=k) from None
    scalar = all(params[k].ndim == 0 for k in odd)
    _warn(file, name, None, f"{'0-d scalar' if scalar else 'size-1'} parameter"
          f"{'s' if len(odd) > 1 else ''} {', '.join(odd)} broadcast to the layer shape "
          f"{list(layer)} inferred from the connected nodes")
    return dataclasses.replace(node, **fixed)


def _warn(file: str | None, node: str | None, field: str | None, message: str) -> None:
    warnings.warn(NircWarning(f"{locate(file, node, field)}: {message}"), stacklevel=3)
