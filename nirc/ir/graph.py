"""Whole-graph operations on NIR graphs: flattening nested graphs and shape inference.

Shape inference asks each node what its own parameters say (``own_input_shape``,
``output_shape``) and propagates along edges to a fixed point, forwards and,
through elementwise nodes whose parameters are scalars, backwards. It never
changes the graph; it returns the shapes and raises ModelError naming the
nodes whose shapes disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from nirc.errors import ModelError
from nirc.ir.nodes import (NIRGraph, Input, Node, Output, Shape, _Elementwise)


def flatten(graph: NIRGraph) -> NIRGraph:
    """The same network with every nested NIRGraph inlined.

    Inner nodes are named "outer.inner"; a subgraph's own Input and Output nodes
    disappear, their edges joined through. Edges that name the subgraph enter at
    its Inputs and leave from its Outputs. The top level keeps its Input/Output.
    Node and edge order follow the file's order (never a set's), so builds stay
    byte-identical across processes.
    """
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    entries: dict[str, list[str]] = {}   # subgraph (or its Input) -> names it feeds
    exits: dict[str, list[str]] = {}     # subgraph (or its Output) -> names feeding it
    for name, node in graph.nodes.items():
        if not isinstance(node, NIRGraph):
            nodes[name] = node
            continue
        inner = flatten(node)
        try:
            check_edges(inner)  # an edge the inlining below would drop must still be valid
        except ModelError as err:
            raise err.at(node=name) from None
        sub_inputs = list(inner.inputs())
        sub_outputs = list(inner.outputs())
        boundary = set(sub_inputs) | set(sub_outputs)
        for iname, inode in inner.nodes.items():
            if iname not in boundary:
                nodes[f"{name}.{iname}"] = inode
        for i in sub_inputs:
            for o in sub_outputs:
                if (i, o) in inner.edges:
                    raise ModelError(f"subgraph '{name}' wires input '{i}' straight to output "
                                     f"'{o}'; nirc needs a node between them", node=name)
        for iname in sub_inputs:
            entries[f"{name}.{iname}"] = [f"{name}.{t}" for s, t in inner.edges if s == iname]
        for oname in sub_outputs:
            exits[f"{name}.{oname}"] = [f"{name}.{s}" for s, t in inner.edges if t == oname]
        entries[name] = [t for i in sub_inputs for t in entries[f"{name}.{i}"]]
        exits[name] = [s for o in sub_outputs for s in exits[f"{name}.{o}"]]
        edges.extend((f"{name}.{s}", f"{name}.{t}") for s, t in inner.edges
                     if s not in boundary and t not in boundary)
    for s, t in graph.edges:
        sources = exits.get(s, [s])
        targets = entries.get(t, [t])
        edges.extend((a, b) for a in sources for b in targets)
    # Keep first occurrence order, drop exact duplicates created by joining.
    unique = list(dict.fromkeys(edges))
    return NIRGraph(nodes=nodes, edges=tuple(unique), metadata=dict(graph.metadata))


def check_edges(graph: NIRGraph) -> None:
    """Every edge names existing nodes (after flattening)."""
    for s, t in graph.edges:
        for end, name in (("source", s), ("target", t)):
            if name not in graph.nodes:
                raise ModelError(f"edge {s} -> {t} names a {end} node '{name}' that does not "
                                 f"exist", field="edges")
        if isinstance(graph.nodes[t], Input):
            raise ModelError(f"edge {s} -> {t} points into the Input node '{t}'", field="edges")
        if isinstance(graph.nodes[s], Output):
            raise ModelError(f"edge {s} -> {t} leaves the Output node '{s}'", field="edges")


@dataclass(frozen=True)
class NodeShapes:
    input: Shape | None
    output: Shape | None


def _passes_shape_through(node: Node) -> bool:
    return isinstance(node, _Elementwise) and node.own_input_shape() is None


def infer_shapes(graph: NIRGraph) -> dict[str, NodeShapes]:
    """Input and output shape of every node of a flat graph; raises on any disagreement."""
    check_edges(graph)
    ins: dict[str, Shape | None] = {}
    outs: dict[str, Shape | None] = {}
    for name, node in graph.nodes.items():
        try:
            ins[name] = node.own_input_shape()
            outs[name] = node.output_shape(ins[name]) if ins[name] is not None \
                else node.own_output_shape()
        except ModelError as err:
            raise err.at(node=name) from None
    changed = True
    while changed:
        changed = False
        for s, t in graph.edges:
            if outs[s] is not None and ins[t] is None:
                ins[t] = outs[s]
                changed = True
            elif outs[s] is None and ins[t] is not None and _passes_shape_through(graph.nodes[s]):
                outs[s] = ins[s] = ins[t]
                changed = True
        for name, node in graph.nodes.items():
            if ins[name] is not None and outs[name] is None:
                try:
                    outs[name] = node.output_shape(ins[name])
                except ModelError as err:
                    raise err.at(node=name) from None
                changed = outs[name] is not None or changed
    for s, t in graph.edges:
        if outs[s] is not None and ins[t] is not None and tuple(outs[s]) != tuple(ins[t]):
            raise ModelError(f"shape mismatch on edge {s} -> {t}: '{s}' produces "
                             f"{list(outs[s])} but '{t}' expects {list(ins[t])}", node=t,
                             field=graph.nodes[t].shape_field())
    return {name: NodeShapes(ins[name], outs[name]) for name in graph.nodes}


def topological_order(graph: NIRGraph) -> list[str]:
    """Nodes ordered so that, ignoring edges that close cycles, sources come first.

    Recurrent graphs are allowed: a back edge's value is the previous time step's.
    Order is deterministic (insertion order breaks ties).
    """
    acyclic = _acyclic_order(graph)
    if acyclic is not None:
        return acyclic
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from(graph.edges)
    order: list[str] = []
    seen: set[str] = set()
    index = {n: i for i, n in enumerate(graph.nodes)}
    cond = nx.condensation(g)
    for comp in nx.lexicographical_topological_sort(
            cond, key=lambda c: min(index[m] for m in cond.nodes[c]["members"])):
        members = sorted(cond.nodes[comp]["members"], key=index.__getitem__)
        if len(members) > 1:
            # Inside a cycle: order by BFS from the member first fed from outside.
            sub = g.subgraph(members)
            entry = next((m for m in members if any(p not in sub for p in g.predecessors(m))),
                         members[0])
            bfs = [entry] + [v for _, v in nx.bfs_edges(sub, entry)]
            members = bfs + [m for m in members if m not in bfs]
        for m in members:
            if m not in seen:
                order.append(m)
                seen.add(m)
    return order


def _acyclic_order(graph: NIRGraph) -> list[str] | None:
    """The order topological_order gives a graph without cycles (Kahn's algorithm, the
    earliest node in insertion order first, as networkx's lexicographical sort of the
    condensation gives it), or None when the graph has a cycle. networkx's condensation
    costs seconds on a 10^5-node chain."""
    import heapq

    index = {n: i for i, n in enumerate(graph.nodes)}
    names = list(graph.nodes)
    waiting = [0] * len(names)
    after: list[list[int]] = [[] for _ in names]
    for s, t in dict.fromkeys(graph.edges):
        a, b = index[s], index[t]
        after[a].append(b)
        waiting[b] += 1
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(names[i])
        for j in after[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    return order if len(order) == len(names) else None
