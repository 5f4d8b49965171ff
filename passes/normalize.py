"""normalize: put a NIR graph into the one canonical form the later passes expect.

Requires: a validated NIR graph (possibly nested).
Guarantees: a flat graph (nested graphs inlined, names "outer.inner"); every
Linear is an Affine with a zero bias; every array parameter of an elementwise
node (neurons, Scale, Delay, Threshold) has the layer's full shape; identity
nodes (Scale by 1, Delay 0, Flatten that changes nothing) are gone with their
edges joined through; every node is one the target runs; every Output is fed
by a neuron node (possibly through Flatten). Anything else raises ModelError
or TargetError naming the node and the reason.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nirc.errors import ModelError, TargetError
from nirc.ir.graph import flatten, infer_shapes
from nirc.ir.nodes import (NEURON_TYPES, SPIKING_TYPES, Affine, AvgPool2d, Conv1d, Conv2d, Delay, Flatten, Input,
                           Linear, NIRGraph, Node, Output, Scale, SumPool2d, Threshold,
                           _Elementwise)
from nirc.passes.context import PassContext

# What the core passes can lower; a target may accept fewer (PassContext.supported_nodes).
LOWERABLE = frozenset(cls.nir_type for cls in (
    Input, Output, Affine, Linear, Scale, Conv1d, Conv2d, SumPool2d, AvgPool2d, Flatten, Delay,
    Threshold, *NEURON_TYPES))
NEURON_LIKE = (*NEURON_TYPES, Threshold)


def _broadcast(node: Node, shape: tuple[int, ...]) -> Node:
    changes = {}
    for name, value in node.params().items():
        if isinstance(value, np.ndarray) and value.shape != shape:
            changes[name] = np.broadcast_to(value.astype(np.float64), shape).copy()
    return replace(node, **changes) if changes else node


def _is_identity(node: Node, shapes) -> bool:
    if isinstance(node, Scale):
        return bool(np.all(node.scale == 1))
    if isinstance(node, Delay):
        return bool(np.all(node.delay == 0))
    if isinstance(node, Flatten):
        return shapes.input is not None and tuple(shapes.input) == tuple(shapes.output)
    return False


def _drop(graph: NIRGraph, name: str) -> NIRGraph:
    preds = graph.predecessors(name)
    succs = graph.successors(name)
    edges = [e for e in graph.edges if name not in e]
    edges += [(p, s) for p in preds for s in succs]
    nodes = {k: v for k, v in graph.nodes.items() if k != name}
    return NIRGraph(nodes=nodes, edges=tuple(dict.fromkeys(edges)), metadata=graph.metadata)


def normalize(graph: NIRGraph, ctx: PassContext) -> NIRGraph:
    """Flatten, canonicalise, broadcast, drop identities and reject what the target cannot run."""
    graph = flatten(graph)
    supported = LOWERABLE if ctx.supported_nodes is None else LOWERABLE & ctx.supported_nodes
    for name, node in graph.nodes.items():
        if node.nir_type not in supported:
            why = ("the compiler has no lowering for it" if node.nir_type not in LOWERABLE
                   else f"target '{ctx.target_name}' does not support {node.nir_type} nodes")
            raise TargetError(f"{node.nir_type} node cannot be compiled: {why}",
                              file=ctx.file, node=name)
    shapes = infer_shapes(graph)
    nodes: dict[str, Node] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, Linear):
            node = Affine(weight=node.weight, bias=np.zeros(node.weight.shape[0]))
        if isinstance(node, _Elementwise):
            shape = shapes[name].output
            if shape is None:
                raise ModelError("cannot infer the layer's shape (no connected node fixes it)",
                                 file=ctx.file, node=name)
            node = _broadcast(node, tuple(shape))
        nodes[name] = node
    graph = NIRGraph(nodes=nodes, edges=graph.edges, metadata=dict(graph.metadata))
    for name in [n for n, node in nodes.items() if _is_identity(node, shapes[n])]:
        graph = _drop(graph, name)
    _check_outputs(graph, ctx)
    _check_graded_edges(graph, ctx)
    return graph


def _check_graded_edges(graph: NIRGraph, ctx: PassContext) -> None:
    """A non-spiking neuron (I, LI, CubaLI) may feed outputs only: its value is a voltage,
    and what travels between neurons on chip is spikes."""
    for name, node in graph.nodes.items():
        if not isinstance(node, NEURON_TYPES) or isinstance(node, SPIKING_TYPES):
            continue
        stack = list(graph.successors(name))
        while stack:
            succ = stack.pop()
            if isinstance(graph.nodes[succ], Output):
                continue
            if isinstance(graph.nodes[succ], Flatten):
                stack.extend(graph.successors(succ))
                continue
            raise TargetError(f"{node.nir_type} node feeds '{succ}', but a non-spiking "
                              f"neuron's voltage cannot be sent to other neurons (the chip "
                              f"sends spikes); only an Output may read it",
                              file=ctx.file, node=name)


def _check_outputs(graph: NIRGraph, ctx: PassContext) -> None:
    for name in graph.outputs():
        preds = graph.predecessors(name)
        if not preds:
            raise ModelError("output is not connected to anything", file=ctx.file, node=name)
        for pred in preds:
            source = pred
            while isinstance(graph.nodes[source], Flatten) and len(graph.predecessors(source)) == 1:
                source = graph.predecessors(source)[0]
            node = graph.nodes[source]
            if not isinstance(node, NEURON_LIKE):
                raise TargetError(f"output is fed by {node.nir_type} node '{source}' with no "
                                  f"neuron after it; the chip only outputs neuron spikes or "
                                  f"readout voltages", file=ctx.file, node=name)
        if len(preds) > 1:
            raise TargetError(f"output sums {len(preds)} nodes ({', '.join(preds)}); the chip "
                              f"outputs one neuron layer per output", file=ctx.file, node=name)
