"""Whether a graph can run at all: an Input to drive it and a path from it to an Output.

A NIR file can be well-formed and still compute nothing observable: a graph holding only
an Input, a pure recurrent cycle with no Input (the chip would idle forever), or layers
whose result reaches no Output. ``nirc inspect`` lists these as warnings
(:func:`problems`); ``nirc compile`` refuses the fatal ones (:func:`require_runnable`)
before any pass runs, so every target gives the same one-line error.
"""

from __future__ import annotations

from collections import deque

from nirc.errors import ModelError
from nirc.ir.nodes import NIRGraph


def _reach(graph: NIRGraph, start: list[str], forward: bool = True) -> set[str]:
    step: dict[str, list[str]] = {}
    for s, t in graph.edges:
        a, b = (s, t) if forward else (t, s)
        step.setdefault(a, []).append(b)
    seen, todo = set(start), deque(start)
    while todo:
        for nxt in step.get(todo.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def problems(flat: NIRGraph) -> tuple[list[str], list[str]]:
    """(fatal, advisory) reasons a flattened graph cannot be simulated or compiled as given.

    Fatal: no Input node, no Output node, or no path from any Input to any Output.
    Advisory: an Output no Input reaches, an Input that reaches no Output, and layers
    on no Input-to-Output path (computed, never read)."""
    inputs, outputs = list(flat.inputs()), list(flat.outputs())
    fatal: list[str] = []
    advisory: list[str] = []
    if not inputs:
        fatal.append("the graph has no Input node: nothing can drive it (a pure cycle or a "
                     "graph of constants cannot run on a chip)")
    if not outputs:
        fatal.append("the graph has no Output node: nothing it computes can be read")
    if fatal:
        return fatal, advisory
    downstream = _reach(flat, inputs)
    upstream = _reach(flat, outputs, forward=False)
    if not downstream & set(outputs):
        fatal.append("no path leads from an Input node to an Output node")
        return fatal, advisory
    advisory += [f"Output '{o}' is not reached from any Input node" for o in outputs
                 if o not in downstream]
    advisory += [f"Input '{i}' reaches no Output node" for i in inputs if i not in upstream]
    idle = [n for n in flat.nodes if n not in downstream or n not in upstream]
    idle = [n for n in idle if n not in inputs and n not in outputs]
    if idle:
        shown = ", ".join(f"'{n}'" for n in idle[:5]) + (" ..." if len(idle) > 5 else "")
        advisory.append(f"{len(idle)} node(s) lie on no Input-to-Output path: {shown}")
    return fatal, advisory


def require_runnable(flat: NIRGraph, file: str | None = None) -> None:
    """Raise ModelError (one line, naming ``file``) when the graph cannot run at all."""
    fatal, _ = problems(flat)
    if fatal:
        raise ModelError(fatal[0], file=file)
