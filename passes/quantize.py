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
float and hardware delay (which balance_delays reads).
"""

from __future__ import annotations

import networkx as nx

from nirc.hwnet import HardwareNetwork
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


def quantize(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    """Quantize every population together with the tables into it."""
    model = ctx.model
    new_tables: dict[int, object] = {}
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
        new_tables.update(zip(index, tables))
        rows.append(row)
    ctx.report["quantization"] = rows
    quantized = net.with_(neuron_model=model.name, populations=populations,
                          tables=tuple(new_tables[k] for k in range(len(net.tables))),
                          quantized=True)
    ctx.report["latency_steps"] = added_latency(net, quantized)
    ctx.report["table_delays"] = table_delays(net, quantized)
    return quantized
