"""discretize: continuous-time NIR neurons and delays -> per-step coefficients at ``ctx.dt``.

Requires: a normalized graph (flat, parameters broadcast to layer shapes).
Guarantees: every neuron node (I, IF, LI, LIF, CubaLI, CubaLIF) and Threshold
is a DiscreteNeuron and every Delay a StepDelay; nothing else changes. The
coefficients are the float simulator's (nirc.simulate.coefficients, forward
Euler or exact, docs/semantics.md, with the input scaling of ctx.convention's exporter),
rewritten in the generic discrete neuron's
form: the synaptic current is carried pre-multiplied by the factor that takes
it into v (so v = v_decay*v + i + ...), and that factor moves into the input
gain. A Threshold becomes a memoryless neuron (v_decay 0).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nirc.discrete import DiscreteNeuron, StepDelay
from nirc.errors import ModelError
from nirc.hwnet import per_neuron
from nirc.ir.nodes import NEURON_TYPES, Delay, NIRGraph, Node, Threshold
from nirc.passes.context import PassContext


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(np.shape(a), np.shape(b))),
                     where=b != 0)


def discrete_neuron(node: Node, name: str, dt: float, method: str,
                    input_rule: str = "nir") -> DiscreteNeuron:
    """The generic discrete form of one neuron node (arrays of the layer's shape);
    ``input_rule`` as in nirc.simulate.coefficients (the exporter's input scaling)."""
    from nirc.simulate import coefficients

    if isinstance(node, Threshold):
        th = np.asarray(node.threshold, np.float64)
        zeros = np.zeros_like(th)
        return DiscreteNeuron(i_decay=zeros, v_decay=zeros, input_gain=np.ones_like(th),
                              v_direct=zeros, v_bias=zeros, threshold=th, v_reset=zeros,
                              spiking=True, nir_source="Threshold")
    c = coefficients(node, dt, method, name, input_rule)
    shape = np.broadcast_shapes(*(np.shape(a) for a in (c.decay_v, c.rest_v, c.from_x)))

    def full(a, default=0.0):
        return per_neuron(default if a is None else a, shape)

    if c.decay_i is None:
        i_decay = full(0.0)
        gain = full(c.from_x)
        direct = full(0.0)
    else:
        decay_i, gain_i = full(c.decay_i), full(c.gain_i)
        # The factor taking i into v: from_i = factor * decay_i (Euler: km*r).
        factor = np.where(decay_i != 0, _safe_div(full(c.from_i), decay_i),
                          _safe_div(full(c.from_x), gain_i))
        i_decay = decay_i
        gain = factor * gain_i
        # Whatever of the direct input term the current does not explain (exact method only).
        direct = _safe_div(full(c.from_x) - gain, gain)
    spiking = c.v_threshold is not None
    return DiscreteNeuron(
        i_decay=i_decay, v_decay=full(c.decay_v), input_gain=gain, v_direct=direct,
        v_bias=full(c.rest_v), threshold=full(c.v_threshold, np.inf) if spiking else full(np.inf),
        v_reset=full(c.v_reset) if spiking else full(0.0), spiking=spiking,
        nir_source=node.nir_type)


def step_delay(node: Delay, name: str, dt: float, file: str | None) -> StepDelay:
    steps = np.rint(np.asarray(node.delay, np.float64) / dt)
    if steps.size and np.any(steps != steps.flat[0]):
        raise ModelError(f"delays differ across the layer ({sorted(set(steps.ravel().tolist()))[:4]}"
                         f" steps at dt = {dt:g} s); a synaptic table has one delay",
                         file=file, node=name, field="delay")
    return StepDelay(steps=np.asarray(int(steps.flat[0]) if steps.size else 0))


def discretize(graph: NIRGraph, ctx: PassContext) -> NIRGraph:
    """Replace neuron, Threshold and Delay nodes by their per-step forms at ctx.dt."""
    nodes: dict[str, Node] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, (*NEURON_TYPES, Threshold)):
            rule = ctx.convention.input_rule(node.nir_type) if ctx.convention else "nir"
            node = discrete_neuron(node, name, ctx.dt, ctx.method, rule)
        elif isinstance(node, Delay):
            node = step_delay(node, name, ctx.dt, ctx.file)
        nodes[name] = node
    ctx.report["discretize"] = {"dt": ctx.dt, "method": ctx.method}
    return replace(graph, nodes=nodes)
