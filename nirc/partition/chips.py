"""The system strategy: a network over the chips of a system first, then each chip over its cores.

Requires: a quantized hardware network and a system target (``target.system``)
whose chip uses the neuron_partition mapping.
Guarantees: a :class:`nirc.placement.Placement` whose cores are numbered
``chip * cores_per_chip + core`` and whose ``system`` field records the chips
used, the lower bound on chips and the gap, the messages between chips and
per link, the inter-chip routes and their routing entries; every chip's share
satisfies every per-core and per-chip limit (it was placed by
:func:`nirc.partition.neuron_partition.neuron_partition`, today's
partitioner, on that share alone). Deterministic for a network, target and seed.

Steps:

1. Lower bound on chips: per resource, the least total demand any placement
   has (lower_bound.total_demand, counted against the cores of the whole
   system) over what one chip's cores hold; the most chips any resource
   needs. A network needing more chips than the system has gets a FitError
   naming the resource, demand, capacity, the chips it needs and the
   smallest shipped target that would hold it.
2. Where the chip search starts (packed_load): the whole network, cut as a
   chip's share is, filled greedily over the system's cores in spatial order;
   the chips those cores span, or the bound if more. Every neuron's share of
   its core there is its load for the cuts below, so they balance what each
   chip's own placement needs (synapse rows of a wide-fan-in layer fill a
   core's memory long before the bound's totals say).
3. Chip assignment: the network is cut into blocks of about 1/16 chip
   (blocks.coarsen with a chip's limits; a (C, H, W) layer in bands of whole
   rows of all channels, so a chip's share of it stays a smaller map); blocks
   in network order and in spatial order (blocks.spatial_order: the same
   region of every layer together, where a CNN keeps its spikes local) and
   neurons in connectivity order (connectivity_order: a randomly numbered
   sheet's neighbourhoods found from its synapses) are cut into k runs of
   balanced load (the greedy starts; the greedy fill of step 2 and the
   sequential baseline below are candidates too); where the model is small
   enough (cpsat.MAX_PAIRS block x chip pairs) CP-SAT improves the best
   start's messages between chips with no chip fuller than the start's
   fullest. Candidates that overload a link (system.link.messages_per_step)
   are skipped; when every candidate overloads one and one chip more did not
   lighten the busiest link, the search stops (band cuts cross the same width
   at every count).
   ``method="sequential"`` is the baseline instead: the sequential fill of
   neuron_partition over all the system's cores in network order (chip 0's
   cores first), each block on the chip of its core (each chip's share is
   then placed on its cores as for the default, so the two differ only in
   which neurons share a chip).
4. Each chip's share becomes a network of its own (neurons fed from other
   chips enter it as inputs, as their spikes do through the chip's router)
   and is placed by neuron_partition (coarsened by core count, not by the
   chip's fixed partitioner.block_size; CP-SAT on one worker where small),
   fullest share first; if any share does not fit its chip the next
   candidate, then one more chip, is tried.

Messages are counted as for cores: one per (source neuron, destination chip)
per spike, rate weighted; each travels the shortest path of links (hops)
between its chips, and a link's traffic sums the messages of every path
through it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from nirc.errors import FitError
from nirc.hwnet import HardwareNetwork, InputPort, Population
from nirc.partition import cpsat
from nirc.partition.blocks import (BlockGraph, check_neurons_fit, coarsen, per_neuron_demand,
                                   spatial_order)
from nirc.partition.connectivity import Connectivity, Rates
from nirc.partition.demand import SynapseListCost, one_hot
from nirc.partition.lower_bound import cores_needed, total_demand
from nirc.partition.neuron_partition import RESOURCE_ORDER, core_capacities, neuron_partition
from nirc.placement import Block, Placement, ResourceUse
from nirc.target import Target, unit_of

METHODS = ("cpsat", "sequential")
# Block x core pairs (of the whole system) up to which the sequential fill is also a
# candidate of the default method (the 64x64 CNN on Kapoho Point: about 0.3M).
SEQUENTIAL_CANDIDATE_MAX_PAIRS = 2_000_000
# Fractions of each core's limits the sequential baseline fills, tried in turn.
SEQUENTIAL_FILLS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.7)
# Blocks of the chip assignment per chip: fine enough to balance chips within a few per
# cent, coarse enough for the greedy cuts and CP-SAT, and whole rows of feature maps.
BLOCKS_PER_CHIP = 16
# Synapses up to which the chip assignment also cuts the neurons in connectivity order
# (connectivity_order builds the symmetrised synapse pattern once: a second copy).
CONNECTIVITY_ORDER_MAX_SYNAPSES = 150_000_000
# connectivity_order: rounds of neighbour averaging of the hop-count coordinates, and the
# neurons per cell of the grid the Hilbert curve visits.
SMOOTHING_ROUNDS = 10
CELL_NEURONS = 4


@dataclass(frozen=True)
class ChipBound:
    chips: int
    resource: str                      # the resource that sets the bound
    demand: dict[str, int]
    chip_capacity: dict[str, int]
    cores: int = 0                     # the core-level bound: fewest cores of the whole system
    cores_resource: str = ""           # the per-core resource that sets it
    chips_by_resource: dict[str, int] | None = None   # chips each resource alone needs


def chip_capacity(target: Target) -> dict[str, int]:
    """What one chip's cores hold together, per bounded resource."""
    return {r: int(c.sum()) for r, c in core_capacities(target).items()}


