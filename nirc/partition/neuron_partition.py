"""The neuron_partition strategy: populations cut into blocks, blocks packed onto cores.

Steps: flatten the network (connectivity), cut populations into blocks
(blocks: convolutional layers into spatial tiles of all channels), bound the
cores needed from below (lower_bound), fill cores greedily (packing: the
sequential fill in network order is the baseline; the best of several fills
is CP-SAT's starting point), improve with CP-SAT (cpsat) when the model is
small enough to pay (cpsat.MAX_PAIRS), then count what every core really uses
at neuron level (demand) for the Placement.
"""

from __future__ import annotations

import time

import numpy as np

from nirc.hwnet import HardwareNetwork
from nirc.partition import cpsat, explain
from nirc.partition.blocks import BlockGraph, coarsen, spatial_order
from nirc.partition.connectivity import Connectivity, Rates
from nirc.partition.demand import SynapseListCost, core_traffic, group_demand
from nirc.partition.lower_bound import LowerBound, lower_bound_cores
from nirc.partition.packing import Overflow, affinity_fill, check_assignment, sequential_fill
from nirc.placement import Block, Placement, ResourceUse
from nirc.target import CHIP_RESOURCES, RESOURCES, PartitionerSettings, Target

RESOURCE_ORDER = ("neurons", "synapses", "synapse_memory_bits", "fan_in_axons", "fan_out_axons",
                  "neuron_profiles")
METHODS = ("cpsat", "sequential")
UNBOUNDED = np.iinfo(np.int64).max // 4
# Models too large for CP-SAT are cut into at least this many blocks per core of the lower
# bound (10^7-synapse CNN of bench_compile, LB 200: 282 blocks filled 276 cores to 73 %;
# 4 per core: 217 cores, 8: 212 cores in 1.7 s).
GREEDY_BLOCKS_PER_CORE = 8
# The affinity fills score every open core for every block; above this many blocks x cores
# (lower bound) only the sequential fills run.
AFFINITY_MAX_PAIRS = 40_000
# The system strategy's shares (blocks_by_fill): fills in spatial order also top up the last
# cores they left (packing.sequential_fill's window): the 10^7-synapse CNN on
# spinnaker2_board, whole system filled, 343 cores -> 326 (memory filled 92 % -> 96 %).
FILL_WINDOW = 4


def fill_window(conn) -> int:
    """The window of the system strategy's spatial fills: FILL_WINDOW where the network has
    feature maps (their split positions leave cores part-filled), else 1. On flat layers
    the top-up saved no chip and 4 of 3934 cores on the 10^8-synapse sheet, and doubled its
    partition time (97 -> 189 s)."""
    return FILL_WINDOW if any(len(shape) == 3 for shape in conn.shapes.values()) else 1
# Each further greedy fill costs a pass over every block (about 0.1 ms each): a graph of
# more populations than this keeps the sequential fill in network order when it fits (a
# deep graph's network order is its depth, where its traffic is local), as a 10^5-node
# chain's 50,000 layers would spend a minute in the other fills (a 10^4-node chain's 5,000:
# 4 of its 5 CPU s of placement).
ONE_FILL_POPULATIONS = 2_000


def core_capacities(target: Target) -> dict[str, np.ndarray]:
    """Per bounded resource, the capacity of every core (unbounded cores get a huge number)."""
    per_core = [target.limits_of(c) for c in range(target.core_count)]
    names = [r for r in RESOURCE_ORDER if any(r in limits for limits in per_core)]
    return {r: np.array([limits.get(r, UNBOUNDED) for limits in per_core], dtype=np.int64) for r in names}


