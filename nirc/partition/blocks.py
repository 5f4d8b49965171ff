"""Coarsening: populations cut into blocks small enough to pack, few enough to solve.

A block is a contiguous slice of one population (flat C-order) or, for a
(C, H, W) layer with ``tiled=True`` (the default placement), a spatial tile:
the same rows or row segment of every channel. Its neurons share their inputs
to the extent the network has locality (all of them for a dense layer,
neighbouring receptive fields for an unrolled convolution): a tile's fan-in is
one receptive field for all its channels, and each source's synapses into it
form one long list, where a band of one channel would repeat the fan-in per
channel and split every list into short ones (headers and word rounding).
Blocks are the units the packers assign to cores, and also the *source
groups* whose spikes the model counts: the population's block j is source
group j.

Block size: each population is cut into pieces holding about 1/m of what one
core can take of that population (limited by whichever additive resource runs
out first), with the largest m in {16, 12, 8, 6, 4, 3, 2, 1} that keeps the
total at most ``max_blocks``; untiled pieces are cut at whole rows of a
(C, H, W) layer where they can be. A piece that alone exceeds a core's limits is halved
until it fits; for fan-out that means its sending neurons times the cores its
targets will likely span (likely_cores) must fit one core.
``partitioner.block_size`` overrides m with a fixed neuron count.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from weakref import WeakKeyDictionary

import numpy as np
import scipy.sparse as sp

from nirc.partition import explain
from nirc.partition.connectivity import Connectivity
from nirc.partition.demand import GroupDemand, SynapseListCost, group_demand, one_hot

# Resources whose demand on a core is the sum of its blocks' demands. Synapse memory
# is bounded from the core's synapses and fan-in instead (SynapseListCost.bound_bits).
ADDITIVE = ("neurons", "synapses")
SPLITS = (16, 12, 8, 6, 4, 3, 2, 1)
MAX_ATOMS = 16


@dataclass(frozen=True)
class BlockSlice:
    """Neurons start:stop of a population, or (a tile) the union of ``runs``.

    A tile of a (C, H, W) layer holds the same rows (or row segment) of every
    channel: C or more contiguous runs, with start:stop the first run.
    """

    population: str
    start: int     # within the population
    stop: int
    runs: tuple[tuple[int, int], ...] | None = None

    def ranges(self) -> tuple[tuple[int, int], ...]:
        return self.runs if self.runs is not None else ((self.start, self.stop),)


@dataclass(frozen=True, eq=False)
class BlockGraph:
    """Blocks with their demands and who feeds whom, at block granularity.

    Source groups 0..B-1 are the blocks themselves; groups B.. are slices of the
    network inputs (not placed: their spikes enter from outside). An *atom* is
    the set of a group's neurons that feed exactly the same blocks: with atoms,
    the neurons of g sending to core c are exactly the atoms with a block on c.
    """

    blocks: tuple[BlockSlice, ...]
    block_of_neuron: np.ndarray        # (N,)
    demand: dict[str, np.ndarray]      # additive resources, (B,) each
    fan_in_alone: np.ndarray           # (B,) distinct sources of each block
    feeders: sp.csr_array              # (G, B): distinct neurons of group g feeding block b
    group_senders: np.ndarray          # (G,) neurons of group g that feed any block
    group_rate: np.ndarray             # (G,) mean spike rate of the group's sending neurons
    group_is_input: np.ndarray         # (G,) bool
    group_exact: np.ndarray            # (G,) bool: fan-in counted exactly through atoms
    atom_blocks: sp.csr_array          # (A, B): blocks fed by each atom's neurons
    atom_group: np.ndarray             # (A,) group of each atom
    atom_size: np.ndarray              # (A,) neurons in each atom
    likely_cores: np.ndarray | None = None   # (G,) cores a group's targets will likely span
    incoming: sp.csr_array | None = None     # (B, N+M) synapses into each block from each source
    profiles_of_block: sp.csr_array | None = None   # (B, K) 1 where block b holds profile k

    @property
    def block_count(self) -> int:
        return len(self.blocks)


def _slices(size: int, piece: int, shape: tuple[int, ...] = ()) -> list[tuple[int, int]]:
    """Balanced pieces of at most ``piece`` neurons, cut at whole rows (planes...) where possible.

    For a (C, H, W) population a piece of at least W neurons is a band of whole
    rows of one channel: neurons of a band share receptive fields, so blocks of
    the next layer are fed by few distinct sets of them (few atoms).
    """
    unit = 1
    for k in range(len(shape) - 1, 0, -1):       # largest trailing-axes product that fits a piece
        trailing = int(np.prod(shape[k:]))
        if trailing <= piece and size % trailing == 0:
            unit = trailing
    units = size // unit
    n = max(1, -(-units // max(1, piece // unit)))
    edges = np.linspace(0, units, n + 1).round().astype(int) * unit
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _tiles(shape: tuple[int, ...], piece: int, split_positions: bool = False
           ) -> list[tuple[tuple[int, int], ...]] | None:
    """Spatial tiles of a (C, H, W) layer, all C channels each, of at most ``piece`` neurons.

    A tile is whole rows when C * W fits a piece, else a segment of one row. When
    one position of all channels does not fit a piece: with ``split_positions``,
    each position's channels cut into equal parts (_position_parts); else None
    (channel bands are cut as before). None too when the layer is not (C, H, W)
    with C > 1.
    """
    if len(shape) != 3 or shape[0] < 2 or shape[0] * shape[1] * shape[2] <= piece:
        return None
    c, h, w = (int(v) for v in shape)
    if c > piece:
        return _position_parts(c, h, w, piece) if split_positions else None
    if c * w <= piece:
        rows, cols = piece // (c * w), w
    else:
        rows, cols = 1, piece // c
    row_edges = np.linspace(0, h, -(-h // rows) + 1).round().astype(int)
    col_edges = np.linspace(0, w, -(-w // cols) + 1).round().astype(int)
    tiles = []
    for r0, r1 in zip(row_edges[:-1], row_edges[1:]):
        for c0, c1 in zip(col_edges[:-1], col_edges[1:]):
            if c1 - c0 == w:         # whole rows: one run per channel
                runs = [(k * h * w + r0 * w, k * h * w + r1 * w) for k in range(c)]
            else:
                runs = [(k * h * w + r * w + c0, k * h * w + r * w + c1)
                        for k in range(c) for r in range(r0, r1)]
            tiles.append(tuple((int(a), int(b)) for a, b in runs))
    return tiles


def _position_parts(c: int, h: int, w: int, piece: int) -> list[tuple[tuple[int, int], ...]]:
    """Each position of a (C, H, W) layer, in row-major order, its C channels cut into
    ceil(C / piece) parts of consecutive channels (one run per neuron).

    A deep layer whose one position outweighs a block (a wide fan-in: a
    SpiNNaker PE holds 40 of the 60 channels of a 750-input convolution) is
    then cut across its channels, never across its positions: a block's
    neurons share one receptive field, and a core filled with consecutive
    blocks holds a position or two of all channels, whose synapse rows are
    long, where channel bands would give it a strip of one channel with a row
    per source and channel.
    """
    plane = h * w
    parts = -(-c // piece)
    edges = np.linspace(0, c, parts + 1).round().astype(int)
    return [tuple((k * plane + at, k * plane + at + 1) for k in range(c0, c1))
            for at in range(plane) for c0, c1 in zip(edges[:-1], edges[1:]) if c1 > c0]


def _population_blocks(name: str, size: int, piece: int, shape: tuple[int, ...],
                       tiled: bool, split_positions: bool = False) -> list[BlockSlice]:
    tiles = _tiles(shape, piece, split_positions) if tiled else None
    if tiles is None:
        return [BlockSlice(name, a, b) for a, b in _slices(size, piece, shape)]
    return [BlockSlice(name, t[0][0], t[0][1], t) for t in tiles]


_ALONE: WeakKeyDictionary = WeakKeyDictionary()


def per_neuron_demand(conn: Connectivity, cost: SynapseListCost) -> GroupDemand:
    """Demands of every neuron alone (each neuron its own group); computed once per
    connectivity and cost (coarsen, the chip bound and the baseline all ask)."""
    known = _ALONE.setdefault(conn, {})
    if cost not in known:
        n = conn.neuron_count
        known[cost] = group_demand(conn, np.arange(n), n, cost)
    return known[cost]


def _neurons_per_core(conn: Connectivity, alone: GroupDemand, limits: dict[str, int],
                      cost: SynapseListCost) -> np.ndarray:
    """Per population: about how many of its neurons fit one core (>= 1)."""
    pop = conn.population_of_neuron()
    fits = np.full(len(conn.population_names), float("inf"))
    per_synapse, _, scale = cost.bound_terms()
    for resource in ADDITIVE + ("synapse_memory_bits",):
        if resource not in limits:
            continue
        if resource == "synapse_memory_bits":     # list overheads are shared on a core: ignored
            per_neuron = alone.synapses * (per_synapse / scale)
        else:
            per_neuron = getattr(alone, resource).astype(float)
        mean = np.bincount(pop, weights=per_neuron, minlength=len(fits)) / np.maximum(
            np.diff(conn.population_offsets), 1)
        with np.errstate(divide="ignore"):
            fits = np.minimum(fits, np.where(mean > 0, limits[resource] / mean, float("inf")))
    return np.maximum(1, np.floor(np.where(np.isfinite(fits), fits, 2**31))).astype(np.int64)


def check_neurons_fit(conn: Connectivity, alone: GroupDemand, limits: dict[str, int],
                      cost: SynapseListCost, target_name: str) -> None:
    """FitError if a single neuron exceeds a core's limit (no split can help)."""
    pop = conn.population_of_neuron()
    for resource in ("synapses", "synapse_memory_bits", "fan_in_axons"):
        if resource not in limits:
            continue
        if resource == "synapse_memory_bits":
            per_neuron = cost.bound_bits(alone.synapses, alone.fan_in_axons)
        else:
            per_neuron = getattr(alone, resource)
        worst = int(np.argmax(per_neuron)) if len(per_neuron) else 0
        if len(per_neuron) and per_neuron[worst] > limits[resource]:
            name = conn.population_names[pop[worst]]
            raise explain.neuron_too_big(resource, name, conn.provenance.get(name, ()),
                                         int(per_neuron[worst]), limits[resource], target_name)