def chip_lower_bound(conn: Connectivity, cost: SynapseListCost, target: Target) -> ChipBound:
    """Fewest chips any placement uses, from the fewest cores and from per-chip resources.

    Per-core resources: the least total demand of any placement (lower_bound.total_demand;
    a source's targets share a core only as far as its neuron limit and synapse memory
    allow, so a wide-fan-in layer's sources reach more cores) needs cores_r cores of the
    whole system, so ceil(cores_r / cores per chip) chips (and no fewer than the chips whose
    cores' capacities add up to the demand). Per-chip resources: routing entries, one per
    (sending population, core) at least, ceil(population / neurons per core) cores each.
    The bound is the most chips any resource needs; ``resource`` names it."""
    capacities = core_capacities(target)
    largest = int(capacities["neurons"].max()) if "neurons" in capacities else None
    memory = int(capacities["synapse_memory_bits"].max()) \
        if "synapse_memory_bits" in capacities else None
    demand = total_demand(conn, cost, largest, memory)
    per_chip = {r: int(c.sum()) for r, c in capacities.items()}
    system_cores = {r: np.tile(c, target.chip_count) for r, c in capacities.items()}
    cores_by = {}
    for r in per_chip:
        if r in demand:
            k = cores_needed(demand[r], system_cores[r])
            cores_by[r] = k if k is not None else len(system_cores[r]) + 1
    # Chips each resource needs, as a fraction first: of resources needing as many whole
    # chips, the one nearest to needing more is named.
    fraction = {r: max(demand[r] / per_chip[r], cores_by[r] / target.core_count) for r in cores_by}
    needs = {r: max(-(-demand[r] // per_chip[r]), -(-cores_by[r] // target.core_count))
             for r in cores_by}
    entries = target.chip.named().get("routing_entries")
    if entries:
        # A population sends if any of its neurons feeds a table; inputs take one entry each.
        feeds = np.bincount(conn.from_neurons.indices, minlength=conn.neuron_count) > 0
        sending = np.bincount(conn.population_of_neuron(), weights=feeds,
                              minlength=len(conn.population_names)) > 0
        sizes = np.diff(conn.population_offsets)[sending]
        inputs = np.bincount(conn.from_inputs.indices, minlength=conn.input_count) > 0
        input_groups = np.add.reduceat(inputs, conn.input_offsets[:-1]) > 0 \
            if conn.input_count else np.zeros(0, bool)
        demand["routing_entries"] = int(np.sum(-(-sizes // max(1, largest or 1)))
                                        + np.count_nonzero(input_groups))
        per_chip["routing_entries"] = int(entries)
        fraction["routing_entries"] = demand["routing_entries"] / int(entries)
        needs["routing_entries"] = -(-demand["routing_entries"] // int(entries))
    best = max(needs, key=lambda r: (needs[r], fraction[r], -list(needs).index(r)))
    core_resource = max(cores_by, key=lambda r: (cores_by[r], -list(cores_by).index(r))) \
        if cores_by else ""
    return ChipBound(max(needs[best], 1 if conn.neuron_count else 0), best, demand, per_chip,
                     cores=cores_by.get(core_resource, 0), cores_resource=core_resource,
                     chips_by_resource=needs)


def system_partition(net: HardwareNetwork, target: Target, *, method: str = "cpsat",
                     rates: Rates | None = None, time_limit_s: float | None = None,
                     seed: int | None = None, check_links: bool = True) -> Placement:
    """Place ``net`` on the chips of ``target.system``, then on each chip's cores.

    ``check_links=False`` keeps an assignment whose links would carry more than
    system.link.messages_per_step (noted, not refused): for measuring baselines.
    A flat population whose file numbering hides its neighbourhoods is placed in
    connectivity order (locality_renumbering; never for the sequential baseline)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    conn = Connectivity.from_hwnet(net, rates)
    perm = locality_renumbering(conn) if method != "sequential" else None
    if perm:
        # The same placement problem with those populations numbered in connectivity order:
        # every cut below (blocks, bands, each chip's core blocks) is then a neighbourhood.
        started = time.perf_counter()
        conn = None
        net_p, rates_p = renumbered(net, perm), renumbered_rates(net, rates, perm)
        placed = _place_system(net_p, Connectivity.from_hwnet(net_p, rates_p), None, target,
                               method, rates_p, time_limit_s, seed, check_links)
        return placement_in_file_order(placed, perm, time.perf_counter() - started)
    order = connectivity_order(conn) if method != "sequential" else None
    return _place_system(net, conn, order, target, method, rates, time_limit_s, seed, check_links)


def _place_system(net: HardwareNetwork, conn: Connectivity, order: np.ndarray | None,
                  target: Target, method: str, rates: Rates | None, time_limit_s: float | None,
                  seed: int | None, check_links: bool) -> Placement:
    """system_partition on a connectivity (``order``: its connectivity order, or None)."""
    system = target.system
    settings = target.partitioner
    time_limit_s = settings.time_limit_s if time_limit_s is None else time_limit_s
    seed = settings.seed if seed is None else seed
    started = time.perf_counter()
    cost = SynapseListCost.of(target)
    bound = chip_lower_bound(conn, cost, target)
    if bound.chips > system.chips:
        raise too_few_chips(bound, target)
    capacities = core_capacities(target)
    largest = {r: int(c.max()) for r, c in capacities.items()}
    check_neurons_fit(conn, per_neuron_demand(conn, cost), largest, cost, target.name)
    # Blocks of up to 1/BLOCKS_PER_CHIP of a chip: bands of whole rows of every channel of a
    # (C, H, W) layer, so a chip's share of a layer stays a (C, rows, W) map its cores tile.
    scale = max(1, target.core_count // BLOCKS_PER_CHIP)
    graph = coarsen(conn, cost, {r: v * scale for r, v in largest.items()},
                    max_blocks=2 * BLOCKS_PER_CHIP * max(bound.chips, 1),
                    block_size=None, tiled=True, target_name=target.name)
    load = _block_load(graph, cost, largest)
    notes = [f"{graph.block_count} blocks over chips"]
    hops = hop_matrix(target)

    failures: list[str] = []
    # Each chip's share is coarsened by core count, not by the chip's fixed block_size (tuned
    # for small single-chip nets: 32-neuron channel bands of a wide-fan-in layer need many
    # short synapse rows).
    share_settings = settings.model_copy(update={"block_size": None})
    packed = packed_load(conn, cost, capacities, bound, share_settings, target)
    first = max(bound.chips, 1)
    if packed is not None:
        # Chip loads in the cores the greedy fill really used, so the cuts balance what each
        # chip's own placement will need, and the search starts at the chips that fill used.
        load = np.bincount(graph.block_of_neuron, weights=packed.per_neuron,
                           minlength=graph.block_count)
        first = min(system.chips, max(first, -(-int(np.ceil(packed.cores - 1e-9))
                                               // target.core_count)))
        notes.append(f"greedy fill of the system's cores in spatial order: {packed.cores} cores, "
                     f"the chip search starts at {first} chips (bound {bound.chips})")
    sequential_fill_to = _sequential_chips(conn, cost, capacities, bound, settings, target)
    # The baseline fill keeps per-core state for every (block, core) pair of the system: as a
    # candidate of the default method only while that stays small.
    blocks = max(settings.max_blocks,
                 2 * bound.demand.get("neurons", 0) // max(1, int(capacities["neurons"].max())))
    pairs = blocks * target.chip_count * target.core_count
    sequential = sequential_fill_to(1.0) \
        if method == "sequential" or pairs <= SEQUENTIAL_CANDIDATE_MAX_PAIRS else None
    neuron_load = None
    mesh = tuple(system.mesh) if system.mesh is not None and len(system.mesh) == 2 else None
    if method != "sequential":
        if order is not None or (mesh is not None and _has_maps(conn)):
            neuron_load = packed.per_neuron if packed is not None else \
                _neuron_load(conn, cost, largest)
    overloaded: list[str] = []
    previous_busiest = None
    for chips in range(first if method != "sequential" else max(bound.chips, 1),
                       system.chips + 1):
        if method == "sequential":
            if chips > bound.chips:
                break                      # the fill decides the chips itself
            # Cores filled to the brim can leave a chip's share that its own placement (other
            # blocks) cannot fit again: then a little headroom per core.
            candidates = ((f"sequential fill of the system's cores to {round(f * 100)} %",
                           sequential if f == 1.0 else sequential_fill_to(f))
                          for f in SEQUENTIAL_FILLS)
            candidates = ((name, a) for name, a in candidates if a is not None)   # lazily
        else:
            candidates = ((name, a if name.startswith(TILES) else _on_mesh(conn, a, chips, hops))
                          for name, a in
                          _candidates(conn, graph, cost, load, chips, sequential, time_limit_s,
                                      seed, notes, order, neuron_load,
                                      packed.chip_of_neuron if packed is not None else None,
                                      mesh))
        tried, overloaded_here = 0, []
        for name, chip_of_neuron in candidates:
            tried += 1
            overload = link_overload(link_traffic(conn, chip_of_neuron, target, hops), target)
            if overload is not None and check_links:
                overloaded.append(f"{chips} chips, {name}: {overload}")
                overloaded_here.append(overloaded[-1])
                continue
            rank = None
            if name == CONNECTIVITY:
                rank = np.empty(conn.neuron_count, dtype=np.int64)
                rank[order] = np.arange(conn.neuron_count)
            placed = _place_chips(net, conn, chip_of_neuron, target, method, rates,
                                  time_limit_s, seed, rank,
                                  share_settings if method != "sequential" else None)
            if isinstance(placed, str):
                failures.append(f"{chips} chips, {name}: {placed}")
                continue
            notes.append(f"chips: {name}")
            search = {"start": first if method != "sequential" else bound.chips,
                      "greedy_fill_cores": packed.cores if packed is not None else None,
                      "bound": CHIP_BOUND_KIND}
            return _placement(net, conn, target, placed, bound, hops, method,
                              time.perf_counter() - started, notes + failures[-3:], search)
        # Every assignment overloads a link, and the busiest link carried no less with one
        # chip fewer: cutting into more parts adds cuts without shortening any (bands of a
        # feature map cross the same width at every count), so stop.
        busiest = min(map(_overload_demand, overloaded_here)) \
            if tried and len(overloaded_here) == tried else None
        if busiest is not None and previous_busiest is not None and busiest >= previous_busiest:
            break
        previous_busiest = busiest
    if overloaded and not failures:
        raise FitError(f"no chip assignment on {target.name} keeps every link within "
                       f"system.link.messages_per_step (least overloaded: "
                       f"{_least_overloaded(overloaded)}; messages are estimated from the "
                       f"calibrated spike rates); lower the spike rates, or use a system whose "
                       f"links carry more (raise system.link.messages_per_step in its YAML if "
                       f"its links do)")
    raise FitError(f"no placement on the {system.chips} chips of {target.name}: every chip "
                   f"assignment left a chip whose share does not fit its {target.core_count} "
                   f"cores (last: {failures[-1] if failures else 'none tried'}"
                   + (f"; others overload a link, least: {_least_overloaded(overloaded)}"
                      if overloaded else "") +
                   "); use a system with more chips, or sparser weights")


def _overload_demand(line: str) -> float:
    return float(line.split("would carry ")[1].split(" ")[0])


def _least_overloaded(overloaded: list[str]) -> str:
    return min(overloaded, key=_overload_demand)


# --- the bound and its message ---------------------------------------------------------------

def too_few_chips(bound: ChipBound, target: Target) -> FitError:
    r = bound.resource
    unit = unit_of(r)
    have = bound.chip_capacity[r] * target.chip_count
    return FitError(f"the network needs at least {bound.demand[r]} {unit} of '{r}' but the "
                    f"{target.chip_count} chips of {target.name} have {have} "
                    f"({bound.chip_capacity[r]} per chip); it needs at least {bound.chips} chips "
                    f"of {target.system.chip}; {smallest_holding(bound, target)}")


def smallest_holding(bound: ChipBound, target: Target) -> str:
    """Which shipped target (chip or system) with the same neuron model would hold the demand."""
    from nirc.target import list_targets
    from nirc.errors import TargetError

    fits = []
    try:
        shipped = list_targets()
    except TargetError:
        shipped = []
    for other in shipped:
        if other.neuron_model != target.neuron_model or other.mapping != "neuron_partition":
            continue
        caps = chip_capacity(other)
        if all(bound.demand.get(r, 0) <= caps[r] * other.chip_count for r in caps):
            fits.append((other.chip_count * other.core_count, other.name))
    if fits:
        return f"the smallest shipped target that would hold it is {min(fits)[1]}"
    return "no shipped target holds it: describe a larger system in a YAML file (system.chips)"


# --- chip assignment ---------------------------------------------------------------------

def _block_load(graph: BlockGraph, cost: SynapseListCost, limits: dict[str, int]) -> np.ndarray:
    """Per block, the fraction of one core it takes (the most of any resource)."""
    load = np.zeros(graph.block_count)
    if "neurons" in limits:
        load = np.maximum(load, graph.demand["neurons"] / limits["neurons"])
    if "synapses" in limits:
        load = np.maximum(load, graph.demand["synapses"] / limits["synapses"])
    if "synapse_memory_bits" in limits:
        bits = cost.bound_bits(graph.demand["synapses"], graph.fan_in_alone)
        load = np.maximum(load, bits / limits["synapse_memory_bits"])
    if "fan_in_axons" in limits:
        load = np.maximum(load, graph.fan_in_alone / limits["fan_in_axons"])
    return load


def _balanced_cut(load: np.ndarray, order: np.ndarray, chips: int) -> np.ndarray:
    """Blocks in ``order`` cut into ``chips`` runs of about equal load."""
    cumulative = np.cumsum(load[order])
    total = cumulative[-1] if len(cumulative) else 0.0
    # A block goes to the chip whose share of the total its midpoint falls in.
    middle = cumulative - load[order] / 2
    chip_in_order = np.minimum((middle / max(total, 1e-12) * chips).astype(np.int64), chips - 1)
    out = np.empty(len(order), dtype=np.int64)
    out[order] = chip_in_order
    return out


def _sequential_chips(conn: Connectivity, cost: SynapseListCost, capacities: dict[str, np.ndarray],
                      bound: ChipBound, settings, target: Target):
    """The baseline: packing.sequential_fill of core-sized blocks over every core of the
    system in network order (chip 0's cores first). Returns ``fill(fraction)``: the chip of
    every neuron when each core is filled to ``fraction`` of its limits (headroom for the
    chip's own placement of its share), None if the fill runs out of cores."""
    from nirc.partition.packing import sequential_fill

    largest = {r: int(c.max()) for r, c in capacities.items()}
    cores_bound = -(-bound.demand.get("neurons", 0) // max(1, largest.get("neurons", 1)))
    alone = per_neuron_demand(conn, cost)
    # Headroom never below what one neuron alone needs (a readout with the full fan-in).
    floor = {"synapses": int(alone.synapses.max(initial=1)),
             "synapse_memory_bits": int(cost.bound_bits(alone.synapses, alone.fan_in_axons).max(initial=1)),
             "fan_in_axons": int(alone.fan_in_axons.max(initial=1))}

    def fill(fraction: float) -> np.ndarray | None:
        limits = {r: min(v, max(floor.get(r, 1), int(v * fraction))) for r, v in largest.items()}
        try:
            graph = coarsen(conn, cost, limits, block_size=settings.block_size, tiled=True,
                            max_blocks=max(settings.max_blocks, 2 * cores_bound),
                            target_name=target.name)
        except FitError:               # a neuron alone over the reduced limits
            return None
        caps = {r: np.minimum(c, np.maximum(floor.get(r, 1), (c * fraction).astype(np.int64)))
                for r, c in capacities.items()}
        caps = {r: np.tile(c, target.chip_count) for r, c in caps.items()}
        core_of_block, problem = sequential_fill(graph, caps, cost)
        if problem is not None:
            core_of_block, problem = sequential_fill(graph, caps, cost, optimistic=True)
        if problem is not None:
            return None
        return (core_of_block // target.core_count)[graph.block_of_neuron]

    return fill


@dataclass(frozen=True)
class PackedLoad:
    cores: float                       # cores the fill used
    per_neuron: np.ndarray             # (N,) the share of a core each neuron took
    chip_of_neuron: np.ndarray         # (N,) chip of each neuron in that fill


def packed_load(conn: Connectivity, cost: SynapseListCost, capacities: dict[str, np.ndarray],
                bound: ChipBound, settings, target: Target) -> PackedLoad | None:
    """What each neuron costs in cores when the greedy packer really packs the network.

    Requires: the network's per-core demands within one core's limits.
    Guarantees: the whole network cut as a chip's share is (``settings``'s
    coarsening, deep layers' positions split across channels), filled over the
    system's cores in spatial order topping up the last fill_window cores
    (packing.sequential_fill, exact per-core counting); each core's use split
    over its blocks by their load (the most of any resource, as _block_load).
    The neuron counts and synapse memory a chip's share needs on its cores
    follow this, not the bound's totals: a tile of a wide-fan-in layer takes
    a core's memory with its synapse rows long before its neurons fill it.
    None if the fill runs out of the system's cores.
    """
    from nirc.partition.neuron_partition import (GREEDY_BLOCKS_PER_CORE, REFINE_ABOVE_BOUND,
                                                 fill_window)
    from nirc.partition.packing import sequential_fill

    largest = {r: int(c.max()) for r, c in capacities.items()}
    cores_bound = max((-(-bound.demand[r] // max(1, largest[r])) for r in largest
                       if r in bound.demand), default=1)
    graph = coarsen(conn, cost, largest, block_size=settings.block_size, tiled=True,
                    max_blocks=max(settings.max_blocks, GREEDY_BLOCKS_PER_CORE * cores_bound),
                    target_name=target.name, split_positions=True)
    caps = {r: np.tile(c, target.chip_count) for r, c in capacities.items()}
    window = fill_window(conn)

    def fill(graph):
        order = spatial_order(conn, graph)
        core_of_block, problem = sequential_fill(graph, caps, cost, order, window=window)
        if problem is not None:
            core_of_block, problem = sequential_fill(graph, caps, cost, order, optimistic=True,
                                                     window=window)
        return core_of_block if problem is None else None

    core_of_block = fill(graph)
    if core_of_block is None:
        return None
    used = int(np.unique(core_of_block).size)
    if used > REFINE_ABOVE_BOUND * cores_bound and settings.block_size is None:
        # Blocks sized for the bound's cores leave each core's last block's worth empty
        # where rows nobody shares fill the cores first: cut for the cores really used.
        finer = coarsen(conn, cost, largest, block_size=None, tiled=True, target_name=target.name,
                        max_blocks=max(settings.max_blocks, GREEDY_BLOCKS_PER_CORE * used),
                        split_positions=True)
        refilled = fill(finer) if finer.block_count > graph.block_count else None
        if refilled is not None and np.unique(refilled).size < used:
            graph, core_of_block = finer, refilled
    load = _block_load(graph, cost, largest)
    on_core = np.bincount(core_of_block, weights=load)
    share = load / np.maximum(on_core[core_of_block], 1e-12)
    neurons = graph.demand["neurons"] if "neurons" in graph.demand else \
        np.bincount(graph.block_of_neuron, minlength=graph.block_count)
    per_neuron = (share / np.maximum(neurons, 1))[graph.block_of_neuron]
    cores = int(np.unique(core_of_block).size)
    return PackedLoad(float(cores), per_neuron,
                      (core_of_block // target.core_count)[graph.block_of_neuron])


def chip_messages(conn: Connectivity, chip_of_neuron: np.ndarray, chips: int) -> sp.csr_array:
    """(chips x chips) messages per step from chip a to chip b (rate weighted, one per
    (source neuron, destination chip)); the diagonal is zero."""
    pattern = conn.from_neurons.copy()
    pattern.data = np.ones_like(pattern.data)
    reach = sp.csr_array(one_hot(chip_of_neuron, chips) @ pattern)        # (chips, N)
    reach.data = conn.neuron_rates[reach.indices].astype(np.float64)
    by_dest = sp.coo_array(reach @ one_hot(chip_of_neuron, chips).T)    # (dest, src)
    off = by_dest.row != by_dest.col
    return sp.csr_array((by_dest.data[off], (by_dest.col[off], by_dest.row[off])),
                        shape=(chips, chips))


def _candidates(conn: Connectivity, graph: BlockGraph, cost: SynapseListCost, load: np.ndarray,
                chips: int, sequential: np.ndarray | None, time_limit_s: float, seed: int,
                notes: list[str], order: np.ndarray | None = None,
                neuron_load: np.ndarray | None = None,
                packed: np.ndarray | None = None, mesh: tuple[int, int] | None = None
                ) -> list[tuple[str, np.ndarray]]:
    """Chip assignments to try on ``chips`` chips, fewest messages between chips first.

    ``mesh`` (a 2-D mesh of chips, with ``neuron_load``): feature maps also cut in
    2-D tiles laid onto the mesh (tile_assignment; its chips are the system's own).

    Greedy starts: balanced cuts of the blocks in network order and in spatial
    order, of the neurons in connectivity order (``order``, when given: a
    network whose file order does not follow its structure), the
    sequential baseline and the greedy fill of packed_load (``packed``: its
    chip of every neuron). CP-SAT (chip-level: neurons and synapses per chip no
    more than the best block start's fullest chip, so balance is kept;
    per-core limits are the chips' own placements' business) starts from the
    best block cut. Parts are numbered 0..chips-1 here; _on_mesh gives them
    chips of the system."""
    orders = [("network order", np.arange(graph.block_count)),
              ("spatial order", spatial_order(conn, graph))]
    found = []
    for name, block_order in orders:
        assignment = _balanced_cut(load, block_order, chips)
        found.append((f"balanced cut in {name}", assignment[graph.block_of_neuron], assignment))
    if order is not None and neuron_load is not None:
        found.append((CONNECTIVITY, _balanced_cut(neuron_load, order, chips), None))
    if sequential is not None and sequential.max() < chips:
        found.append(("sequential fill of the system's cores", sequential, None))
    if packed is not None and packed.max() < chips:
        found.append((PACKED, packed, None))
    if mesh is not None and neuron_load is not None:
        tiles = tile_assignment(conn, neuron_load, chips, mesh)
        if tiles is not None:
            found.append(tiles + (None,))
    scored = sorted(((_messages(conn, a, max(chips, int(a.max()) + 1)), k, name, a, blocks)
                     for k, (name, a, blocks) in enumerate(found)), key=lambda s: s[:2])
    best_messages, _, best_name, _, best = next(s for s in scored if s[4] is not None)
    if chips > 1 and graph.block_count * chips <= cpsat.MAX_PAIRS:
        caps = {r: np.full(chips, int(np.bincount(best, weights=graph.demand[r],
                                                  minlength=chips).max()))
                for r in ("neurons", "synapses")}
        solve = cpsat.fewest_messages(graph, caps, cost, False, best, time_limit_s, seed,
                                      workers=cpsat.SAFE_WORKERS)
        notes.append(f"chips, fewest messages: {solve.status}")
        if solve.core_of_block is not None and len(np.unique(solve.core_of_block)) == chips:
            per_neuron = solve.core_of_block[graph.block_of_neuron]
            improved = _messages(conn, per_neuron, chips)
            if improved < scored[0][0]:
                scored.insert(0, (improved, -1, f"CP-SAT from the {best_name}", per_neuron, None))
    return [(name, a) for _, _, name, a, _ in scored]


TILES = "2-D tiles of the feature maps on the mesh"
# tile_assignment: the share of the network's load (by per-neuron load) that must sit in
# (C, H, W) maps for the maps to decide where everything goes.
TILED_LOAD_SHARE = 0.9


def _has_maps(conn: Connectivity) -> bool:
    return any(len(conn.shapes[name]) == 3 for name in conn.population_names)


def tile_assignment(conn: Connectivity, load: np.ndarray, chips: int, mesh: tuple[int, int]
                    ) -> tuple[str, np.ndarray] | None:
    """Feature maps cut in 2-D tiles, one per chip, laid onto a 2-D mesh of chips.

    Every (C, H, W) layer's neurons get their position in the map as fractions
    (y, x), so the same region of every layer goes together (a convolution's
    receptive field stays on its chip). The maps are cut into ``gy`` rows of
    tiles by load, row i into ``cols[i]`` tiles by load (``chips`` tiles in
    all, at most the mesh's columns per row, the split with the shortest
    tile edges), and tile (i, j) goes on mesh chip (i, j): a chip boundary
    carries one tile edge, not a whole row of the map, and neighbouring tiles
    are one link apart. Each cut balances the load to one position: rows of
    tiles in row-major order of the positions (a boundary may step part way
    along a row of the map), tiles of a row in column-major order, so tile
    edges are staircases (cut at whole rows and columns, the 10^8-synapse CNN's
    23 tiles were 143-155 cores' worth, five over a SpiNNaker-2 chip's 152;
    cut so, 149-150). All channels of a position stay together, so a chip's
    share of a layer is a (C, rows, columns) map or a (C, 1, positions) run its
    cores cut by position (_sub_population). Neurons of flat populations go to the chip sending them most synapses (the first
    chip if none). None when fewer than TILED_LOAD_SHARE of the load sits in
    maps, or ``chips`` does not fit the mesh."""
    rows_max, cols_max = mesh
    y = np.full(conn.neuron_count, np.nan)
    x = np.full(conn.neuron_count, np.nan)
    for k, name in enumerate(conn.population_names):
        shape = conn.shapes[name]
        if len(shape) != 3:
            continue
        c, h, w = shape
        a, b = int(conn.population_offsets[k]), int(conn.population_offsets[k + 1])
        at = np.arange(b - a) % (h * w)
        y[a:b], x[a:b] = (at // w + 0.5) / h, (at % w + 0.5) / w
    mapped = ~np.isnan(y)
    total = float(load.sum())
    if not mapped.any() or float(load[mapped].sum()) < TILED_LOAD_SHARE * total:
        return None
    splits = []
    for gy in range(1, min(rows_max, chips) + 1):
        base, extra = divmod(chips, gy)
        cols = [base + 1] * extra + [base] * (gy - extra)
        if cols[0] > cols_max:
            continue
        # Tile edges on a unit map: gy - 1 full-width cuts, and cols - 1 cuts of each row's
        # height (a row's height follows its share of the chips).
        splits.append(((gy - 1) + sum((g - 1) * g / chips for g in cols), gy, cols))
    if not splits:
        return None
    _, gy, cols = min(splits)
    where = np.flatnonzero(mapped)
    tile_row = _cut_by_load(_rank(y[where], x[where]), load[where], np.cumsum(cols)[:-1] / chips)
    chip = np.full(conn.neuron_count, -1, dtype=np.int64)
    for i, n_cols in enumerate(cols):
        mine = where[tile_row == i]
        col = _cut_by_load(_rank(x[mine], y[mine]), load[mine], np.arange(1, n_cols) / n_cols)
        chip[mine] = i * cols_max + col
    flat = np.flatnonzero(~mapped)
    if len(flat):
        feeds = sp.csr_array(conn.from_neurons[flat][:, where])
        counts = (feeds @ one_hot(chip[where], rows_max * cols_max).T).toarray()
        chip[flat] = np.argmax(counts, axis=1)        # no synapses from maps: the first chip
        chip[flat[counts.sum(axis=1) == 0]] = int(chip[where].min())
    grid = "x".join(str(v) for v in cols)
    return f"{TILES} (rows of {grid} tiles)", chip


def _rank(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Each point's place among the distinct (primary, secondary) pairs in lexicographic
    order (equal pairs share a rank): a cut by it may end part way along a row."""
    order = np.lexsort((secondary, primary))
    key = np.column_stack([primary[order], secondary[order]])
    new = np.concatenate([[True], np.any(key[1:] != key[:-1], axis=1)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.cumsum(new) - 1
    return rank


def _cut_by_load(position: np.ndarray, load: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Index of the part each neuron falls in when ``position`` is cut at thresholds that
    leave about ``fractions`` of the load below them (equal positions share a part: each
    threshold is the distinct position whose load below is nearest the fraction's)."""
    order = np.argsort(position, kind="stable")
    ranked = position[order]
    distinct, first = np.unique(ranked, return_index=True)
    below = np.concatenate([[0.0], np.cumsum(load[order])])[first]     # load before each
    goal = fractions * float(load.sum())
    at = np.clip(np.searchsorted(below, goal), 1, len(below) - 1)
    nearer = np.where(np.abs(below[at - 1] - goal) <= np.abs(below[at] - goal), at - 1, at)
    thresholds = distinct[np.maximum(nearer, 1)] if len(distinct) > 1 else distinct[:0]
    return np.searchsorted(thresholds, position, side="right")


CONNECTIVITY = "balanced cut in connectivity order"
# What chip_lower_bound counts (report.json's system.chip_search.bound).
CHIP_BOUND_KIND = ("cores: per resource, the fewest cores of the system whose capacities cover "
                   "the least total demand of any placement (a source's targets share a core only "
                   "as far as the core's neuron limit and synapse memory allow), over the cores "
                   "of one chip; per-chip resources (routing entries) over one chip's capacity; "
                   "the most chips any resource needs")
PACKED = "greedy fill of the system's cores in spatial order"


def connectivity_order(conn: Connectivity) -> np.ndarray | None:
    """Every neuron, ordered so that neurons exchanging spikes sit near each other.

    Neurons get graph coordinates: their hop distances (breadth first, on the
    symmetrised synapse graph) to two far-apart landmarks, the second as far
    from the first as from the point farthest from it (on a 2-D sheet: two
    neighbouring corners); cells of
    equal coordinates are ordered along a Hilbert curve. Any run of the order
    is then a compact region of the graph, not a thin line (as reverse
    Cuthill-McKee's level sets are): a chip's share keeps its neighbourhoods
    and a core's 256 neurons draw on few synapse rows, whatever order the
    file lists them in (a distance-dependent layer numbered at random).
    Neurons outside the landmarks' component follow in reverse Cuthill-McKee
    order. None above CONNECTIVITY_ORDER_MAX_SYNAPSES (the symmetrised
    pattern is a second copy of the synapse graph)."""
    return locality_order(conn.from_neurons)


def locality_order(m: sp.csr_array) -> np.ndarray | None:
    """connectivity_order of the graph whose synapse pattern (target x source) is ``m``."""
    from scipy.sparse.csgraph import reverse_cuthill_mckee, shortest_path

    count = m.shape[0]
    if count < 2 or m.nnz == 0 or m.nnz > CONNECTIVITY_ORDER_MAX_SYNAPSES:
        return None
    pattern = sp.csr_matrix((np.ones(m.nnz, dtype=np.int8), m.indices, m.indptr), shape=m.shape)
    symmetric = (pattern + pattern.T).tocsr()
    del pattern
    rcm = np.asarray(reverse_cuthill_mckee(symmetric, symmetric_mode=True), dtype=np.int64)

    def hops(start: int) -> np.ndarray:
        return shortest_path(symmetric, unweighted=True, directed=False, indices=start)

    # A far point a from RCM's last neuron (peripheral: on a sheet, a corner), the point c
    # farthest from a (the opposite corner), then b far from both (a corner next to a).
    # Distances to a and b, two neighbouring corners, tell every point of the sheet apart;
    # to two opposite corners they would not (mirror images across the diagonal agree).
    d0 = hops(int(rcm[-1]))
    reached = np.isfinite(d0)
    a = int(np.argmax(np.where(reached, d0, -1)))
    da = hops(a)
    c = int(np.argmax(np.where(reached, da, -1)))
    dc = hops(c)
    b = int(np.argmax(np.where(reached, np.minimum(da, dc), -1)))
    db = hops(b)
    rank = np.empty(count, dtype=np.int64)
    rank[rcm] = np.arange(count)
    # Hop counts are coarse (a whole neighbourhood shares one): averaging each neuron's with
    # its neighbours' a few times makes them vary smoothly within it.
    coords = np.column_stack([np.where(reached, da, 0.0), np.where(reached, db, 0.0)])
    degree = np.asarray(symmetric.sum(axis=1)).ravel() + 1.0
    for _ in range(SMOOTHING_ROUNDS):
        coords = (symmetric @ coords + coords) / degree[:, None]
    # A grid of about CELL_NEURONS neurons per cell over the coordinates' range.
    side = max(1, int(np.sqrt(max(1, int(reached.sum())) / CELL_NEURONS)))
    low, high = coords[reached].min(axis=0), coords[reached].max(axis=0)
    cell = np.floor((coords - low) / np.maximum(high - low, 1e-12) * (side - 1e-9)).astype(np.int64)
    key = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
    key[reached] = hilbert_index(cell[reached, 0], cell[reached, 1])
    return np.lexsort((rank, key)).astype(np.int64)


# locality_renumbering: neurons per run whose distinct sources are compared (a core's worth),
# runs sampled per population, and how much fewer sources the connectivity order must need.
LOCALITY_RUN = 256
LOCALITY_SAMPLES = 64
RENUMBER_GAIN = 0.8


def locality_renumbering(conn: Connectivity) -> dict[str, np.ndarray]:
    """Flat populations to place in connectivity order: population -> its neurons in that order.

    The order of a population is locality_order of its synapses among its own
    neurons (other layers would be shortcuts: a readout fed from random points
    of a sheet puts every point of it within a few hops of every other). A flat
    (1-D) population is renumbered when runs of LOCALITY_RUN neurons of
    that order draw on at most RENUMBER_GAIN times the distinct
    sources that runs of the file's order do (sampled runs): a randomly
    numbered sheet is (its runs are then neighbourhoods, whose synapse rows a
    core holds), an index-local layer or a uniformly random one is not (the
    file's order is as good, or nothing is). Maps of (C, H, W) layers keep
    their spatial tiles."""
    out: dict[str, np.ndarray] = {}
    rows = conn.from_neurons
    for k, name in enumerate(conn.population_names):
        a, b = int(conn.population_offsets[k]), int(conn.population_offsets[k + 1])
        if len(conn.shapes[name]) != 1 or b - a < 2 * LOCALITY_RUN:
            continue
        own = locality_order(sp.csr_array(rows[a:b][:, a:b]))
        if own is None:
            continue
        mine = own + a
        runs = np.linspace(0, b - a - LOCALITY_RUN, min(LOCALITY_SAMPLES, (b - a) // LOCALITY_RUN)
                           ).astype(np.int64)

        def sources(neurons):
            return np.mean([np.unique(rows[neurons[r:r + LOCALITY_RUN]].indices).size
                            for r in runs])

        if sources(mine) <= RENUMBER_GAIN * sources(np.arange(a, b)):
            out[name] = mine - a
    return out


def renumbered(net: HardwareNetwork, perm: dict[str, np.ndarray]) -> HardwareNetwork:
    """``net`` with each population of ``perm`` numbered so that its neuron k is the file's
    neuron perm[name][k] (tables' rows and columns, per-neuron parameters)."""
    inverse = {name: np.argsort(new_to_old) for name, new_to_old in perm.items()}
    populations = {name: (_sub_population(pop, perm[name], keep_order=True)
                          if name in perm else pop) for name, pop in net.populations.items()}
    tables = []
    for t in net.tables:
        w = t.weights
        if t.target in perm:
            w = sp.csr_array(w[perm[t.target]])
        if t.source in perm:
            w = sp.csr_array((w.data, inverse[t.source][w.indices], w.indptr), shape=w.shape)
            w.sort_indices()
        tables.append(t.with_(weights=w) if w is not t.weights else t)
    return net.with_(populations=populations, tables=tuple(tables))


def renumbered_rates(net: HardwareNetwork, rates: Rates | None, perm: dict[str, np.ndarray]
                     ) -> Rates | None:
    if rates is None:
        return None
    out = dict(rates)
    for name, new_to_old in perm.items():
        value = np.asarray(rates.get(name, 1.0), dtype=np.float64).reshape(-1)
        if name in rates and value.size > 1:
            out[name] = value[new_to_old]
    return out


def placement_in_file_order(placed: Placement, perm: dict[str, np.ndarray], seconds: float
                            ) -> Placement:
    """A placement of renumbered(net, perm) as a placement of ``net``: each renumbered
    population's blocks become the runs of its file-order neurons that share a core."""
    from dataclasses import replace

    blocks = [b for b in placed.blocks if b.population not in perm]
    for name, new_to_old in perm.items():
        core = np.full(len(new_to_old), -1, dtype=np.int64)
        for b in placed.blocks_of(name):
            core[new_to_old[b.start:b.stop]] = b.core
        starts = np.concatenate([[0], np.flatnonzero(np.diff(core) != 0) + 1])
        stops = np.append(starts[1:], len(core))
        blocks += [Block(name, int(a), int(z), int(c))
                   for a, z, c in zip(starts.tolist(), stops.tolist(), core[starts].tolist())]
    order = {p: i for i, p in enumerate(dict.fromkeys(b.population for b in placed.blocks))}
    blocks.sort(key=lambda b: (order[b.population], b.start))
    notes = tuple(f"{name}: placed in connectivity order (its file numbering hides its "
                  f"neighbourhoods)" for name in perm)
    return replace(placed, blocks=tuple(blocks), notes=notes + placed.notes,
                   solve_time_s=seconds)


def hilbert_index(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Position of integer points (x, y) >= 0 along a Hilbert curve (nearby indices, nearby points)."""
    x, y = np.asarray(x, dtype=np.int64).copy(), np.asarray(y, dtype=np.int64).copy()
    side = 1
    while side <= max(int(x.max(initial=0)), int(y.max(initial=0))):
        side *= 2
    d = np.zeros(len(x), dtype=np.int64)
    s = side // 2
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx) ^ ry)
        # Rotate the quadrant so the curve's sub-square is in standard orientation.
        flip = ~ry & rx
        x = np.where(flip, s - 1 - x, x)
        y = np.where(flip, s - 1 - y, y)
        swap = ~ry
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s //= 2
    return d


def _neuron_load(conn: Connectivity, cost: SynapseListCost, limits: dict[str, int]) -> np.ndarray:
    """Per neuron, the fraction of one core it takes alone (as _block_load for blocks)."""
    alone = per_neuron_demand(conn, cost)
    load = np.zeros(conn.neuron_count)
    if "neurons" in limits:
        load = np.maximum(load, 1.0 / limits["neurons"])
    if "synapses" in limits:
        load = np.maximum(load, alone.synapses / limits["synapses"])
    if "synapse_memory_bits" in limits:
        load = np.maximum(load, cost.bound_bits(alone.synapses, alone.fan_in_axons)
                          / limits["synapse_memory_bits"])
    return load


def _on_mesh(conn: Connectivity, part_of_neuron: np.ndarray, parts: int, hops: np.ndarray
             ) -> np.ndarray:
    """The chip of every neuron: parts that exchange spikes on chips few hops apart.

    Greedy: parts in order of their traffic with the parts placed so far (the
    busiest first, on chip 0), each on the free chip that minimises its
    messages x hops to them; kept only if it beats parts 0..k-1 on chips 0..k-1."""
    if parts < 2:
        return part_of_neuron
    t = chip_messages(conn, part_of_neuron, parts).toarray()
    t = t + t.T
    identity = np.arange(parts)

    def cost(chip_of_part):
        return float((t * hops[np.ix_(chip_of_part, chip_of_part)]).sum())

    chip_of_part = np.full(parts, -1, dtype=np.int64)
    free = np.ones(len(hops), dtype=bool)
    placed: list[int] = []
    for _ in range(parts):
        pending = np.flatnonzero(chip_of_part < 0)
        pull = t[np.ix_(pending, placed)].sum(axis=1) if placed else t[pending].sum(axis=1)
        p = int(pending[int(np.argmax(pull))])
        if placed:
            where = chip_of_part[placed]
            score = (t[p, placed][None, :] * hops[:, where]).sum(axis=1)
            score = np.where(free, score, np.inf)
            c = int(np.argmin(score))
        else:
            c = 0
        chip_of_part[p] = c
        free[c] = False
        placed.append(p)
    best = chip_of_part if cost(chip_of_part) < cost(identity) else identity
    return best[part_of_neuron]


def link_traffic(conn: Connectivity, chip_of_neuron: np.ndarray, target: Target,
                 hops: np.ndarray) -> dict[tuple[int, int], float]:
    """Messages per step on each directed link (x, y) the routes of a chip assignment use."""
    messages = chip_messages(conn, chip_of_neuron, target.system.chips).tocoo()
    directed: dict[tuple[int, int], float] = {}
    for a, b, m in zip(messages.row, messages.col, messages.data):
        path = route(target, hops, int(a), int(b))
        for x, y in zip(path[:-1], path[1:]):
            directed[(x, y)] = directed.get((x, y), 0.0) + float(m)
    return directed


def link_overload(directed: dict[tuple[int, int], float], target: Target) -> str | None:
    """The busiest link over system.link.messages_per_step, as a sentence, or None."""
    capacity = target.system.link.messages_per_step
    if capacity is None or not directed:
        return None
    (x, y), m = max(directed.items(), key=lambda item: (item[1], -item[0][0], -item[0][1]))
    if m <= capacity:
        return None
    return (f"link {x}->{y} would carry {m:.0f} messages per step but "
            f"system.link.messages_per_step is {capacity}")


def _messages(conn: Connectivity, chip_of_neuron: np.ndarray, chips: int) -> float:
    return float(chip_messages(conn, chip_of_neuron, chips).sum())


# --- each chip's share -----------------------------------------------------------------

@dataclass
class _Share:
    chip: int
    placement: Placement
    neurons: dict[str, np.ndarray]      # population -> its neurons on this chip (sorted)


def _place_chips(net, conn, chip_of_neuron, target, method, rates, time_limit_s, seed,
                 rank=None, settings=None) -> list[_Share] | str:
    """Each chip's share placed on its cores, or why one does not fit (``rank``: see
    chip_network; ``settings``: the partitioner settings of the shares, None: the chip's).
    The fullest share goes first: a share that does not fit is found before the others
    are placed."""
    shares = []
    chips = np.unique(chip_of_neuron)
    held = np.bincount(chip_of_neuron)[chips]
    for chip in chips[np.argsort(-held, kind="stable")].tolist():
        sub, neurons, sub_rates = chip_network(net, conn, chip_of_neuron, chip, rates, rank)
        try:
            # One CP-SAT worker: OR-Tools 9.15's interleaved multi-worker search aborts the
            # process on some share models (cpsat.SAFE_WORKERS says why).
            placement = neuron_partition(sub, target, rates=sub_rates, time_limit_s=time_limit_s,
                                         seed=seed, cpsat_workers=cpsat.SAFE_WORKERS,
                                         settings=settings, blocks_by_fill=settings is not None)
        except FitError as err:
            return f"chip {chip}: {err}"
        shares.append(_Share(chip, placement, neurons))
    return sorted(shares, key=lambda share: share.chip)


def remote_name(population: str) -> str:
    """The input a chip sees for spikes of ``population`` sent from other chips."""
    return f"{population}@remote"


def chip_network(net: HardwareNetwork, conn: Connectivity, chip_of_neuron: np.ndarray, chip: int,
                 rates: Rates | None, rank: np.ndarray | None = None
                 ) -> tuple[HardwareNetwork, dict[str, np.ndarray], dict | None]:
    """One chip's share of ``net`` as a network of its own.

    Populations keep their names and hold only the chip's neurons (a band of
    whole rows or a tile of a (C, H, W) layer keeps its three axes, so tiles
    stay spatial; a staircase tile is (C, 1, positions); other shares are
    flat). Synapses from neurons on other chips come
    from an input ``remote_name(population)`` as wide as the population.
    """
    local: dict[str, np.ndarray] = {}
    for k, name in enumerate(conn.population_names):
        a, b = int(conn.population_offsets[k]), int(conn.population_offsets[k + 1])
        mine = np.flatnonzero(chip_of_neuron[a:b] == chip)
        if len(mine):
            local[name] = mine
    position = {}
    for name, mine in local.items():
        pos = np.full(net.populations[name].size, -1, dtype=np.int64)
        pos[mine] = np.arange(len(mine))
        position[name] = pos
    populations = {name: _sub_population(net.populations[name], mine) for name, mine in local.items()}
    inputs = dict(net.inputs)
    tables = []
    for t in net.tables:
        if t.target not in local:
            continue
        rows = sp.csr_array(t.weights[local[t.target]])
        if t.source in net.inputs:
            tables.append(t.with_(weights=rows))
            continue
        coo = rows.tocoo()
        here = position.get(t.source)
        on_chip = here[coo.col] >= 0 if here is not None else np.zeros(coo.nnz, bool)
        shape_rows = rows.shape[0]
        if np.any(on_chip):
            tables.append(t.with_(weights=sp.csr_array(
                (coo.data[on_chip], (coo.row[on_chip], here[coo.col[on_chip]])),
                shape=(shape_rows, len(local[t.source])))))
        if not np.all(on_chip):
            name = remote_name(t.source)
            inputs[name] = InputPort(name, (net.populations[t.source].size,))
            far = ~on_chip
            tables.append(t.with_(source=name, weights=sp.csr_array(
                (coo.data[far], (coo.row[far], coo.col[far])),
                shape=(shape_rows, rows.shape[1]))))
    sub_rates = None
    if rates is not None:
        sub_rates = {}
        for name, value in rates.items():
            value = np.asarray(value, dtype=np.float64).reshape(-1)
            if name in local:
                sub_rates[name] = value if value.size == 1 else value[local[name]]
            elif name in net.inputs:
                sub_rates[name] = value
            if name in net.populations:
                sub_rates[remote_name(name)] = value
    # Only the inputs that feed this chip (an input feeding nothing leaves CP-SAT a model it
    # aborts on: OR-Tools 'heuristics.fixed_search != nullptr').
    fed = {t.source for t in tables}
    inputs = {name: port for name, port in inputs.items() if name in fed}
    sub = net.with_(inputs=inputs, populations=populations, tables=tuple(tables), outputs={})
    return sub, local, sub_rates


def _sub_population(pop: Population, mine: np.ndarray, keep_order: bool = False) -> Population:
    """``pop``'s neurons ``mine`` (sorted; ``keep_order``: any order, a flat population)."""
    if len(mine) == pop.size and not keep_order:
        return pop
    shape: tuple[int, ...] = (len(mine),)
    if len(pop.shape) == 3 and not keep_order:
        # A band of whole rows or a 2-D tile of every channel keeps its (C, rows, columns)
        # shape (its cores tile it); any other set of positions with all their channels (a
        # staircase tile) is (C, 1, positions) in row-major order, so its cores still get
        # runs of positions with every channel, not strips of one channel; any other share
        # is flat.
        c, h, w = pop.shape
        plane = h * w
        at = mine % plane
        r0, r1 = int((at // w).min()), int((at // w).max()) + 1
        c0, c1 = int((at % w).min()), int((at % w).max()) + 1
        tile = (np.arange(c)[:, None, None] * plane + np.arange(r0, r1)[None, :, None] * w
                + np.arange(c0, c1)[None, None, :]).ravel() \
            if len(mine) == c * (r1 - r0) * (c1 - c0) else None
        if tile is not None and np.array_equal(tile, mine):
            shape = (c, r1 - r0, c1 - c0)
        elif len(mine) % c == 0:
            positions = mine[:len(mine) // c]
            if np.array_equal((np.arange(c)[:, None] * plane + positions[None, :]).ravel(), mine):
                shape = (c, 1, len(positions))
    params = {k: np.asarray(v).reshape(-1)[mine] if np.ndim(v) and np.size(v) == pop.size else v
              for k, v in pop.params.items()}
    cut = {}
    for k in ("v_scale", "v_offset", "profile"):      # per-neuron arrays (profile: i10-lowering)
        v = getattr(pop, k, None)
        if v is not None and np.ndim(v) and np.size(v) == pop.size:
            cut[k] = np.asarray(v).reshape(-1)[mine]
    return pop.with_(shape=shape, params=params, **cut)


# --- the placement of the whole system ----------------------------------------------------

def hop_matrix(target: Target) -> np.ndarray:
    """(chips x chips) links on the shortest path between two chips (breadth first)."""
    n = target.system.chips
    adjacency: dict[int, list[int]] = {c: [] for c in range(n)}
    for a, b in target.system.link_pairs():
        adjacency[a].append(b)
        adjacency[b].append(a)
    hops = np.full((n, n), -1, dtype=np.int64)
    for start in range(n):
        hops[start, start] = 0
        frontier = [start]
        while frontier:
            nxt = []
            for a in frontier:
                for b in sorted(adjacency[a]):
                    if hops[start, b] < 0:
                        hops[start, b] = hops[start, a] + 1
                        nxt.append(b)
            frontier = nxt
    return hops


def route(target: Target, hops: np.ndarray, a: int, b: int) -> list[int]:
    """The path of chips from a to b: at each chip, the lowest-numbered neighbour one hop nearer."""
    adjacency: dict[int, list[int]] = {}
    for x, y in target.system.link_pairs():
        adjacency.setdefault(x, []).append(y)
        adjacency.setdefault(y, []).append(x)
    path = [a]
    while path[-1] != b:
        here = path[-1]
        path.append(min(n for n in adjacency[here] if hops[n, b] == hops[here, b] - 1))
    return path


def _placement(net, conn, target, shares, bound, hops, method, seconds,
               notes, search=None) -> Placement:
    cores_per_chip = target.core_count
    blocks: list[Block] = []
    utilisation: dict[int, dict[str, ResourceUse]] = {}
    sub_notes = []
    chip_rows = []
    for share in shares:
        base = share.chip * cores_per_chip
        for b in share.placement.blocks:
            name = b.population
            neurons = share.neurons[name][b.start:b.stop]
            cuts = np.flatnonzero(np.diff(neurons) != 1) + 1
            for run in np.split(neurons, cuts):
                blocks.append(Block(name, int(run[0]), int(run[-1]) + 1, base + b.core))
        for c, uses in share.placement.utilisation.items():
            utilisation[base + c] = dict(uses)
        sub = share.placement
        chip_rows.append({"chip": share.chip, "cores_used": sub.cores_used,
                          "lower_bound": sub.lower_bound, "gap": round(sub.gap, 6),
                          "solver_status": sub.solver_status,
                          "neurons": int(sum(len(v) for v in share.neurons.values())),
                          "routing_entries": {n: {"used": u.used, "capacity": u.capacity}
                                              for n, u in sub.chip_utilisation.items()}})
        sub_notes += [f"chip {share.chip}: {n}" for n in sub.notes]
    order = {p: i for i, p in enumerate(conn.population_names)}
    blocks.sort(key=lambda b: (order[b.population], b.start))
    core_of_neuron = np.empty(conn.neuron_count, dtype=np.int64)
    for b in blocks:
        base = conn.population_offsets[order[b.population]]
        core_of_neuron[base + b.start: base + b.stop] = b.core
    cores_total = target.chip_count * cores_per_chip
    core_pairs = chip_messages(conn, core_of_neuron, cores_total).tocoo()
    pairs = {(int(a), int(b)): float(m) for a, b, m in zip(core_pairs.row, core_pairs.col,
                                                           core_pairs.data)}
    chip_of_neuron = core_of_neuron // cores_per_chip
    system = system_summary(net, conn, target, chip_of_neuron, hops, bound, shares, chip_rows,
                            method)
    if search is not None:
        system["chip_search"] = search
    input_messages = 0.0
    if conn.input_count:
        pattern = conn.from_inputs.copy()
        pattern.data = np.ones_like(pattern.data)
        reach = sp.csr_array(one_hot(core_of_neuron, cores_total) @ pattern)
        input_messages = float(np.sum(conn.input_rates[reach.indices]))
    cores_used = len(utilisation)
    status = "OPTIMAL" if all(s.placement.solver_status == "OPTIMAL" for s in shares) else \
        ("FEASIBLE" if method == "cpsat" else "SEQUENTIAL")
    core_bound = sum(s.placement.lower_bound for s in shares)
    if system["link_overloads"]:
        notes.append(f"{len(system['link_overloads'])} links carry more messages per step than "
                     f"system.link.messages_per_step (estimated rates)")
    return Placement(
        target=target.name, strategy="system", method=method, blocks=tuple(blocks),
        cores_used=cores_used, lower_bound=core_bound,
        lower_bound_resource=shares[0].placement.lower_bound_resource,
        utilisation=dict(sorted(utilisation.items())), messages=float(sum(pairs.values())),
        messages_by_pair=pairs, input_messages=input_messages, solver_status=status,
        solve_time_s=seconds, notes=tuple(notes + sub_notes), chip_utilisation={},
        system=system)


def system_summary(net, conn, target, chip_of_neuron, hops, bound, shares, chip_rows, method
                   ) -> dict[str, Any]:
    """Chips, links, traffic and inter-chip routes of a placement (JSON-able)."""
    system = target.system
    n = system.chips
    messages = chip_messages(conn, chip_of_neuron, n).tocoo()
    link_traffic = {pair: 0.0 for pair in system.link_pairs()}
    directed: dict[tuple[int, int], float] = {}
    entries: dict[int, set] = {c: set() for c in range(n)}
    routes = []
    # Per (source population, source chip, destination chip): distinct sending neurons.
    pattern = conn.from_neurons.tocoo()
    src = pattern.col.astype(np.int64)
    dst_chip = chip_of_neuron[pattern.row]
    crossing = chip_of_neuron[src] != dst_chip
    key = np.unique(src[crossing] * n + dst_chip[crossing])
    senders, chips_to = key // n, key % n
    population = conn.population_of_neuron()[senders]
    grouped = np.unique(np.column_stack([population, chip_of_neuron[senders], chips_to]), axis=0,
                        return_counts=True)
    for (p, a, b), axons in (zip(*grouped) if len(key) else ()):
        path = route(target, hops, int(a), int(b))
        name = conn.population_names[int(p)]
        routes.append({"source": name, "source_chip": int(a), "target_chip": int(b),
                       "axons": int(axons), "path": path})
        for here, nxt in zip(path[:-1], path[1:]):
            entries[here].add((name, int(a), nxt))
    for a, b, m in zip(messages.row, messages.col, messages.data):
        path = route(target, hops, int(a), int(b))
        for x, y in zip(path[:-1], path[1:]):
            link_traffic[(min(x, y), max(x, y))] += float(m)
            directed[(x, y)] = directed.get((x, y), 0.0) + float(m)
    capacity = system.link.messages_per_step
    overloads = [[x, y, round(m, 6)] for (x, y), m in sorted(directed.items())
                 if capacity is not None and m > capacity]
    used_chips = sorted(s.chip for s in shares)
    routing = {str(c): {"used": len(entries[c]), "capacity": system.routing_entries}
               for c in range(n) if entries[c]}
    for c, use in routing.items():
        if system.routing_entries is not None and use["used"] > system.routing_entries:
            raise FitError(f"chip {c} of {target.name} routes {use['used']} entries of "
                           f"inter-chip traffic but has {system.routing_entries} "
                           f"(system.routing_entries); use fewer, larger layers or a system with "
                           f"larger routing tables")
    return {
        "system": target.name,
        "chip_target": system.chip,
        "chips": n,
        "mesh": list(system.mesh) if system.mesh else None,
        "cores_per_chip": target.core_count,
        "chips_used": len(used_chips),
        "chip_lower_bound": bound.chips,
        "chip_lower_bound_resource": bound.resource,
        "chip_lower_bound_cores": bound.cores,
        "chip_lower_bound_cores_resource": bound.cores_resource,
        "chip_lower_bound_by_resource": dict(bound.chips_by_resource or {}),
        "chip_gap": round((len(used_chips) - bound.chips) / len(used_chips), 6) if used_chips else 0.0,
        "method": method,
        "link_latency_steps": system.link.latency_steps,
        "link_capacity": capacity,
        "chip_rows": chip_rows,
        "inter_chip_messages": float(messages.data.sum()),
        "link_messages": float(sum(link_traffic.values())),
        "messages_by_chip_pair": [[int(a), int(b), float(m)] for a, b, m in
                                  sorted(zip(messages.row.tolist(), messages.col.tolist(),
                                             messages.data.tolist()))],
        "links": [[a, b, round(m, 6)] for (a, b), m in sorted(link_traffic.items())],
        "link_overloads": overloads,
        "routes": routes,
        "inter_chip_routing_entries": routing,
    }
