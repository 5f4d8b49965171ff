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

from nirc.ir.nodes import NIRGraph
from nirc.simulate.engine import SimResult, resolve_dt, run
from nirc.simulate.neurons import METHODS, coefficients

# Used when neither the caller nor the file says: Norse's and Rockpool's export dt.
DEFAULT_DT = 1e-3

__all__ = ["simulate", "SimResult", "resolve_dt", "coefficients", "DEFAULT_DT", "METHODS"]


def simulate(graph: NIRGraph, inputs: Mapping[str, np.ndarray], dt: float | None = None,
             method: str = "euler", batch: bool = False, record: bool = False,
             dtype=np.float64) -> SimResult:
    """Simulate ``graph`` on ``inputs`` ({Input name: (T, *shape)}, or (T, B, *shape) if batch).

    ``dt`` in seconds; None takes graph.metadata["dt"], else DEFAULT_DT.
    ``method``: "euler" (forward Euler) or "exact" (exponential, input held over a step).
    ``record``: also return every neuron node's state trace in SimResult.states.
    Raises NircError subclasses naming the node and field on bad graphs or inputs.
    """
    dt_value, _ = resolve_dt(dt, graph, DEFAULT_DT)
    return run(graph, inputs, dt_value, method=method, batch=batch, record=record, dtype=dtype)