def coarsen(conn: Connectivity, cost: SynapseListCost, limits: dict[str, int], *,
            max_blocks: int, block_size: int | None, target_name: str,
            tiled: bool = False, split_positions: bool = False) -> BlockGraph:
    """Cut every population into blocks that fit a core alone (see module docstring;
    ``split_positions``: see _tiles)."""
    alone = per_neuron_demand(conn, cost)
    check_neurons_fit(conn, alone, limits, cost, target_name)
    sizes = np.diff(conn.population_offsets)
    per_core = _neurons_per_core(conn, alone, limits, cost)
    if "neurons" in limits:
        per_core = np.minimum(per_core, limits["neurons"])
    if block_size is not None:
        pieces = np.full(len(sizes), block_size)
    else:
        for m in SPLITS:
            pieces = np.maximum(1, -(-per_core // m))
            if int(np.sum(-(-sizes // pieces))) <= max_blocks:
                break
    pieces = np.minimum(pieces, limits.get("neurons", np.iinfo(np.int64).max))

    # Halve the pieces of any population whose blocks do not fit a core alone.
    while True:
        slices = [s for p, size, piece in zip(conn.population_names, sizes, pieces)
                  for s in _population_blocks(p, int(size), int(piece), conn.shapes[p], tiled,
                                                split_positions)]
        graph = _block_graph(conn, slices, cost)
        graph = replace(graph, likely_cores=_likely_destination_cores(conn, graph, per_core))
        too_big = _oversized_populations(conn, graph, limits, cost)
        if not too_big:
            return graph
        for k in too_big:
            if pieces[k] <= 1:   # unreachable after check_neurons_fit, kept as a guard
                name = conn.population_names[k]
                raise explain.neuron_too_big("fan_out_axons", name, conn.provenance.get(name, ()),
                                             int(graph.group_senders.max()), limits["fan_out_axons"],
                                             target_name)
            pieces[k] = max(1, pieces[k] // 2)


def _oversized_populations(conn: Connectivity, graph: BlockGraph, limits: dict[str, int],
                           cost: SynapseListCost) -> list[int]:
    bad = np.zeros(graph.block_count, dtype=bool)
    for resource in ADDITIVE:
        if resource in limits:
            bad |= graph.demand[resource] > limits[resource]
    if "synapse_memory_bits" in limits:
        bad |= cost.bound_bits(graph.demand["synapses"], graph.fan_in_alone) > limits["synapse_memory_bits"]
    if "fan_in_axons" in limits:
        bad |= graph.fan_in_alone > limits["fan_in_axons"]
    if "fan_out_axons" in limits:
        senders = graph.group_senders[:graph.block_count]
        # A block must leave room on its core for what its targets will likely need.
        bad |= (senders * np.maximum(graph.likely_cores[:graph.block_count], 1) > limits["fan_out_axons"]) \
            & (senders > 1)
    names = sorted({graph.blocks[b].population for b in np.flatnonzero(bad)})
    return [conn.population_index[n] for n in names]


def _likely_destination_cores(conn: Connectivity, graph: BlockGraph, per_core: np.ndarray) -> np.ndarray:
    """Per source group: about how many cores its targets will occupy if placed in order.

    Per target population, the span of the blocks it feeds divided by how many of
    that population's neurons fit a core, plus one; never more than the blocks fed.
    """
    fits = dict(zip(conn.population_names, per_core.tolist()))
    stops = np.cumsum(graph.demand["neurons"])
    starts = stops - graph.demand["neurons"]
    population = np.array([b.population for b in graph.blocks])
    rows = graph.feeders.tocsr()
    likely = np.zeros(rows.shape[0], dtype=np.int64)
    for g in range(rows.shape[0]):
        fed = rows.indices[rows.indptr[g]:rows.indptr[g + 1]]
        for name in np.unique(population[fed]):
            mine = fed[population[fed] == name]
            span = int(stops[mine].max() - starts[mine].min())
            likely[g] += min(len(mine), -(-span // max(1, fits[name])) + 1)
    return likely


def _block_graph(conn: Connectivity, slices: list[BlockSlice], cost: SynapseListCost) -> BlockGraph:
    n, m, b_count = conn.neuron_count, conn.input_count, len(slices)
    block_of = np.empty(n, dtype=np.int64)
    for k, s in enumerate(slices):
        base = conn.population_range(s.population)[0]
        for a, b in s.ranges():
            block_of[base + a: base + b] = k
    demand = group_demand(conn, block_of, b_count, cost)

    # Inputs are cut into groups of about the mean block size (for the message model only).
    piece = max(1, n // max(1, b_count))
    input_group = np.empty(m, dtype=np.int64)
    groups = b_count
    for k in range(len(conn.input_names)):
        a, z = int(conn.input_offsets[k]), int(conn.input_offsets[k + 1])
        for lo, hi in _slices(z - a, piece):
            input_group[a + lo:a + hi] = groups
            groups += 1
    group_of_source = np.concatenate([block_of, input_group])

    # Distinct neurons of each source group feeding each block.
    incoming = sp.csr_array(sp.hstack([demand.counts_from_neurons, demand.counts_from_inputs]).tocsr())
    incoming.sort_indices()
    pattern = incoming.copy()
    pattern.data = np.ones_like(pattern.data)
    feeders = sp.csr_array(one_hot(group_of_source, groups) @ pattern.T)          # (G, B)
    sends = np.zeros(n + m, dtype=bool)
    sends[np.unique(pattern.indices)] = True
    atoms = _atoms(pattern, group_of_source, groups)
    senders = np.bincount(group_of_source, weights=sends, minlength=groups).astype(np.int64)
    rates = np.concatenate([conn.neuron_rates, conn.input_rates])
    rate_sum = np.bincount(group_of_source, weights=rates * sends, minlength=groups)
    group_rate = np.where(senders > 0, rate_sum / np.maximum(senders, 1), 0.0)
    return BlockGraph(
        blocks=tuple(slices),
        block_of_neuron=block_of,
        demand={"neurons": demand.neurons, "synapses": demand.synapses},
        fan_in_alone=demand.fan_in_axons,
        feeders=feeders,
        group_senders=senders,
        group_rate=group_rate,
        group_is_input=np.arange(groups) >= b_count,
        group_exact=atoms[0],
        atom_blocks=atoms[1],
        atom_group=atoms[2],
        atom_size=atoms[3],
        incoming=incoming,
        profiles_of_block=_profiles_of_blocks(conn, block_of, b_count),
    )


def _profiles_of_blocks(conn: Connectivity, block_of: np.ndarray, blocks: int) -> sp.csr_array | None:
    """(B, K) indicator of the neuron profiles each block holds (None without profile ids)."""
    ids = conn.profile_of_neuron
    if ids is None or ids.size == 0:
        return None
    held = sp.csr_array(one_hot(block_of, blocks) @ one_hot(ids, int(ids.max()) + 1).T)
    held.data = np.ones_like(held.data)
    held.sort_indices()
    return held


def _atoms(pattern: sp.csr_array, group_of_source: np.ndarray, groups: int):
    """Per source group, its neurons bundled by the exact set of blocks they feed.

    Returns (group_exact (G,) bool, atom_blocks (A x B) 0/1 csr, atom_group (A,),
    atom_size (A,)). Groups with more than MAX_ATOMS distinct sets are not
    bundled (group_exact False): the model then bounds their fan-in by
    min(senders, sum of feeders).
    """
    by_source = sp.csr_array(pattern.T)                              # (sources, B)
    by_source.sum_duplicates()
    rng = np.random.default_rng(12345)
    # Two random integer hashes of each source's block set; sums stay exact in float64.
    keys = by_source @ rng.integers(1, 2**20, size=(by_source.shape[1], 2)).astype(np.float64)
    senders = np.flatnonzero(np.diff(by_source.indptr) > 0)
    table = np.column_stack([group_of_source[senders], keys[senders]])
    unique, first, inverse, counts = np.unique(table, axis=0, return_index=True, return_inverse=True,
                                               return_counts=True)
    atom_group = unique[:, 0].astype(np.int64)
    per_group = np.bincount(atom_group, minlength=groups)
    exact = (per_group > 0) & (per_group <= MAX_ATOMS)
    keep = exact[atom_group]
    representative = senders[first[keep]]
    atom_blocks = sp.csr_array(by_source[representative])
    atom_blocks.data = np.ones_like(atom_blocks.data)
    return exact, atom_blocks, atom_group[keep], counts[keep].astype(np.int64)


def spatial_order(conn: Connectivity, graph: BlockGraph) -> np.ndarray:
    """Blocks sorted by where they sit in their layer's feature map, then by layer.

    A block's position is the middle of its slice within one channel plane (the
    last two axes of a (C, H, W) population; the whole range of a flat one), as a
    fraction. Filling cores in this order stacks the same region of successive
    layers on one core, which is where convolutional and topographic networks
    keep their spikes local.
    """
    keys = []
    for k, b in enumerate(graph.blocks):
        shape = conn.shapes[b.population]
        plane = int(np.prod(shape[-2:])) if len(shape) >= 3 else int(np.prod(shape))
        middle = ((b.start + b.stop) / 2) % plane if plane else 0.0
        keys.append((round(middle / max(plane, 1), 6), conn.population_index[b.population], k))
    return np.array([k for *_, k in sorted(keys)], dtype=np.int64)
