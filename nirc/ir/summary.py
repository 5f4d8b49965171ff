"""A per-layer account of a NIR graph: shapes, parameters, synapses, neurons.

What ``nirc inspect`` shows; also usable from Python. Works on the flattened graph
(nested graphs inlined, names "sub.inner") in topological order. Synapse counts are of
the unrolled network: a convolution counts every (input neuron, output neuron) pair a
kernel tap connects, padding excluded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from nirc.ir.graph import flatten, infer_shapes, topological_order
from nirc.ir.nodes import NEURON_TYPES, SPIKING_TYPES, NIRGraph


@dataclass(frozen=True)
class LayerSummary:
    name: str
    type: str
    input_shape: list[int] | None
    output_shape: list[int] | None
    parameters: int
    synapses: int
    nonzero_synapses: int
    neurons: int          # state-holding units (neuron nodes only)
    spiking: bool


@dataclass(frozen=True)
class GraphSummary:
    layers: list[LayerSummary]
    edges: list[tuple[str, str]]

    @property
    def totals(self) -> dict[str, int]:
        return {"nodes": len(self.layers), "edges": len(self.edges),
                "parameters": sum(x.parameters for x in self.layers),
                "synapses": sum(x.synapses for x in self.layers),
                "nonzero_synapses": sum(x.nonzero_synapses for x in self.layers),
                "neurons": sum(x.neurons for x in self.layers)}

    def to_dict(self) -> dict:
        # (dataclasses.asdict copies recursively: a tenth of inspecting a 10^4-node graph)
        names = [f.name for f in fields(LayerSummary)]
        return {"nodes": [{k: getattr(x, k) for k in names} for x in self.layers],
                "edges": [list(e) for e in self.edges], "totals": self.totals}


def summarize(graph: NIRGraph) -> GraphSummary:
    flat = flatten(graph)
    shapes = infer_shapes(flat)
    order = topological_order(flat)
    rank = {name: i for i, name in enumerate(order)}
    layers = []
    for name in order:
        node = flat.nodes[name]
        ins, outs = shapes[name].input, shapes[name].output
        synapses = node.synapses(ins) if ins is not None else (0, 0)
        is_neuron = isinstance(node, NEURON_TYPES)
        layers.append(LayerSummary(
            name=name, type=node.nir_type,
            input_shape=None if ins is None else list(ins),
            output_shape=None if outs is None else list(outs),
            parameters=node.parameter_count(), synapses=synapses[0],
            nonzero_synapses=synapses[1],
            neurons=math.prod(outs) if is_neuron and outs is not None else 0,
            spiking=isinstance(node, SPIKING_TYPES)))
    edges = sorted(flat.edges, key=lambda e: (rank[e[0]], rank[e[1]]))
    return GraphSummary(layers=layers, edges=edges)
