"""Core loads under the counting model of nirc.partition.demand, kept up to date block by block.

Used by the sequential fill (the baseline, and the starting point CP-SAT is
given) and to check any block->core assignment at block granularity.
Synapse memory is SynapseListCost.bound_bits of the core's synapses and
fan-in. Fan-in of group g on core c is min(senders of g, sum of feeders(g, b) over
blocks b on c): exact when every block of a dense layer is fed by all of g,
an upper bound otherwise. Fan-out of a core sums, over the groups placed on
it, the fan-in those groups cause on all cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nirc.partition.blocks import ADDITIVE, BlockGraph
from nirc.partition.demand import SynapseListCost


@dataclass
class Overflow:
    resource: str
    core: int
    demand: int
    capacity: int


class CoreLoads:
    """Loads of every core for a partial assignment of blocks to cores."""

    def __init__(self, graph: BlockGraph, capacities: dict[str, np.ndarray], cost: SynapseListCost):
        self.graph = graph
        self.cost = cost
        self.capacities = capacities
        cores = len(next(iter(capacities.values())))
        self.cores = cores
        groups = graph.feeders.shape[0]
        self.core_of_block = np.full(graph.block_count, -1, dtype=np.int64)
        self.additive = {r: np.zeros(cores, dtype=np.int64) for r in ADDITIVE}
        self.fed = np.zeros((groups, cores), dtype=np.int64)      # sum of feeders per (group, core)
        self.fan_in = np.zeros(cores, dtype=np.int64)
        self.fan_out = np.zeros(cores, dtype=np.int64)
        self._columns = graph.feeders.tocsc()

    def _fan_in_terms(self, fed: np.ndarray, groups: np.ndarray) -> np.ndarray:
        return np.minimum(fed, self.graph.group_senders[groups, None] if fed.ndim == 2
                          else self.graph.group_senders[groups])

    def try_place(self, block: int, core: int, commit: bool = True) -> Overflow | None:
        """Place ``block`` on ``core`` if every core stays within its limits; else say what overflows."""
        caps = self.capacities
        for r in ADDITIVE:
            if r in caps:
                load = self.additive[r][core] + self.graph.demand[r][block]
                if load > caps[r][core]:
                    return Overflow(r, core, int(load), int(caps[r][core]))
        col = self._columns
        groups = col.indices[col.indptr[block]:col.indptr[block + 1]]
        amounts = col.data[col.indptr[block]:col.indptr[block + 1]]
        old = self._fan_in_terms(self.fed[groups, core], groups)
        new = self._fan_in_terms(self.fed[groups, core] + amounts, groups)
        delta = new - old
        fan_in = self.fan_in[core] + int(delta.sum())
        if "fan_in_axons" in caps and fan_in > caps["fan_in_axons"][core]:
            return Overflow("fan_in_axons", core, fan_in, int(caps["fan_in_axons"][core]))
        if "synapse_memory_bits" in caps:
            bits = int(self.cost.bound_bits(self.additive["synapses"][core] + self.graph.demand["synapses"][block],
                                            fan_in))
            if bits > caps["synapse_memory_bits"][core]:
                return Overflow("synapse_memory_bits", core, bits, int(caps["synapse_memory_bits"][core]))
        # Groups already placed send to one more (group, core) set: their cores' fan-out grows.
        fan_out = self.fan_out.copy()
        on_chip = groups < self.graph.block_count
        placed_cores = np.full(len(groups), -1)
        placed_cores[on_chip] = self.core_of_block[groups[on_chip]]
        has_core = placed_cores >= 0
        np.add.at(fan_out, placed_cores[has_core], delta[has_core])
        # The block's own neurons send to the cores already holding their targets.
        own = int(self._fan_in_terms(self.fed[block], np.full(self.cores, block)).sum())
        if block in groups[~has_core & on_chip]:      # a block feeding itself (recurrence)
            own += int(delta[groups == block].sum())
        fan_out[core] += own
        if "fan_out_axons" in caps:
            over = np.flatnonzero(fan_out > caps["fan_out_axons"])
            if len(over):
                c = int(over[0])
                return Overflow("fan_out_axons", c, int(fan_out[c]), int(caps["fan_out_axons"][c]))
        if commit:
            for r in ADDITIVE:
                self.additive[r][core] += self.graph.demand[r][block]
            self.fed[groups, core] += amounts
            self.fan_in[core] = fan_in
            self.fan_out = fan_out
            self.core_of_block[block] = core
        return None


def sequential_fill(graph: BlockGraph, capacities: dict[str, np.ndarray],
                    cost: SynapseListCost) -> tuple[np.ndarray, Overflow | None]:
    """Blocks in network order, each on the current core or else the next (the naive baseline).

    Returns the block->core array (-1 for blocks not placed) and, on failure,
    the overflow that stopped it.
    """
    loads = CoreLoads(graph, capacities, cost)
    core = 0
    for block in range(graph.block_count):
        problem = loads.try_place(block, core)
        while problem is not None:
            if core + 1 >= loads.cores:
                return loads.core_of_block, problem
            core += 1
            problem = loads.try_place(block, core)
            if problem is not None and loads.additive["neurons"][core] == 0 and problem.core == core \
                    and problem.resource not in ("fan_out_axons",):
                return loads.core_of_block, problem
    return loads.core_of_block, None


def check_assignment(graph: BlockGraph, capacities: dict[str, np.ndarray], cost: SynapseListCost,
                     core_of_block: np.ndarray) -> Overflow | None:
    """The first limit an assignment breaks at block granularity, or None."""
    loads = CoreLoads(graph, {r: np.full_like(c, np.iinfo(np.int64).max // 4) for r, c in capacities.items()},
                      cost)
    for block in range(graph.block_count):
        loads.try_place(block, int(core_of_block[block]))
    for r in ADDITIVE:
        if r in capacities:
            over = np.flatnonzero(loads.additive[r] > capacities[r])
            if len(over):
                c = int(over[0])
                return Overflow(r, c, int(loads.additive[r][c]), int(capacities[r][c]))
    memory = cost.bound_bits(loads.additive["synapses"], loads.fan_in)
    for r, load in (("synapse_memory_bits", memory), ("fan_in_axons", loads.fan_in),
                    ("fan_out_axons", loads.fan_out)):
        if r in capacities:
            over = np.flatnonzero(load > capacities[r])
            if len(over):
                c = int(over[0])
                return Overflow(r, c, int(load[c]), int(capacities[r][c]))
    return None
