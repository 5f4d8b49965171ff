"""What a group of neurons (a block, or everything on one core) demands of a core.

The counting model, shared by the lower bound, the CP-SAT model, the baseline
and the utilisation report:

- neurons: neurons in the group.
- synapses: non-zero weights into the group's neurons.
- synapse_memory_bits: for every source neuron (axon) feeding the core, its
  synapses into the core form one list stored as groups of at most
  ``synapses_per_group`` entries; a group of n entries costs
  n * (weight_bits + delay_bits + index_bits) + group_header_bits bits, rounded
  up to ``word_bits`` (nengo-loihi's SynapseConfig.bits_per_axon, with one
  synapse format per list). Placement reports this exact count; the packers
  enforce a linear upper bound on it (SynapseListCost.bound_bits) because the
  rounding is not linear in the assignment.
- fan_in_axons: distinct source neurons (including network inputs) with at
  least one synapse into the core.
- fan_out_axons: distinct (source neuron on the core, destination core) pairs,
  the core itself included (a spike to a neighbour on the same core still
  leaves through an output axon, as on Loihi).
- messages: one per spike per (source neuron, destination core other than its
  own) — multicast: a spike reaching many neurons on one core is one message.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from weakref import WeakKeyDictionary

import numpy as np
import scipy.sparse as sp

from nirc.partition.connectivity import Connectivity
from nirc.target import Target


@dataclass(frozen=True)
class SynapseListCost:
    """Bits of one synapse list, from the target's formats and synapse_memory section."""

    entry_bits: int
    header_bits: int
    per_group: int
    word_bits: int

    @classmethod
    def of(cls, target: Target) -> "SynapseListCost":
        sm = target.cores.synapse_memory
        return cls(entry_bits=target.formats.weight_bits + target.formats.delay_bits + sm.index_bits,
                   header_bits=sm.group_header_bits, per_group=sm.synapses_per_group,
                   word_bits=sm.word_bits)

    def bits(self, counts: np.ndarray) -> np.ndarray:
        """Bits of lists holding ``counts`` synapses each (0 synapses: no list, 0 bits)."""
        counts = np.asarray(counts, dtype=np.int64)
        # The packers ask this for a few counts at a time, hundreds of thousands of times:
        # a table of the first counts answers those without the arithmetic's overhead.
        table = _bits_table(self)
        if counts.size and counts.size < 4096 and int(counts.max()) < len(table) \
                and int(counts.min()) >= 0:
            return table[counts]
        return self._bits(counts)

    def _bits(self, counts: np.ndarray) -> np.ndarray:
        full, rest = np.divmod(counts, self.per_group)
        full_group = self._rounded(self.per_group * self.entry_bits + self.header_bits)
        partial = np.where(rest > 0, self._rounded(rest * self.entry_bits + self.header_bits), 0)
        return full * full_group + partial

    def floor_bits(self, counts: np.ndarray, lists: np.ndarray | int = 1) -> np.ndarray:
        """The least any split of ``counts`` synapses into at least ``lists`` lists can cost.

        Splitting can be cheaper than one list (rounding is not subadditive), but
        every split has at least max(ceil(n / per_group), lists) groups (a list
        holds at least one group), each costing its entries plus a header, and
        the total is a whole number of words. 0 synapses cost nothing.
        """
        counts = np.asarray(counts, dtype=np.int64)
        groups = np.maximum(-(-counts // self.per_group), np.where(counts > 0, lists, 0))
        return self._rounded(counts * self.entry_bits + groups * self.header_bits)

    def bound_bits(self, synapses, lists):
        """An upper bound on the bits of ``lists`` lists holding ``synapses`` synapses in all.

        A list of n synapses has ceil(n/G) <= (n + G - 1)/G groups, each at most
        its entries + header + (word - 1) rounding bits. Linear in both
        arguments, so CP-SAT and the sequential fill can enforce it per core;
        :meth:`bound_terms` gives the integer coefficients (scaled by G).
        """
        per_synapse, per_list, scale = self.bound_terms()
        return -(-(np.asarray(synapses) * per_synapse + np.asarray(lists) * per_list) // scale)

    def bound_terms(self) -> tuple[int, int, int]:
        """(bits per synapse, bits per list, divisor) of :meth:`bound_bits`, all integers."""
        slack = self.header_bits + self.word_bits - 1
        g = self.per_group
        return g * self.entry_bits + slack, (g - 1) * slack, g

    def _rounded(self, bits):
        return -(-np.asarray(bits, dtype=np.int64) // self.word_bits) * self.word_bits


BITS_TABLE_SIZE = 1 << 14


@lru_cache(maxsize=16)
def _bits_table(cost: SynapseListCost) -> np.ndarray:
    """SynapseListCost.bits of 0, 1, ..., BITS_TABLE_SIZE - 1 synapses."""
    table = cost._bits(np.arange(BITS_TABLE_SIZE, dtype=np.int64))
    table.flags.writeable = False
    return table


def one_hot(group_of: np.ndarray, groups: int) -> sp.csr_array:
    """(groups x len(group_of)) indicator matrix of a grouping of neurons."""
    n = len(group_of)
    return sp.csr_array((np.ones(n, dtype=np.int64), (group_of, np.arange(n))), shape=(groups, n))


@dataclass(frozen=True, eq=False)
class GroupDemand:
    """Per-group demands of a grouping of the network's neurons (blocks or cores)."""

    counts_from_neurons: sp.csr_array   # (G, N) synapses from each source neuron into each group
    counts_from_inputs: sp.csr_array    # (G, M)
    neurons: np.ndarray
    synapses: np.ndarray
    synapse_memory_bits: np.ndarray
    fan_in_axons: np.ndarray


def group_demand(conn: Connectivity, group_of: np.ndarray, groups: int,
                 cost: SynapseListCost) -> GroupDemand:
    if groups == conn.neuron_count and np.array_equal(group_of, np.arange(groups)):
        # Every neuron its own group: the connectivity itself (no product with an identity).
        from_neurons, from_inputs = conn.from_neurons, conn.from_inputs
    else:
        member = one_hot(group_of, groups)
        from_neurons = sp.csr_array(member @ conn.from_neurons)
        from_inputs = sp.csr_array(member @ conn.from_inputs)

    def row_sum(mat, values):
        # Exact integer sums of each row's entries, by differences of a running total.
        total = np.concatenate([[0], np.cumsum(np.asarray(values, dtype=np.int64))])
        return (total[mat.indptr[1:]] - total[mat.indptr[:-1]]).astype(np.int64)

    memory = row_sum(from_neurons, cost.bits(from_neurons.data)) + row_sum(from_inputs, cost.bits(from_inputs.data))
    return GroupDemand(
        counts_from_neurons=from_neurons,
        counts_from_inputs=from_inputs,
        neurons=np.bincount(group_of, minlength=groups).astype(np.int64),
        synapses=row_sum(from_neurons, from_neurons.data) + row_sum(from_inputs, from_inputs.data),
        synapse_memory_bits=memory,
        fan_in_axons=(np.diff(from_neurons.indptr) + np.diff(from_inputs.indptr)).astype(np.int64),
    )


@dataclass(frozen=True, eq=False)
class CoreTraffic:
    fan_out_axons: np.ndarray          # (K,)
    messages_by_pair: np.ndarray       # (K, K) [source core, destination core], diagonal zero
    input_messages: float


def core_traffic(conn: Connectivity, core_of: np.ndarray, cores: int,
                 demand: GroupDemand) -> CoreTraffic:
    """Fan-out axons and messages of a placement, from the per-core demand."""
    feeds = demand.counts_from_neurons.copy()
    feeds.data = np.ones_like(feeds.data)            # (K, N): core k receives from neuron n
    dest_cores = np.bincount(feeds.indices, minlength=conn.neuron_count)   # per source neuron
    fan_out = np.bincount(core_of, weights=dest_cores, minlength=cores).astype(np.int64)
    weighted = sp.csr_array(feeds.multiply(conn.neuron_rates[None, :]))
    by_dest_src = (weighted @ one_hot(core_of, cores).T).toarray()        # (K dest, K src)
    pairs = by_dest_src.T.copy()
    np.fill_diagonal(pairs, 0.0)
    inputs = demand.counts_from_inputs.copy()
    input_messages = float(np.sum(conn.input_rates[inputs.indices])) if inputs.nnz else 0.0
    return CoreTraffic(fan_out_axons=fan_out, messages_by_pair=pairs, input_messages=input_messages)
