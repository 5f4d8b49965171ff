"""Core loads under the counting model of nirc.partition.demand, kept up to date block by block.

Used by the greedy fills (the baseline, and the starting points CP-SAT is
given) and to check any block->core assignment at block granularity.
Synapse memory and fan-in are counted exactly as Placement reports them: each
core keeps, per source neuron feeding it, how many synapses that source has
into the core (sorted arrays), so placing a block changes the memory by
sum(bits(old + new) - bits(old)) over the block's sources and the fan-in by
the sources new to the core. (CP-SAT, which cannot express the rounding,
enforces the linear upper bound SynapseListCost.bound_bits instead.) For
fan-out, the neurons of group g sending to core c are counted exactly through
atoms (see BlockGraph) when g has few, else bounded by min(senders of g, sum
of feeders(g, b) over blocks b on c). Fan-out of a core sums, over the
groups placed on it, the (neuron, core) pairs those groups send to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from nirc.partition.blocks import ADDITIVE, BlockGraph
from nirc.partition.demand import SynapseListCost


@dataclass
class Overflow:
    resource: str
    core: int
    demand: int
    capacity: int


class CoreLoads:
    """Loads of every core for a partial assignment of blocks to cores.

    With ``reserve=True`` (the greedy fills) a placed block whose targets are
    not all placed yet keeps fan-out axons in reserve for the cores they will
    likely land on (BlockGraph.likely_cores; one core if ``optimistic``), so
    that filling later cores does not push an early core over its fan-out
    limit.
    """

    def __init__(self, graph: BlockGraph, capacities: dict[str, np.ndarray], cost: SynapseListCost,
                 reserve: bool = False, optimistic: bool = False):
        self.graph = graph
        self.cost = cost
        self.capacities = capacities
        cores = len(next(iter(capacities.values())))
        self.cores = cores
        groups = graph.feeders.shape[0]
        self.core_of_block = np.full(graph.block_count, -1, dtype=np.int64)
        self.additive = {r: np.zeros(cores, dtype=np.int64) for r in ADDITIVE}
        # Per core, allocated when a block first goes there (a system's baseline fill spans
        # thousands of cores, most of them never used): neurons of each group sending to the
        # core, each atom's presence on it, and the sum of feeders of inexact groups into it.
        self._groups, self._atoms = groups, graph.atom_blocks.shape[0]
        self._sending: dict[int, np.ndarray] = {}
        self._present: dict[int, np.ndarray] = {}
        self._fed: dict[int, np.ndarray] = {}
        self.sends = np.zeros(groups, dtype=np.int64)              # per group: sum over cores
        self.fan_in = np.zeros(cores, dtype=np.int64)
        self.memory = np.zeros(cores, dtype=np.int64)
        # Per core: the sources feeding it (sorted) and their synapse counts into it.
        self._sources = [np.zeros(0, dtype=np.int64)] * cores
        self._counts = [np.zeros(0, dtype=np.int64)] * cores
        self._incoming = graph.incoming
        self.fan_out = np.zeros(cores, dtype=np.int64)
        # Neuron profiles on each core (a profile shared by several blocks counts once).
        held = graph.profiles_of_block
        self._profiles_of = held
        self.profiles_on = (np.zeros((held.shape[1], cores), dtype=bool) if held is not None
                            else None)
        self.profile_count = np.zeros(cores, dtype=np.int64)
        self._atoms_of = graph.atom_blocks.tocsc()
        inexact = sp.csr_array(graph.feeders.multiply(~graph.group_exact[:, None]))
        self._inexact_sources = inexact.tocsc()
        self.reserved = (np.zeros(groups, dtype=np.int64) if not reserve
                         else graph.group_senders.copy() if optimistic
                         else self._reservations())

    def _writable(self, store: dict, core: int, length: int, dtype) -> np.ndarray:
        column = store.get(core)
        if column is None:
            column = store[core] = np.zeros(length, dtype=dtype)
        return column

    def _reservations(self) -> np.ndarray:
        """Fan-out each group will likely need: its senders times the cores its targets span."""
        g_ = self.graph
        if g_.likely_cores is None:
            return np.zeros(len(g_.group_senders), dtype=np.int64)
        return g_.group_senders * g_.likely_cores

    def _delta(self, block: int, core: int):
        """Groups whose senders to ``core`` grow if ``block`` goes there, and by how much."""
        col = self._atoms_of
        atoms = col.indices[col.indptr[block]:col.indptr[block + 1]]
        present = self._present.get(core)
        new_atoms = atoms if present is None else atoms[~present[atoms]]
        col = self._inexact_sources
        span = slice(col.indptr[block], col.indptr[block + 1])
        groups, amounts = col.indices[span], col.data[span]
        senders = self.graph.group_senders[groups]
        fed_column = self._fed.get(core)
        fed = np.zeros(len(groups), dtype=np.int64) if fed_column is None else fed_column[groups]
        grown = np.minimum(fed + amounts, senders) - np.minimum(fed, senders)
        grp = np.concatenate([self.graph.atom_group[new_atoms], groups])
        dlt = np.concatenate([self.graph.atom_size[new_atoms], grown]).astype(np.int64)
        return grp, dlt, new_atoms, groups, amounts

    def _source_delta(self, block: int, core: int):
        """Exact (fan-in, synapse memory bits) the block adds to the core, and the merge to commit."""
        rows = self._incoming
        span = slice(rows.indptr[block], rows.indptr[block + 1])
        src, cnt = rows.indices[span].astype(np.int64), rows.data[span].astype(np.int64)
        have, counts = self._sources[core], self._counts[core]
        at = np.searchsorted(have, src)
        present = at < len(have)
        present[present] = have[at[present]] == src[present]
        old = np.zeros(len(src), dtype=np.int64)
        old[present] = counts[at[present]]
        bits = int(np.sum(self.cost.bits(old + cnt) - self.cost.bits(old)))
        return int(np.count_nonzero(~present)), bits, (src, cnt, at, present)

    def _merge(self, core: int, merge) -> None:
        src, cnt, at, present = merge
        counts = self._counts[core].copy()
        counts[at[present]] += cnt[present]
        new = ~present
        self._sources[core] = np.insert(self._sources[core], at[new], src[new])
        self._counts[core] = np.insert(counts, at[new], cnt[new])

    def message_increase(self, block: int, core: int) -> float:
        """Messages per step added by putting ``block`` on ``core`` (rate weighted, multicast).

        New (source neuron, core) pairs from sources elsewhere (inputs always
        cross), plus the block's own neurons sending to other cores that already
        hold their targets.
        """
        g_ = self.graph
        grp, dlt, *_ = self._delta(block, core)
        remote = np.ones(len(grp), dtype=bool)
        on_chip = grp < g_.block_count
        remote[on_chip] = self.core_of_block[grp[on_chip]] != core
        incoming = float(np.sum(dlt[remote] * g_.group_rate[grp[remote]]))
        here = self._sending.get(core)
        own = float(self.sends[block] - (here[block] if here is not None else 0))
        return incoming + own * g_.group_rate[block]

    def try_place(self, block: int, core: int, commit: bool = True) -> Overflow | None:
        """Place ``block`` on ``core`` if every core stays within its limits; else say what overflows."""
        caps, g_ = self.capacities, self.graph
        for r in ADDITIVE:
            if r in caps:
                load = self.additive[r][core] + g_.demand[r][block]
                if load > caps[r][core]:
                    return Overflow(r, core, int(load), int(caps[r][core]))
        profiles = self.profile_count[core]
        if self.profiles_on is not None:
            held = self._profiles_of
            keys = held.indices[held.indptr[block]:held.indptr[block + 1]]
            keys = keys[~self.profiles_on[keys, core]]
            profiles = self.profile_count[core] + keys.size
            if "neuron_profiles" in caps and profiles > caps["neuron_profiles"][core]:
                return Overflow("neuron_profiles", core, int(profiles),
                                int(caps["neuron_profiles"][core]))
        new_sources, added_bits, merge = self._source_delta(block, core)
        fan_in = self.fan_in[core] + new_sources
        if "fan_in_axons" in caps and fan_in > caps["fan_in_axons"][core]:
            return Overflow("fan_in_axons", core, fan_in, int(caps["fan_in_axons"][core]))
        bits = int(self.memory[core]) + added_bits
        if "synapse_memory_bits" in caps and bits > caps["synapse_memory_bits"][core]:
            return Overflow("synapse_memory_bits", core, bits, int(caps["synapse_memory_bits"][core]))
        grp, dlt, new_atoms, groups, amounts = self._delta(block, core)
        # Fan-out: each group's (neuron, core) pairs, charged to the core the group sits on;
        # only the groups this placement touches (its sources and itself) change.
        touched, where = np.unique(np.append(grp, block), return_inverse=True)
        sends = self.sends[touched].copy()
        np.add.at(sends, where[:-1], dlt)
        core_of = np.where(touched < g_.block_count, self.core_of_block[np.minimum(touched, g_.block_count - 1)], -1)
        before = np.where(core_of >= 0, np.maximum(self.sends[touched], self.reserved[touched]), 0)
        core_of[touched == block] = core
        after = np.where(core_of >= 0, np.maximum(sends, self.reserved[touched]), 0)
        fan_out = self.fan_out.copy()
        placed = core_of >= 0
        np.add.at(fan_out, core_of[placed], (after - before)[placed])
        if "fan_out_axons" in caps:
            hit = np.unique(np.append(core_of[placed], core))
            over = hit[fan_out[hit] > caps["fan_out_axons"][hit]]
            if len(over):
                c = int(core) if core in over else int(over[0])
                return Overflow("fan_out_axons", c, int(fan_out[c]), int(caps["fan_out_axons"][c]))
        if commit:
            for r in ADDITIVE:
                self.additive[r][core] += g_.demand[r][block]
            if self.profiles_on is not None:
                self.profiles_on[keys, core] = True
                self.profile_count[core] = profiles
            self._writable(self._present, core, self._atoms, bool)[new_atoms] = True
            self._writable(self._fed, core, self._groups, np.int64)[groups] += amounts
            np.add.at(self._writable(self._sending, core, self._groups, np.int64), grp, dlt)
            self.sends[touched] = sends
            self.fan_in[core] = fan_in
            self.memory[core] = bits
            self._merge(core, merge)
            self.fan_out = fan_out
            self.core_of_block[block] = core
        return None


RETRIES = 8


def _fill_with_retries(place_all, graph: BlockGraph, capacities: dict[str, np.ndarray],
                       cost: SynapseListCost, optimistic: bool) -> tuple[np.ndarray, Overflow | None]:
    """Run a greedy fill; when an early core ends over its fan-out, reserve more and start again.

    Fan-out reservations are estimates: if a core overflows, every population on
    it reserves half as much again, which leaves fewer of its neurons per core.
    """
    loads = CoreLoads(graph, capacities, cost, reserve=True, optimistic=optimistic)
    population = np.array([b.population for b in graph.blocks])
    for _ in range(RETRIES):
        problem = place_all(loads)
        if problem is None or problem.resource != "fan_out_axons":
            return loads.core_of_block, problem
        crowded = np.unique(population[loads.core_of_block == problem.core])
        reserved = loads.reserved.copy()
        blocks = np.flatnonzero(np.isin(population, crowded))
        reserved[blocks] = np.maximum(reserved[blocks], loads.sends[blocks]) * 3 // 2
        loads = CoreLoads(graph, capacities, cost, reserve=True)
        loads.reserved = reserved
    return loads.core_of_block, problem


def sequential_fill(graph: BlockGraph, capacities: dict[str, np.ndarray], cost: SynapseListCost,
                    order: np.ndarray | None = None, optimistic: bool = False, window: int = 1
                    ) -> tuple[np.ndarray, Overflow | None]:
    """Blocks in network order (or ``order``), each on the current core or else the next.

    In network order this is the naive baseline. ``window`` > 1: a block first
    tries the ``window - 1`` cores before the current one (oldest first), so a
    core left with room by a block too large for it is topped up by later,
    smaller blocks of the same stretch of ``order``. Returns the block->core
    array (-1 for blocks not placed) and, on failure, the overflow that stopped it.
    """
    order = np.arange(graph.block_count) if order is None else order

    def place_all(loads: CoreLoads) -> Overflow | None:
        core = 0
        for block in order:
            if window > 1 and core > 0 and any(
                    loads.try_place(block, earlier) is None
                    for earlier in range(max(0, core - window + 1), core)):
                continue
            problem = loads.try_place(block, core)
            while problem is not None:
                if core + 1 >= loads.cores:
                    return problem
                core += 1
                problem = loads.try_place(block, core)
                if problem is not None and problem.core == core and problem.resource != "fan_out_axons":
                    return problem          # does not fit an empty core
        return None

    return _fill_with_retries(place_all, graph, capacities, cost, optimistic)


def affinity_fill(graph: BlockGraph, capacities: dict[str, np.ndarray], cost: SynapseListCost,
                  order: np.ndarray | None = None, optimistic: bool = False
                  ) -> tuple[np.ndarray, Overflow | None]:
    """Blocks in network order (or ``order``), each on the open core where it adds the fewest messages.

    A new core is opened only when no open core can take the block. A candidate
    starting point for CP-SAT.
    """
    order = np.arange(graph.block_count) if order is None else order

    def place_all(loads: CoreLoads) -> Overflow | None:
        opened = 0
        for block in order:
            scored = sorted((loads.message_increase(block, c), c) for c in range(opened))
            if any(loads.try_place(block, core) is None for _, core in scored):
                continue
            if opened >= loads.cores:
                return Overflow("neurons", opened, 0, 0) if not scored else \
                    loads.try_place(block, scored[0][1], commit=False)
            problem = loads.try_place(block, opened)
            opened += 1
            if problem is not None:
                return problem
        return None

    return _fill_with_retries(place_all, graph, capacities, cost, optimistic)


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
    for r, load in (("synapse_memory_bits", loads.memory), ("fan_in_axons", loads.fan_in),
                    ("fan_out_axons", loads.fan_out), ("neuron_profiles", loads.profile_count)):
        if r in capacities:
            over = np.flatnonzero(load > capacities[r])
            if len(over):
                c = int(over[0])
                return Overflow(r, c, int(load[c]), int(capacities[r][c]))
    return None
