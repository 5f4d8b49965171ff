"""The float reference simulator: NIR semantics over discrete time steps.

``simulate(graph, inputs, dt)`` runs any NIR graph (nested, recurrent, several
inputs and outputs) with whole-layer numpy operations and returns a SimResult
with the outputs, every spiking node's spike train and, on request, membrane
traces. It defines what the compiled network should compute; the conventions
(discretisation, spike test, reset, update order, dt, initial state) are in
docs/semantics.md.

- operators.py: stateless nodes (weights, convolutions, pooling, flatten, threshold)
- neurons.py: neuron dynamics as one affine recurrence per discretisation
- engine.py: stepping the graph (order, fan-in, back edges, delays, recording)
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from nirc.convention import Convention, detect
from nirc.ir.nodes import NIRGraph
from nirc.simulate.engine import SimResult, resolve_dt, run
from nirc.simulate.neurons import METHODS, coefficients

# Used when neither the caller nor the file says: Norse's and Rockpool's export dt.
DEFAULT_DT = 1e-3

__all__ = ["simulate", "SimResult", "resolve_dt", "coefficients", "DEFAULT_DT", "METHODS",
           "Convention", "detect"]


def simulate(graph: NIRGraph, inputs: Mapping[str, np.ndarray], dt: float | None = None,
             method: str | None = None, batch: bool = False, record: bool = False,
             dtype=np.float64, convention: Convention | None = None) -> SimResult:
    """Simulate ``graph`` on ``inputs`` ({Input name: (T, *shape)}, or (T, B, *shape) if batch).

    ``convention`` (nirc.convention.Convention, e.g. from ``detect(graph)``): run the file
    as its framework computed it (dt, discretisation, reset, spike and input rules).
    None: NIR's own semantics (docs/semantics.md).
    ``dt`` in seconds; None takes the convention's dt, else graph.metadata["dt"], else
    DEFAULT_DT. ``method``: "euler" (forward Euler) or "exact" (exponential, input held
    over a step); None takes the convention's, else "euler".
    ``record``: also return every neuron node's state trace in SimResult.states.
    Spiking outputs are 0/1, or spike counts under a multi-spike convention.
    Raises NircError subclasses naming the node and field on bad graphs or inputs.
    """
    if convention is not None:
        dt_value = convention.dt if dt is None else resolve_dt(dt, graph, DEFAULT_DT)[0]
        method = method or convention.discretisation
    else:
        dt_value, _ = resolve_dt(dt, graph, DEFAULT_DT)
        method = method or "euler"
    return run(graph, inputs, dt_value, method=method, batch=batch, record=record, dtype=dtype,
               convention=convention)
