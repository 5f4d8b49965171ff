"""The fewest cores any placement can use: max over resources of demand / capacity.

Demands are counted so that no placement, however the network is cut, needs
less: neurons and synapses as they are; synapse memory as the least any split
of a source neuron's synapses into lists can cost (SynapseListCost.floor_bits:
entries plus one header per started group, in whole words); fan-in as the number of source neurons with any synapse
(each enters at least one core); fan-out as the number of on-chip neurons with
any synapse (each needs at least one output axon). With cores of different
sizes the bound takes the largest cores first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nirc.partition.connectivity import Connectivity
from nirc.partition.demand import SynapseListCost


@dataclass(frozen=True)
class LowerBound:
    cores: int
    resource: str                      # the resource that sets the bound
    demand: dict[str, int]             # total demand per bounded resource


def total_demand(conn: Connectivity, cost: SynapseListCost) -> dict[str, int]:
    out_neurons = np.diff(conn.from_neurons.tocsc().indptr)      # synapses leaving each neuron
    out_inputs = np.diff(conn.from_inputs.tocsc().indptr)
    return {
        "neurons": conn.neuron_count,
        "synapses": int(conn.from_neurons.sum() + conn.from_inputs.sum()),
        "synapse_memory_bits": int(cost.floor_bits(out_neurons).sum() + cost.floor_bits(out_inputs).sum()),
        "fan_in_axons": int(np.count_nonzero(out_neurons) + np.count_nonzero(out_inputs)),
        "fan_out_axons": int(np.count_nonzero(out_neurons)),
    }


def cores_needed(demand: int, capacities: np.ndarray) -> int | None:
    """Fewest cores (largest first) whose capacities add up to ``demand``; None if all do not."""
    if demand <= 0:
        return 0
    # Clipping at the demand keeps unbounded cores (huge capacities) from overflowing the sum.
    running = np.cumsum(np.sort(np.minimum(np.asarray(capacities), demand))[::-1])
    k = int(np.searchsorted(running, demand, side="left"))
    return k + 1 if k < len(running) else None


def lower_bound_cores(conn: Connectivity, cost: SynapseListCost,
                      capacities: dict[str, np.ndarray]) -> tuple[LowerBound, dict[str, int | None]]:
    """The bound, and the cores each resource alone needs (None: more than the chip has)."""
    demand = total_demand(conn, cost)
    needs = {r: cores_needed(demand[r], capacities[r]) for r in capacities if r in demand}
    overflow = [r for r, k in needs.items() if k is None]
    if overflow:
        worst = overflow[0]
        return LowerBound(cores=len(next(iter(capacities.values()))) + 1, resource=worst,
                          demand=demand), needs
    best = max(needs, key=lambda r: (needs[r], -list(needs).index(r)))
    return LowerBound(cores=max(needs[best], 1 if conn.neuron_count else 0), resource=best,
                      demand=demand), needs
