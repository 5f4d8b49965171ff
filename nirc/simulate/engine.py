"""Stepping a whole NIR graph through discrete time: order, fan-in, back edges, delays, recording.

Requires a graph that validates and whose shapes infer (nested graphs are
flattened here). Guarantees, per time step t and in ``topological_order``:
each node's input is the sum of its predecessors' outputs, taken from step t
when the predecessor already ran in this step and from step t-1 when the edge
closes a cycle (before step 0 every node is taken to have seen zero input:
zero states, and stateless nodes hold their value at zero); Input nodes emit ``inputs[name][t]`` and
Output nodes the sum of what reaches them. The conventions are written out in
docs/semantics.md.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np

from nirc.convention import DT_RANGE
from nirc.errors import ModelError, NircError, NircWarning, locate
from nirc.ir.graph import flatten, infer_shapes, topological_order
from nirc.ir.nodes import (NEURON_TYPES, SPIKING_TYPES, Delay, Input, NIRGraph, Node, Output)
from nirc.simulate.neurons import METHODS, NIR_RULES, NeuronLayer, SpikeRules, coefficients
from nirc.simulate.operators import operator_for


SPIKE_COUNT_MAX = np.iinfo(np.int32).max

if TYPE_CHECKING:
    from nirc.convention import Convention


def recurrent_nodes(graph: NIRGraph) -> set[str]:
    """Nodes on a cycle of a flat graph (a self-loop counts)."""
    import networkx as nx

    g = nx.DiGraph(list(graph.edges))
    return {n for comp in nx.strongly_connected_components(g) for n in comp
            if len(comp) > 1 or g.has_edge(n, n)}


def spike_rules(convention: Convention | None, node: Node, recurrent: bool) -> SpikeRules:
    """The firing and reset rules of one neuron node under ``convention``.

    snnTorch's delayed reset to zero clears the membrane before the update in Leaky
    (a feed-forward LIF) but clears the updated membrane in Synaptic (CubaLIF), RLeaky
    and RSynaptic (a neuron on a cycle): the spike trains differ, so both are kept.
    """
    if convention is None:
        return NIR_RULES
    clears = "after" if convention.exporter == "snntorch" and (
        recurrent or node.nir_type == "CubaLIF") else "before"
    return SpikeRules(reset=convention.reset, reset_delay=convention.reset_delay,
                      zero_clears=clears, from_stored=convention.exporter == "snntorch",
                      limit=convention.spike_limit,
                      test=convention.threshold_test, v_min=convention.v_min)


@dataclass
class SimResult:
    """What a simulation produced; arrays are (T, *shape), or (T, B, *shape) when batched.

    outputs: one array per Output node. spikes: one array per spiking node (IF, LIF,
    CubaLIF, Threshold), always recorded: boolean under one-spike rules, the spike count
    per step (int32) under a convention that fires several. states: per neuron
    node {"v": ..., "i": ...} (``i`` for Cuba nodes), only when ``record``.
    """

    outputs: dict[str, np.ndarray]
    spikes: dict[str, np.ndarray]
    states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    dt: float = 0.0
    method: str = "euler"
    steps: int = 0


class DelayLine:
    """y[t] = x[t - d] per element, d = round(delay / dt) steps, zero before the first input."""

    def __init__(self, node: Delay, name: str, dt: float, shape: tuple[int, ...], dtype):
        exact = np.asarray(node.delay, dtype=np.float64) / dt
        steps = np.rint(exact)
        if np.any(np.abs(exact - steps) > 1e-6 * np.maximum(1.0, exact)):
            warnings.warn(NircWarning(
                f"{locate(node=name, field='delay')}: {np.max(np.abs(exact - steps)) * dt:g} s "
                f"is not a whole number of dt = {dt:g} s steps; rounded to the nearest step"),
                stacklevel=4)
        self.steps = np.broadcast_to(steps.astype(np.int64), shape[1:]).copy()
        self.length = int(self.steps.max(initial=0)) + 1
        self.buffer = np.zeros((self.length, *shape), dtype=dtype)
        self.t = 0
        if self.length > 1:
            # Gather index: (position in ring, then every batch and element position).
            self.index = np.broadcast_to(self.steps, shape)[None]

    def step(self, x: np.ndarray) -> np.ndarray:
        slot = self.t % self.length
        self.buffer[slot] = x
        self.t += 1
        if self.length == 1:
            return x
        ring = (slot - self.index) % self.length
        return np.take_along_axis(self.buffer, ring, axis=0)[0]


# How resolve_dt names where dt came from: the option, the file's metadata, the default.
DT_SOURCES = ("given", "the file's metadata 'dt'", "the default")




def resolve_dt(dt: float | None, graph: NIRGraph, default: float,
               sources: tuple[str, str, str] = DT_SOURCES) -> tuple[float, str]:
    """The time step to simulate with and where it came from: option, file metadata, or
    default (named by ``sources`` in that order, in the result and in errors)."""
    if dt is not None:
        source = sources[0]
    elif "dt" in graph.metadata:
        dt, source = graph.metadata["dt"], sources[1]
    else:
        dt, source = default, sources[2]
    try:
        value = float(np.asarray(dt).reshape(()))
    except (TypeError, ValueError):
        raise ModelError(f"dt must be a number of seconds, got {dt!r} ({source})",
                         field="dt") from None
    if not math.isfinite(value) or value <= 0:
        raise ModelError(f"dt must be a positive number of seconds, got {value:g} ({source})",
                         field="dt")
    if not DT_RANGE[0] <= value <= DT_RANGE[1]:
        raise ModelError(f"dt must be between {DT_RANGE[0]:g} and {DT_RANGE[1]:g} s, got "
                         f"{value:g} ({source})", field="dt")
    return value, source


def _check_inputs(graph: NIRGraph, inputs: Mapping[str, np.ndarray],
                  shapes: dict, batch: bool) -> tuple[int, int]:
    """Steps T and batch size B; raises NircError naming the array and the expected shape."""
    expected = set(graph.inputs())
    given = set(inputs)
    if given != expected:
        missing, extra = sorted(expected - given), sorted(given - expected)
        parts = ([f"missing input(s) {missing}"] if missing else []) + \
                ([f"unknown input(s) {extra} (the graph's Input nodes are {sorted(expected)})"]
                 if extra else [])
        raise NircError("; ".join(parts))
    steps = batch_size = None
    for name in sorted(expected):
        array = np.asarray(inputs[name])
        want = shapes[name].output
        lead = 2 if batch else 1
        layout = "(T, B, " if batch else "(T, "
        if array.ndim != lead + len(want) or tuple(array.shape[lead:]) != tuple(want):
            raise NircError(f"input '{name}' has shape {list(array.shape)}, expected "
                            f"{layout}{', '.join(map(str, want))})", node=name)
        if steps is not None and array.shape[0] != steps:
            raise NircError(f"input '{name}' has {array.shape[0]} steps, other inputs {steps}",
                            node=name)
        if batch and batch_size is not None and array.shape[1] != batch_size:
            raise NircError(f"input '{name}' has batch size {array.shape[1]}, other inputs "
                            f"{batch_size}", node=name)
        steps = array.shape[0]
        batch_size = array.shape[1] if batch else 1
        if array.dtype.kind not in "biuf":
            raise NircError(f"input '{name}' has dtype {array.dtype}, expected numbers", node=name)
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise NircError(f"input '{name}' contains NaN or Inf", node=name)
    if steps is None:
        raise ModelError("the graph has no Input node")
    return steps, batch_size


def prepare(graph: NIRGraph) -> tuple[NIRGraph, dict]:
    """The flat, validated graph and its shapes (every node must have a known shape)."""
    flat = flatten(graph)
    flat.validate()
    shapes = infer_shapes(flat)
    for name, s in shapes.items():
        if s.output is None or (not isinstance(flat.nodes[name], Input) and s.input is None):
            raise ModelError("shape could not be inferred (no shaped node connects to it)",
                             node=name)
    return flat, shapes


def run(graph: NIRGraph, inputs: Mapping[str, np.ndarray], dt: float, method: str = "euler",
        batch: bool = False, record: bool = False, dtype=np.float64,
        convention: Convention | None = None) -> SimResult:
    """Simulate ``graph`` on ``inputs`` for T steps of ``dt`` seconds (see module docstring).

    ``convention``: the reset, spike, threshold, floor and input rules to follow (None:
    NIR's own); ``dt`` and ``method`` are given separately and always win."""
    if method not in METHODS:
        raise NircError(f"unknown method '{method}', expected one of {', '.join(METHODS)}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise NircError(f"dt must be a positive number of seconds, got {dt!r}")
    flat, shapes = prepare(graph)
    steps, batch_size = _check_inputs(flat, inputs, shapes, batch)
    dtype = np.dtype(dtype)
    order = topological_order(flat)
    preds = {name: flat.predecessors(name) for name in order}
    recurrent = recurrent_nodes(flat)

    step_fns: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    layers: dict[str, NeuronLayer] = {}
    for name in order:
        node: Node = flat.nodes[name]
        shape = (batch_size, *shapes[name].output)
        if isinstance(node, NEURON_TYPES):
            rule = convention.input_rule(node.nir_type) if convention else "nir"
            layers[name] = NeuronLayer(coefficients(node, dt, method, name, rule), shape, dtype,
                                       spike_rules(convention, node, name in recurrent))
            step_fns[name] = layers[name].step
        elif isinstance(node, Delay):
            step_fns[name] = DelayLine(node, name, dt, shape, dtype).step
        elif not isinstance(node, (Input, Output)):
            step_fns[name] = operator_for(node, dtype)

    # Latest output of every node; a node not yet run in step t still holds step t-1's.
    # Before step 0 every node saw zero input: states are zero, and a stateless node
    # holds what it computes from zero (an Affine its bias), as snnTorch's RLeaky does.
    latest = {name: np.zeros((batch_size, *shapes[name].output), dtype=dtype) for name in order}
    for name, fn in step_fns.items():
        if name not in layers and not isinstance(flat.nodes[name], Delay):
            latest[name] = fn(np.zeros((batch_size, *shapes[name].input), dtype=dtype))
    feeds = {name: (np.asarray(inputs[name], dtype=dtype) if batch
                    else np.asarray(inputs[name], dtype=dtype)[:, None])
             for name in flat.inputs()}
    silence = {name: np.zeros((batch_size, *shapes[name].input), dtype=dtype)
               for name in order if not preds[name] and name not in feeds}
    outputs = {name: np.zeros((steps, batch_size, *shapes[name].output), dtype=dtype)
               for name in flat.outputs()}
    spiking = [n for n in order if isinstance(flat.nodes[n], SPIKING_TYPES)]
    # Booleans under one-spike rules; under multi-spike rules (Sinabs, Rockpool) the count, which
    # is what a chip firing several spikes per step is compared with.
    multi = convention is not None and convention.spike_limit != 1
    spike_dtype = np.int32 if multi else bool
    spikes = {n: np.zeros((steps, batch_size, *shapes[n].output), dtype=spike_dtype)
              for n in spiking}
    states = {n: {k: np.zeros((steps, *v.shape), dtype=dtype)
                  for k, v in layers[n].state().items()} for n in layers} if record else {}

    for t in range(steps):
        for name in order:
            if name in feeds:
                latest[name] = feeds[name][t]
                continue
            sources = preds[name]
            if len(sources) == 1:
                x = latest[sources[0]]
            elif sources:
                x = sum(latest[s] for s in sources)
            else:
                x = silence[name]
            if name in outputs:
                latest[name] = x
                outputs[name][t] = x
                continue
            latest[name] = step_fns[name](x)
        for n in spiking:
            if multi:
                # A runaway model's counts pass int32 (a deep chain with gain > 1 reaches 1e80):
                # saturate rather than wrap to negative counts that later stages refuse.
                count = np.nan_to_num(np.rint(latest[n]), nan=0.0, posinf=SPIKE_COUNT_MAX)
                spikes[n][t] = np.clip(count, 0, SPIKE_COUNT_MAX)
            else:
                spikes[n][t] = latest[n] > 0
        for n, trace in states.items():
            for key, value in layers[n].state().items():
                trace[key][t] = value

    def unbatch(a: np.ndarray) -> np.ndarray:
        return a if batch else a[:, 0]

    return SimResult(
        outputs={k: unbatch(v) for k, v in outputs.items()},
        spikes={k: unbatch(v) for k, v in spikes.items()},
        states={n: {k: unbatch(v) for k, v in d.items()} for n, d in states.items()},
        dt=dt, method=method, steps=steps)
