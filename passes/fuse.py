"""fuse: a discretized NIR graph -> a hardware network of populations and (not yet unrolled) tables.

Requires: a discretized graph (neurons are DiscreteNeuron, delays StepDelay).
Guarantees: one Population per DiscreteNeuron (float parameters of the
generic discrete neuron, plus ``input_gain`` still to be folded into weights
by unroll), one InputPort per Input, one OutputPort per Output (spikes of a
spiking population, ``v`` of a readout). Every path from a source (Input or
neuron) through weight/shape operators (Affine, Scale, Conv, pooling,
Flatten, StepDelay) into a neuron becomes one SynapseTable with
``weights=None`` and ``kernel["ops"]`` listing the operators in order; its
delay is the path's StepDelay steps plus one per back edge (an edge closing a
cycle, which carries the previous step's value as in the float simulator).
Several sources into one neuron give several tables; a recurrent edge is a
table like any other. A cycle with no neuron in it raises ModelError.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from nirc.discrete import DiscreteNeuron, StepDelay
from nirc.errors import ModelError, NircWarning
from nirc.hwnet import HardwareNetwork, InputPort, OutputPort, Population, SynapseTable
from nirc.ir.graph import infer_shapes, topological_order
from nirc.ir.nodes import Flatten, Input, NIRGraph
from nirc.passes.context import PassContext

POPULATION_PARAMS = ("i_decay", "v_decay", "v_direct", "v_bias", "threshold", "v_reset")


def _population(name: str, node: DiscreteNeuron, shape: tuple[int, ...]) -> Population:
    params = {k: np.asarray(getattr(node, k), np.float64).reshape(-1) for k in POPULATION_PARAMS}
    params["i_bias"] = np.zeros(math.prod(shape))
    params["input_gain"] = np.asarray(node.input_gain, np.float64).reshape(-1)
    return Population(name=name, shape=tuple(shape), params=params, spiking=node.spiking,
                      provenance=(name,))


def fuse(graph: NIRGraph, ctx: PassContext) -> HardwareNetwork:
    """Group weight chains with the neuron after them into populations and tables."""
    shapes = infer_shapes(graph)
    order = {name: i for i, name in enumerate(topological_order(graph))}
    nodes = graph.nodes
    preds = {name: graph.predecessors(name) for name in nodes}

    def is_source(name: str) -> bool:
        return isinstance(nodes[name], (DiscreteNeuron, Input))

    def paths_into(target: str):
        """(source, ops from source to target, delay) for every path into ``target``."""
        found = []
        stack = [(p, target, (), 0, (target,)) for p in reversed(preds[target])]
        while stack:
            name, after, ops, delay, seen = stack.pop()
            delay += int(order[name] >= order[after])   # a back edge: previous step's value
            if is_source(name):
                found.append((name, ops, delay))
                continue
            if name in seen:
                raise ModelError(f"a cycle through {' -> '.join(reversed(seen))} has no neuron "
                                 f"in it (an algebraic loop)", file=ctx.file, node=name)
            node = nodes[name]
            if isinstance(node, StepDelay):
                delay += int(node.steps)
            op = (name, node, tuple(shapes[name].input))
            for p in reversed(preds[name]):
                stack.append((p, name, (op, *ops), delay, (*seen, name)))
        return found

    inputs = {name: InputPort(name, tuple(shapes[name].output))
              for name, node in nodes.items() if isinstance(node, Input)}
    populations = {name: _population(name, node, tuple(shapes[name].output))
                   for name, node in nodes.items() if isinstance(node, DiscreteNeuron)}
    tables: list[SynapseTable] = []
    for target in populations:
        for source, ops, delay in paths_into(target):
            tables.append(SynapseTable(
                source=source, target=target, weights=None, delay=delay,
                provenance=tuple(op[0] for op in ops) + (target,),
                kernel={"ops": ops}))
    outputs = {}
    used = {t.source for t in tables} | {n for t in tables for n in t.provenance}
    for name in graph.outputs():
        used.add(name)
        source = preds[name][0]
        while isinstance(nodes[source], Flatten):
            used.add(source)
            source = preds[source][0]
        used.add(source)
        pop = populations[source]
        outputs[name] = OutputPort(name=name, source=source,
                                   quantity="spikes" if pop.spiking else ctx.model.readout_state,
                                   shape=tuple(shapes[name].input))
    for name, node in nodes.items():
        if name not in used and not isinstance(node, (Input, DiscreteNeuron)):
            warnings.warn(NircWarning(f"node '{name}' reaches no neuron and no output; it is "
                                      f"dropped"), stacklevel=2)
    ctx.report["fuse"] = {"populations": len(populations), "tables": len(tables)}
    return HardwareNetwork(neuron_model="float", dt=ctx.dt, inputs=inputs,
                           populations=populations, tables=tuple(tables), outputs=outputs)
