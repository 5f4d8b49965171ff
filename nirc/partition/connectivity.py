"""The hardware network flattened into one neuron index space, as the partitioner sees it.

All populations are numbered 0..N-1 in the network's order (each population a
contiguous range, its neurons in flat C-order); network inputs 0..M-1 likewise.
Synapse counts between neurons are two sparse matrices: ``from_neurons``
(N x N, target x source) and ``from_inputs`` (N x M). A count above 1 means
several tables connect the same pair (e.g. two delays), which costs memory but
still one axon.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from nirc.errors import TargetError
from nirc.hwnet import HardwareNetwork

# Spike rates per step: one number per population/input, or one per neuron.
Rates = Mapping[str, "float | np.ndarray"]


@dataclass(frozen=True, eq=False)
class Connectivity:
    population_names: tuple[str, ...]
    population_offsets: np.ndarray     # (P+1,) start of each population in the neuron index space
    input_names: tuple[str, ...]
    input_offsets: np.ndarray          # (I+1,)
    from_neurons: sp.csr_array         # (N, N) synapse counts, target x source
    from_inputs: sp.csr_array          # (N, M)
    neuron_rates: np.ndarray           # (N,) expected spikes per step of each neuron
    input_rates: np.ndarray            # (M,)
    provenance: Mapping[str, tuple[str, ...]]
    shapes: Mapping[str, tuple[int, ...]]
    # (N,) network-wide id of each neuron's profile (one per distinct set of profile values);
    # a population without profiles (hwnet.Population.profile) counts as one.
    profile_of_neuron: np.ndarray | None = None

    @property
    def neuron_count(self) -> int:
        return int(self.population_offsets[-1])

    @property
    def input_count(self) -> int:
        return int(self.input_offsets[-1])

    @cached_property
    def population_index(self) -> dict[str, int]:
        """Position of each population in ``population_names`` (a tuple's index() is linear:
        called per block, it made placing a 10^5-node chain quadratic)."""
        return {name: i for i, name in enumerate(self.population_names)}

    def population_range(self, name: str) -> tuple[int, int]:
        i = self.population_index[name]
        return int(self.population_offsets[i]), int(self.population_offsets[i + 1])

    def population_of_neuron(self) -> np.ndarray:
        sizes = np.diff(self.population_offsets)
        return np.repeat(np.arange(len(sizes)), sizes)

    @classmethod
    def from_hwnet(cls, net: HardwareNetwork, rates: Rates | None = None) -> "Connectivity":
        pops = tuple(net.populations)
        ins = tuple(net.inputs)
        pop_off = np.concatenate([[0], np.cumsum([net.populations[p].size for p in pops])]).astype(np.int64)
        in_off = np.concatenate([[0], np.cumsum([net.inputs[i].size for i in ins])]).astype(np.int64)
        n, m = int(pop_off[-1]), int(in_off[-1])
        pop_index = {p: k for k, p in enumerate(pops)}
        in_index = {p: k for k, p in enumerate(ins)}
        parts: dict[bool, list[tuple[np.ndarray, np.ndarray]]] = {True: [], False: []}
        for table in net.tables:
            if table.target not in pop_index:
                raise TargetError(f"table {table.source}->{table.target} targets no population")
            weights = table.weights
            if not (sp.issparse(weights) and weights.format == "csr"):
                weights = sp.csr_array(weights)
            # (row, column) of every stored non-zero, read from the CSR arrays (a weight
            # quantized to 0 is no synapse): a copy and a COO per table cost 0.1 ms each.
            stored = np.asarray(weights.data) != 0
            row = np.repeat(np.arange(weights.shape[0], dtype=np.int64), np.diff(weights.indptr))
            rows = row[stored] + pop_off[pop_index[table.target]]
            col = np.asarray(weights.indices, dtype=np.int64)[stored]
            if table.source in pop_index:
                cols = col + pop_off[pop_index[table.source]]
                parts[True].append((rows, cols))
            elif table.source in in_index:
                cols = col + in_off[in_index[table.source]]
                parts[False].append((rows, cols))
            else:
                raise TargetError(f"table {table.source}->{table.target} comes from an unknown source")

        def counts(pairs, n_cols):
            if not pairs:
                return sp.csr_array((n, n_cols), dtype=np.int64)
            rows = np.concatenate([r for r, _ in pairs])
            cols = np.concatenate([c for _, c in pairs])
            mat = sp.coo_array((np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(n, n_cols))
            return mat.tocsr()  # duplicates summed

        return cls(
            population_names=pops, population_offsets=pop_off,
            input_names=ins, input_offsets=in_off,
            from_neurons=counts(parts[True], n), from_inputs=counts(parts[False], m),
            neuron_rates=_rate_vector(rates, pops, pop_off),
            input_rates=_rate_vector(rates, ins, in_off),
            provenance={p: net.populations[p].provenance for p in pops},
            shapes={p: tuple(net.populations[p].shape) for p in pops},
            profile_of_neuron=_profile_ids(net, pops),
        )


def _rate_vector(rates: Rates | None, names, offsets) -> np.ndarray:
    out = np.ones(int(offsets[-1]), dtype=np.float64)
    if not rates:
        return out
    for k, name in enumerate(names):
        if name not in rates:
            continue
        value = np.asarray(rates[name], dtype=np.float64).reshape(-1)
        size = int(offsets[k + 1] - offsets[k])
        if value.size not in (1, size):
            raise TargetError(f"rates for {name!r}: expected 1 or {size} values, got {value.size}")
        if np.any(value < 0) or not np.all(np.isfinite(value)):
            raise TargetError(f"rates for {name!r}: must be finite and >= 0")
        out[offsets[k]:offsets[k + 1]] = value
    return out


def _profile_ids(net: HardwareNetwork, pops: tuple[str, ...]) -> np.ndarray:
    """Per neuron, a network-wide id of its profile: one id per distinct set of profile values
    (a core's profile table is shared by all its neurons, so layers with equal du, dv, vth...
    share an entry); a population without profiles (hwnet.Population.profile) has its own id."""
    ids: list[np.ndarray] = []
    by_value: dict[tuple, int] = {}
    for p in pops:
        pop = net.populations[p]
        if pop.profile is None or not pop.profiles:
            ids.append(np.full(pop.size, len(by_value), np.int64))
            by_value[("population", p)] = len(by_value)
            continue
        local = np.array([by_value.setdefault(tuple(sorted(v.items())), len(by_value))
                          for v in pop.profiles], np.int64)
        ids.append(local[np.asarray(pop.profile, np.int64).reshape(-1)])
    return np.concatenate(ids) if ids else np.zeros(0, np.int64)
