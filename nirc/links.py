"""Link latency of a multi-chip placement: added to the tables whose spikes cross chips, paths balanced.

``add_link_latency(net, placement, target)`` requires a quantized hardware
network and its Placement on a system (``placement.system``), and guarantees
a network computing what ``net`` computes, later by a fixed number of steps
per population:

- a table with synapses between chips ``hops`` links apart waits
  ``hops * system.link.latency_steps`` steps more (its whole table: one delay
  per table, the hwnet contract);
- paths are balanced: every population's ``arrival`` is the most latency any
  path from the inputs brings it, and each feed-forward table into it waits
  ``arrival[target] - arrival[source]`` more, so all paths into a population
  stay aligned and its spikes are those of the single-chip network shifted by
  ``arrival`` steps (verify compares the float run with that shift, via
  ``latency_steps``);
- a recurrent loop (populations feeding each other) cannot be shifted as a
  whole: a loop table that crosses chips keeps its link latency, which
  changes the loop's dynamics; the note says which tables, and the
  emulator is still bit-exact to the network emitted.

Only the delays change; weights, populations and table order do not.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp

from nirc.hwnet import HardwareNetwork
from nirc.placement import Placement


def chip_of(net: HardwareNetwork, placement: Placement, cores_per_chip: int) -> dict[str, np.ndarray]:
    """Chip of every neuron, per population (flat C-order)."""
    return {name: placement.core_of(name, pop.size) // cores_per_chip
            for name, pop in net.populations.items()}


def table_latency(net: HardwareNetwork, chips: dict[str, np.ndarray], hops: np.ndarray,
                  latency_steps: int) -> list[int]:
    """Per table, the link latency its slowest synapse adds (0 if none crosses chips)."""
    out = []
    for t in net.tables:
        if t.source not in net.populations or latency_steps == 0:
            out.append(0)      # network inputs are delivered to every chip directly
            continue
        w = sp.csr_array(t.weights)
        rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
        if not len(rows):
            out.append(0)
            continue
        far = hops[chips[t.source][w.indices], chips[t.target][rows]]
        out.append(int(far.max()) * latency_steps)
    return out


def add_link_latency(net: HardwareNetwork, placement: Placement, target
                     ) -> tuple[HardwareNetwork, dict[str, int], list[str], dict[str, Any]]:
    """(network with delays, extra latency per population, notes, summary for the report)."""
    from nirc.partition.chips import hop_matrix

    system = target.system
    hops = hop_matrix(target)
    chips = chip_of(net, placement, target.core_count)
    extra = table_latency(net, chips, hops, system.link.latency_steps)
    g = nx.DiGraph()
    g.add_nodes_from([*net.inputs, *net.populations])
    g.add_edges_from((t.source, t.target) for t in net.tables)
    component = {}
    for k, members in enumerate(nx.strongly_connected_components(g)):
        for m in members:
            component[m] = k
    cond = nx.condensation(g, scc=[{m for m in g if component[m] == k}
                                   for k in range(max(component.values(), default=-1) + 1)])
    arrival_of = {k: 0 for k in cond.nodes}
    order = {name: i for i, name in enumerate([*net.inputs, *net.populations])}
    for k in nx.lexicographical_topological_sort(
            cond, key=lambda c: min(order[m] for m in cond.nodes[c]["members"])):
        for t, e in zip(net.tables, extra):
            a, b = component[t.source], component[t.target]
            if b == k and a != k:
                arrival_of[k] = max(arrival_of[k], arrival_of[a] + e)
    arrival = {name: arrival_of[component[name]] for name in net.populations}
    tables, notes, looped = [], [], []
    for t, e in zip(net.tables, extra):
        if component[t.source] == component[t.target]:
            pad = e                     # inside a loop: the link latency, unbalanced
            if e:
                looped.append(f"{t.source}->{t.target} (+{e})")
        else:
            pad = arrival[t.target] - (arrival.get(t.source, 0))
        tables.append(t.with_(delay=int(t.delay) + pad) if pad else t)
    crossing = sum(1 for e in extra if e)
    if crossing:
        notes.append(f"{crossing} tables carry spikes between chips: link latency "
                     f"{system.link.latency_steps} step(s) per hop added, paths balanced (the "
                     f"outputs lag the single-chip network by latency_steps)")
    if looped:
        notes.append("recurrent tables between chips keep their link latency, which changes the "
                     "loop's dynamics against one chip: " + ", ".join(looped))
    summary = {"tables_crossing_chips": crossing,
               "added_delay_by_table": [int(t.delay) - int(o.delay)
                                        for t, o in zip(tables, net.tables)],
               "arrival_steps": {k: v for k, v in arrival.items() if v}}
    return net.with_(tables=tuple(tables)), arrival, notes, summary
