"""The fewest cores any placement can use: max over resources of demand / capacity.

Demands are counted so that no placement, however the network is cut, needs
less. Let T(s) be the distinct neurons source s (a neuron or a network input)
has synapses to, n(s) its synapses, and K the most neurons any core holds.
The targets of s sit on at least k(s) = ceil(T(s) / K) cores (fewer cores hold
fewer than T(s) neurons), and s has at least one synapse list, one fan-in axon
and, if it is a neuron, one output axon per core it reaches. Hence:

- neurons and synapses: as they are;
- fan_in_axons >= sum over sources of k(s) (one axon per (source, core) pair);
- fan_out_axons >= sum over on-chip neurons of k(s) (one per (neuron, core));
- synapse_memory_bits >= sum over sources of the least that n(s) synapses in
  at least k(s) lists can cost (SynapseListCost.floor_bits: entries, one header
  per started group and per list, in whole words).

With cores of different sizes the bound takes the largest cores first. The
bound reports which resource sets it (``LowerBound.resource``).
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


def cores_reached(targets: np.ndarray, neurons_per_core) -> np.ndarray:
    """Fewest cores a source with ``targets`` distinct target neurons reaches: ceil(T / K)
    (``neurons_per_core``: K, one for all or one per source; None: unbounded)."""
    targets = np.asarray(targets, dtype=np.int64)
    if neurons_per_core is None:
        return (targets > 0).astype(np.int64)
    return -(-targets // np.maximum(1, np.asarray(neurons_per_core, dtype=np.int64)))


def targets_per_core_by_memory(mat, synapses_of_neuron: np.ndarray, cost: SynapseListCost,
                               memory_bits: int, neurons_per_core: int | None) -> np.ndarray:
    """Per source (column of ``mat``): the most of its targets one core can hold.

    Every synapse into a core's neurons is an entry of that core's memory, so a
    core holds at most memory_bits / (entry_bits x m) neurons that each have at
    least m synapses; m here is the fewest synapses of any of the source's targets."""
    csc = mat.tocsc()
    fewest = np.zeros(csc.shape[1], dtype=np.int64)
    fed = np.flatnonzero(np.diff(csc.indptr) > 0)
    if len(fed):
        fewest[fed] = np.minimum.reduceat(synapses_of_neuron[csc.indices], csc.indptr[fed])
    most = np.where(fewest > 0, memory_bits // np.maximum(1, fewest * cost.entry_bits),
                    np.iinfo(np.int64).max // 4)
    return most if neurons_per_core is None else np.minimum(most, int(neurons_per_core))


def total_demand(conn: Connectivity, cost: SynapseListCost,
                 neurons_per_core: int | None = None,
                 memory_bits: int | None = None) -> dict[str, int]:
    """Least total demand per resource of any placement (``neurons_per_core``: K, None if
    unbounded; ``memory_bits``: a core's synapse memory, which also bounds how many of a
    source's targets share a core: targets_per_core_by_memory)."""
    out = {}
    if memory_bits is not None:
        synapses_of_neuron = (np.asarray(conn.from_neurons.sum(axis=1)).ravel()
                              + np.asarray(conn.from_inputs.sum(axis=1)).ravel()).astype(np.int64)
    for name, mat in (("neurons", conn.from_neurons), ("inputs", conn.from_inputs)):
        # Entries are synapse counts per (target, source) pair: synapses = column sums,
        # distinct targets = stored pairs per column.
        targets = np.diff(mat.tocsc().indptr).astype(np.int64)
        per_core = neurons_per_core if memory_bits is None else targets_per_core_by_memory(
            mat, synapses_of_neuron, cost, memory_bits, neurons_per_core)
        out[name] = (np.asarray(mat.sum(axis=0)).ravel().astype(np.int64), targets, per_core)
    (syn_n, tgt_n, k_n), (syn_i, tgt_i, k_i) = out["neurons"], out["inputs"]
    reach_n, reach_i = cores_reached(tgt_n, k_n), cores_reached(tgt_i, k_i)
    profiles = conn.profile_of_neuron
    return {
        # every profile is held by at least one core
        "neuron_profiles": int(np.unique(profiles).size) if profiles is not None else 0,
        "neurons": conn.neuron_count,
        "synapses": int(syn_n.sum() + syn_i.sum()),
        "synapse_memory_bits": int(cost.floor_bits(syn_n, reach_n).sum() + cost.floor_bits(syn_i, reach_i).sum()),
        "fan_in_axons": int(reach_n.sum() + reach_i.sum()),
        "fan_out_axons": int(reach_n.sum()),
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
    largest = int(capacities["neurons"].max()) if "neurons" in capacities else None
    demand = total_demand(conn, cost, largest)
    needs = {r: cores_needed(demand[r], capacities[r]) for r in capacities if r in demand}
    overflow = [r for r, k in needs.items() if k is None]
    if overflow:
        worst = overflow[0]
        return LowerBound(cores=len(next(iter(capacities.values()))) + 1, resource=worst,
                          demand=demand), needs
    best = max(needs, key=lambda r: (needs[r], -list(needs).index(r)))
    return LowerBound(cores=max(needs[best], 1 if conn.neuron_count else 0), resource=best,
                      demand=demand), needs