def neuron_partition(net: HardwareNetwork, target: Target, *, method: str = "cpsat",
                     rates: Rates | None = None, time_limit_s: float | None = None,
                     seed: int | None = None, improve: bool = True,
                     cpsat_workers: int = cpsat.INTERLEAVED_WORKERS,
                     settings: PartitionerSettings | None = None,
                     blocks_by_fill: bool = False) -> Placement:
    """``improve=False``: the best greedy start without CP-SAT; ``cpsat_workers``: CP-SAT's
    search workers (cpsat.SAFE_WORKERS for the system strategy's chip shares); ``settings``:
    instead of ``target.partitioner`` (the system strategy's shares coarsen by core count).
    ``blocks_by_fill`` (the system strategy's shares): blocks are sized by the cores the
    sequential fill really uses, not only by the bound (refine_by_fill), and the affinity
    fills run only while blocks x those cores stay within AFFINITY_MAX_PAIRS; a deep
    layer's positions are split across channels rather than its channels into bands
    (blocks.coarsen's split_positions), and the spatial fills top up the cores they
    left (FILL_WINDOW)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    settings = target.partitioner if settings is None else settings
    time_limit_s = settings.time_limit_s if time_limit_s is None else time_limit_s
    seed = settings.seed if seed is None else seed
    started = time.perf_counter()
    cost = SynapseListCost.of(target)
    conn = Connectivity.from_hwnet(net, rates)
    capacities = core_capacities(target)
    uniform = target.cores.uniform
    largest = {r: int(c.max()) for r, c in capacities.items()}

    bound, _ = lower_bound_cores(conn, cost, capacities)
    max_blocks = settings.max_blocks
    if max_blocks * bound.cores > cpsat.MAX_PAIRS:
        # CP-SAT will not run, so blocks only have to suit the greedy fills: a few per core.
        max_blocks = max(max_blocks, GREEDY_BLOCKS_PER_CORE * bound.cores)
    graph = coarsen(conn, cost, largest, max_blocks=max_blocks, tiled=True,
                    block_size=settings.block_size, target_name=target.name,
                    split_positions=blocks_by_fill)
    if bound.cores > target.core_count:
        raise _too_few_cores(bound, capacities, conn, graph, target)

    start, problem = sequential_fill(graph, capacities, cost)
    notes: list[str] = []
    cores_filled = bound.cores
    if blocks_by_fill:
        graph, start, problem, cores_filled = _refine_by_fill(
            graph, start, problem, conn, cost, largest, capacities, bound, max_blocks, settings,
            target, notes)
    notes.insert(0, f"{graph.block_count} blocks")
    status = "SEQUENTIAL"
    if method == "sequential":
        if problem is not None:      # reserving fan-out for spread targets can run out of cores
            retry, retry_problem = sequential_fill(graph, capacities, cost, optimistic=True)
            if retry_problem is None:
                start, problem = retry, None
                notes.append("sequential fill with optimistic fan-out reservations")
        if problem is not None:
            raise _no_placement(problem, start, graph, conn, target, None)
        assignment = cpsat.relabel(start) if uniform else start
    else:
        if problem is None and len(conn.population_names) > ONE_FILL_POPULATIONS:
            notes.append(f"start: sequential fill (no other fills tried: more than "
                         f"{ONE_FILL_POPULATIONS:,} populations)")
        else:
            start, problem = _better_start(graph, capacities, cost, conn, start, problem, notes,
                                           affinity=graph.block_count * cores_filled
                                           <= AFFINITY_MAX_PAIRS,
                                           window=fill_window(conn) if blocks_by_fill else 1)
        if not improve:
            if problem is not None:
                raise _no_placement(problem, start, graph, conn, target, None)
            assignment, status = (cpsat.relabel(start) if uniform else start), "GREEDY"
        else:
            assignment, status = _improve(graph, conn, capacities, cost, uniform, bound, start, problem,
                                          time_limit_s, seed, notes, cpsat_workers)
        if assignment is None:
            raise _no_placement(problem, start, graph, conn, target, time_limit_s)
    # A greedy fill placed every block through the exact check already (with reserves on
    # top); only an assignment from elsewhere (CP-SAT, a relabelling) is checked again.
    broken = None if np.array_equal(assignment, start) and problem is None else \
        check_assignment(graph, capacities, cost, assignment)
    if broken is not None:
        raise AssertionError(f"partitioner produced an assignment breaking {broken}")
    placement = _placement(net, target, conn, cost, graph, assignment, bound, method,
                           status, time.perf_counter() - started, notes)
    for resource, use in placement.chip_utilisation.items():
        if use.capacity is not None and use.used > use.capacity:
            raise explain.chip_overflow(resource, use.used, use.capacity, target.name,
                                        placement.cores_used,
                                        _largest_chip_demand(net, placement, conn, graph,
                                                             resource))
    return placement


# refine_by_fill: a fill using this many times the bound's cores re-cuts the blocks finer.
REFINE_ABOVE_BOUND = 1.25


def _refine_by_fill(graph, start, problem, conn, cost, largest, capacities, bound, max_blocks,
                    settings, target, notes):
    """Blocks re-cut for the cores the sequential fill really used, when that is well above
    the bound (synapse rows nobody shares fill a core's memory long before its neurons: a
    uniformly random layer's PE holds ~80 neurons where the bound counts 256): the blocks
    were sized for the bound's cores, so each core's last block leaves much of it empty.
    A fill that ran out of cores counts the cores it would have used at its rate.
    Returns (graph, start, problem, cores), the finer cut only if it fills fewer cores
    (or fits where the first did not)."""
    if problem is None:
        cores = _cores(start)
    else:
        placed = graph.demand["neurons"][start >= 0].sum() if "neurons" in graph.demand else 0
        total = max(1, int(graph.demand["neurons"].sum())) if "neurons" in graph.demand else 1
        cores = int(np.ceil(len(next(iter(capacities.values()))) * total / max(placed, 1)))
    if cores <= REFINE_ABOVE_BOUND * bound.cores or settings.block_size is not None:
        return graph, start, problem, cores
    finer = coarsen(conn, cost, largest, max_blocks=max(max_blocks, GREEDY_BLOCKS_PER_CORE * cores),
                    tiled=True, block_size=None, target_name=target.name, split_positions=True)
    if finer.block_count <= graph.block_count:
        return graph, start, problem, cores
    refilled, refill_problem = sequential_fill(finer, capacities, cost)
    if refill_problem is not None or (problem is None and _cores(refilled) >= cores):
        return graph, start, problem, cores
    notes.append(f"blocks re-cut for the {cores} cores the fill used (bound {bound.cores}): "
                 f"{_cores(refilled)} cores")
    return finer, refilled, None, _cores(refilled)


def routing_entries(net: HardwareNetwork, blocks: tuple[Block, ...]) -> int:
    """Routing-table entries of a placement, with population-based multicast routing.

    Each (population, core) whose neurons feed some table sends spikes under one
    key range, so it takes one entry in the chip's router; each network input is
    injected under one key range of its own.
    """
    sending = {t.source for t in net.tables}
    placed = {(b.population, b.core) for b in blocks if b.population in sending}
    return len(placed) + len(sending & set(net.inputs))


def _improve(graph: BlockGraph, conn: Connectivity, capacities: dict[str, np.ndarray],
             cost: SynapseListCost, uniform: bool, bound: LowerBound,
             start: np.ndarray, problem: Overflow | None, time_limit_s: float, seed: int,
             notes: list[str], workers: int = cpsat.INTERLEAVED_WORKERS
             ) -> tuple[np.ndarray | None, str]:
    """CP-SAT from the best greedy start: fewest cores, then fewest messages on those cores.

    The time budget is split in deterministic time (half for each phase when both
    run), never by wall time, so the result does not depend on the machine's load.
    A CP-SAT result replaces the start only if it is no worse counted exactly
    (fewer cores, or as many cores and no more messages): CP-SAT enforces the
    linear memory bound, so an exact greedy start can be no feasible hint for it.
    """
    best = None if problem is not None else start
    cores_now = int(best.max()) + 1 if best is not None else len(next(iter(capacities.values())))
    if graph.block_count * cores_now > cpsat.MAX_PAIRS:
        notes.append(f"model too large for CP-SAT ({graph.block_count} blocks x {cores_now} cores); "
                     f"kept the start")
        return best, "SEQUENTIAL"
    statuses = []
    budget = time_limit_s
    if best is None or cores_now > bound.cores:
        caps = _first(capacities, cores_now) if uniform else capacities
        phase = cpsat.fewest_cores(graph, caps, cost, uniform, bound.cores, best, budget / 2, seed,
                                   workers)
        statuses.append(phase.status)
        notes.append(f"fewest cores: {phase.status}" + (f" ({phase.note})" if phase.note else ""))
        if phase.wall_limit_hit:
            notes.append("fewest cores: wall-clock limit hit, result may vary between runs")
        budget -= budget / 2
        if phase.core_of_block is not None and (best is None or _cores(phase.core_of_block) < _cores(best)):
            best = phase.core_of_block
    else:
        notes.append("fewest cores: the start meets the lower bound")
    if best is None:
        return None, statuses[-1] if statuses else "INFEASIBLE"
    used = _cores(best)
    caps = _first(capacities, used) if uniform else capacities
    phase = cpsat.fewest_messages(graph, caps, cost, uniform, cpsat.relabel(best) if uniform else best,
                                  max(budget, 0.1), seed, workers)
    statuses.append(phase.status)
    notes.append(f"fewest messages: {phase.status}" + (f" ({phase.note})" if phase.note else ""))
    if phase.wall_limit_hit:
        notes.append("fewest messages: wall-clock limit hit, result may vary between runs")
    if uniform:
        best = cpsat.relabel(best)
    if phase.core_of_block is not None:
        if _messages(conn, graph, cost, phase.core_of_block) <= _messages(conn, graph, cost, best):
            best = phase.core_of_block
        else:
            notes.append("fewest messages: worse than the start counted exactly, kept the start")
            statuses[-1] = "FEASIBLE"
    if used == bound.cores and statuses[-1] == "OPTIMAL":
        return best, "OPTIMAL"
    return best, "OPTIMAL" if all(s == "OPTIMAL" for s in statuses) else "FEASIBLE"


def _better_start(graph, capacities, cost, conn, start, problem, notes, affinity=True,
                  window=1):
    """The best of several greedy fills: fewest cores, then fewest messages.

    Candidates: the sequential fill (given), and the sequential and (if
    ``affinity``) affinity fills in network order and in spatial order
    (blocks.spatial_order), each reserving fan-out for the cores targets will
    likely span or, optimistically, for one core (raised where a core overflows);
    with ``window`` > 1 also the sequential fills in spatial order that top up
    the last ``window`` cores (packing.sequential_fill).
    """
    spatial = spatial_order(conn, graph)
    candidates = [("sequential fill", start, problem)]
    for optimistic in (False, True):
        how = ", optimistic fan-out" if optimistic else ""
        candidates.append((f"sequential fill in spatial order{how}",
                           *sequential_fill(graph, capacities, cost, spatial, optimistic)))
        if window > 1:
            candidates.append((f"sequential fill in spatial order topping up {window} cores{how}",
                               *sequential_fill(graph, capacities, cost, spatial, optimistic,
                                                window)))
        if affinity:
            candidates += [
                (f"affinity fill{how}", *affinity_fill(graph, capacities, cost, None, optimistic)),
                (f"affinity fill in spatial order{how}",
                 *affinity_fill(graph, capacities, cost, spatial, optimistic))]
    candidates.append(("sequential fill, optimistic fan-out",
                       *sequential_fill(graph, capacities, cost, None, True)))
    feasible = [(_cores(a), _messages(conn, graph, cost, a), k, name, a)
                for k, (name, a, p) in enumerate(candidates) if p is None]
    if not feasible:
        return start, problem
    *_, name, best = min(feasible, key=lambda f: f[:3])
    notes.append(f"start: {name}")
    return best, None


def _messages(conn: Connectivity, graph: BlockGraph, cost: SynapseListCost,
              core_of_block: np.ndarray) -> float:
    """Messages per step of an assignment, counted exactly at neuron level."""
    cores = int(core_of_block.max()) + 1
    core_of_neuron = core_of_block[graph.block_of_neuron]
    demand = group_demand(conn, core_of_neuron, cores, cost)
    traffic = core_traffic(conn, core_of_neuron, cores, demand)
    return float(traffic.messages_by_pair.sum()) + traffic.input_messages


def _cores(core_of_block: np.ndarray) -> int:
    return len(np.unique(core_of_block))


def _first(capacities: dict[str, np.ndarray], cores: int) -> dict[str, np.ndarray]:
    return {r: c[:cores] for r, c in capacities.items()}


def _placement(net: HardwareNetwork, target: Target, conn: Connectivity, cost: SynapseListCost,
               graph: BlockGraph, core_of_block: np.ndarray, bound: LowerBound,
               method: str, status: str, seconds: float,
               notes: list[str]) -> Placement:
    cores = int(core_of_block.max()) + 1 if len(core_of_block) else 0
    core_of_neuron = core_of_block[graph.block_of_neuron]
    demand = group_demand(conn, core_of_neuron, cores, cost)
    traffic = core_traffic(conn, core_of_neuron, cores, demand)
    used = {
        "neurons": demand.neurons,
        "synapses": demand.synapses,
        "synapse_memory_bits": demand.synapse_memory_bits,
        "fan_in_axons": demand.fan_in_axons,
        "fan_out_axons": traffic.fan_out_axons,
        "neuron_profiles": _profiles_per_core(conn, core_of_neuron, cores),
    }
    utilisation = {}
    for c in np.unique(core_of_block).tolist():     # cores in use (physical ids on mixed chips)
        limits = target.limits_of(c)
        # Neuron profiles are reported where the chip bounds them (the others always).
        utilisation[c] = {r: ResourceUse(int(used[r][c]), limits.get(r), RESOURCES[r].unit)
                          for r in RESOURCE_ORDER if r != "neuron_profiles" or r in limits}
    pairs = {(int(a), int(b)): float(traffic.messages_by_pair[a, b])
             for a, b in zip(*np.nonzero(traffic.messages_by_pair))}
    order = {p: i for i, p in enumerate(conn.population_names)}
    blocks = tuple(sorted((Block(s.population, a, b, int(core_of_block[k]))
                           for k, s in enumerate(graph.blocks) for a, b in s.ranges()),
                          key=lambda b: (order[b.population], b.start)))
    chip_limits = target.chip.named()
    chip_utilisation = {
        "routing_entries": ResourceUse(routing_entries(net, blocks),
                                       chip_limits.get("routing_entries"),
                                       CHIP_RESOURCES["routing_entries"].unit)}
    return Placement(
        target=target.name, strategy="neuron_partition", method=method, blocks=blocks,
        cores_used=len(np.unique(core_of_block)), lower_bound=bound.cores,
        lower_bound_resource=bound.resource, utilisation=utilisation,
        messages=float(traffic.messages_by_pair.sum()), messages_by_pair=pairs,
        input_messages=traffic.input_messages, solver_status=status, solve_time_s=seconds,
        notes=tuple(notes), chip_utilisation=chip_utilisation)


def _profiles_per_core(conn: Connectivity, core_of_neuron: np.ndarray, cores: int) -> np.ndarray:
    """Distinct neuron profiles on each core."""
    if conn.profile_of_neuron is None or core_of_neuron.size == 0:
        return np.zeros(cores, dtype=np.int64)
    pairs = np.unique(np.stack([core_of_neuron, conn.profile_of_neuron]), axis=1)
    return np.bincount(pairs[0], minlength=cores).astype(np.int64)


def _largest_population(conn: Connectivity, graph: BlockGraph, resource: str):
    """(name, provenance, demand) of the population demanding most of an additive resource."""
    if resource not in graph.demand:
        return None
    population = np.array([b.population for b in graph.blocks])
    per_pop = {p: int(graph.demand[resource][population == p].sum()) for p in conn.population_names}
    name = max(conn.population_names, key=lambda p: per_pop[p])   # first of equals, network order
    return name, conn.provenance.get(name, ()), per_pop[name]


def _largest_chip_demand(net: HardwareNetwork, placement, conn: Connectivity,
                         graph: BlockGraph, resource: str):
    """(name, provenance, demand) of the population taking most of a chip-wide resource."""
    if resource == "routing_entries":
        sending = {t.source for t in net.tables}
        cores: dict[str, set] = {}
        for b in placement.blocks:
            if b.population in sending:
                cores.setdefault(b.population, set()).add(b.core)
        if not cores:
            return None
        name = max(cores, key=lambda p: len(cores[p]))
        return name, conn.provenance.get(name, ()), len(cores[name])
    return _largest_population(conn, graph, resource)


def _too_few_cores(bound: LowerBound, capacities, conn, graph, target: Target):
    r = bound.resource
    return explain.too_few_cores(r, bound.demand[r], int(capacities[r].sum()), target.core_count,
                                 target.name, _largest_population(conn, graph, r))


def _no_placement(problem: Overflow | None, start: np.ndarray, graph: BlockGraph, conn: Connectivity,
                  target: Target, time_limit_s: float | None):
    unplaced = np.flatnonzero(start < 0)
    block = graph.blocks[int(unplaced[0])] if len(unplaced) else graph.blocks[-1]
    resource = problem.resource if problem else "neurons"
    demand = problem.demand if problem else 0
    capacity = problem.capacity if problem else 0
    return explain.no_placement(resource, block.population, conn.provenance.get(block.population, ()),
                                demand, capacity, target.core_count, target.name, time_limit_s)
