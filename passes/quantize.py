"""quantize: float hardware network -> the target neuron model's integer formats.

Requires: an unrolled hardware network in the generic float model (every
table has weights; populations carry the float_reference parameters).
Guarantees: a network with ``neuron_model`` = the target's model and
``quantized`` = True; every population's params are exactly the model's
``param_names`` (integers for hardware models), every table holds the
model's stored weights, its per-table fields in ``kernel`` and a delay of at
least the model's minimum (one step on Loihi: its synapses buffer a step).
The model decides the scaling (per layer, or per channel with
``ctx.granularity = "channel"``); ``ctx.report["quantization"]`` gets one row
per population with the error introduced and what was not exact, and
``ctx.report["latency_steps"]`` the steps by which each population lags the
float network because of delays the hardware added (longest path from the
inputs through same-step tables), ``ctx.report["table_delays"]`` each table's
float and hardware delay (which balance_delays reads). A model may return
constant input currents as extra tables from ``nirc.hwnet.BIAS_SOURCE``: they
come from one added population, ``always_on`` (the model's
:meth:`~nirc.neuron_models.base.NeuronModel.always_on` neuron, one per network),
and are listed after the network's own tables with float delay 0.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from nirc.errors import TargetError
from nirc.hwnet import HardwareNetwork, Population, SynapseTable
from nirc.passes.context import PassContext


def added_latency(before: HardwareNetwork, after: HardwareNetwork) -> dict[str, int]:
    """Per population, the most steps the quantized network adds on a path from the inputs
    through tables that were same-step (delay 0) in the float network."""
    g = nx.DiGraph()
    g.add_nodes_from([*before.inputs, *before.populations])
    for old, new in zip(before.tables, after.tables):
        if old.delay == 0:
            extra = new.delay - old.delay
            weight = max(extra, g.edges[old.source, old.target]["extra"]) \
                if g.has_edge(old.source, old.target) else extra
            g.add_edge(old.source, old.target, extra=weight)
    latency = {name: 0 for name in g.nodes}
    for name in nx.topological_sort(g):      # same-step tables form no cycle (fuse)
        for src, _, data in g.in_edges(name, data=True):
            latency[name] = max(latency[name], latency[src] + data["extra"])
    return {name: latency[name] for name in before.populations}


def table_delays(before: HardwareNetwork, after: HardwareNetwork) -> list[dict]:
    """Per table: its delay in the float network and on the hardware (steps)."""
    return [{"source": new.source, "target": new.target, "float_delay": int(old.delay),
             "delay": int(new.delay)} for old, new in zip(before.tables, after.tables)]


def _always_on_population(net: HardwareNetwork, model) -> Population:
    params = model.always_on()
    if params is None:
        raise TargetError(f"neuron model '{model.name}' returned constant-current tables but "
                          f"has no always-on neuron", field="neuron_model")
    name = "always_on"
    while name in net.populations or name in net.inputs:
        name += "_"
    return Population(name=name, shape=(1,), spiking=True, provenance=("always_on",),
                      params={k: np.full(1, v, dtype=np.int64) for k, v in params.items()})


def quantize(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    """Quantize every population together with the tables into it."""
    model = ctx.model
    new_tables: dict[int, object] = {}
    bias_tables: list[SynapseTable] = []
    populations = {}
    rows = []
    into: dict[str, list[int]] = {}
    for k, t in enumerate(net.tables):
        into.setdefault(t.target, []).append(k)
    for name, pop in net.populations.items():
        index = into.get(name, [])
        new_pop, tables, row = model.quantize(pop, [net.tables[k] for k in index],
                                              ctx.formats, ctx.granularity)
        populations[name] = new_pop
        new_tables.update(zip(index, tables[:len(index)]))
        bias_tables.extend(tables[len(index):])
        rows.append(row)
    ctx.report["quantization"] = rows
    before = net
    if bias_tables:
        # Constant input currents: one always-on neuron feeds them all. Its tables go last
        # (table k of the input is still table k of the output); in the float network they
        # are same-step inputs (float delay 0), from a source of latency 0.
        source = _always_on_population(net, model)
        populations[source.name] = source
        bias_tables = [t.with_(source=source.name) for t in bias_tables]
        before = net.with_(populations={**net.populations, source.name: source},
                           tables=(*net.tables, *(t.with_(delay=0) for t in bias_tables)))
    quantized = net.with_(neuron_model=model.name, populations=populations,
                          tables=(*(new_tables[k] for k in range(len(net.tables))),
                                  *bias_tables),
                          quantized=True)
    ctx.report["latency_steps"] = added_latency(before, quantized)
    ctx.report["table_delays"] = table_delays(before, quantized)
    return quantized
