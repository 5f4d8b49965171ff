"""The CP-SAT model that assigns blocks to cores (neuron_partition strategy).

Two solves, lexicographic: first the fewest cores (skipped when the starting
assignment already meets the lower bound), then, on exactly that many cores,
the fewest messages. Variables, for blocks b, source groups g and cores c:

- x[b,c]: block b sits on core c (exactly one c per b);
- f[g,c]: neurons of group g that send to core c: the sizes of g's atoms
  with a block on c (exact), or for groups with many atoms min(senders_g,
  sum_b feeders[g,b] * x[b,c]) (an upper bound);
- fan-in of c = sum_g f[g,c]; synapse memory of c <= the linear bound of
  SynapseListCost.bound_bits(synapses on c, fan-in of c); fan-out of c = sum over groups placed on c of
  sum_c' f[g,c'];
- messages = sum_g rate_g * (sum_c f[g,c] - f[g, core of g]).

Identical cores are interchangeable, so block b may only use cores 0..b
(cores numbered by their first block). Search is deterministic: a fixed seed,
one thread (several strategies interleaved for the core count), and a
deterministic time limit (CP-SAT's work units, roughly seconds on an idle
machine); a wall-clock limit of ten times that plus 10 s is only a safety
net, and the result notes when it was hit.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from nirc.partition.blocks import ADDITIVE, BlockGraph
from nirc.partition.demand import SynapseListCost

# Above this many block x core pairs the model is not built (the best greedy start is kept).
# Measured on a loaded 2-core machine with 10 deterministic units: examples/cnn.nir (323
# blocks x 38 cores on loihi2) took 4 s to build and 47 s to solve; the 10^6-synapse CNN
# of benchmarks/bench_compile.py (168 x 19) 28 s and 1.4 GB; bench_partition's 'wide'
# (163 x 21) 60 s. In none did CP-SAT beat the greedy start's cores; messages by 0.2 %.
# The smaller bench_partition networks (at most 147 x 9) stay below.
MAX_PAIRS = 2_000
# CP-SAT's portfolio (with LNS) run interleaved in one thread: deterministic, and with a
# complete hint it improved on one worker in benchmarks/bench_partition.py.
INTERLEAVED_WORKERS = 4
# OR-Tools 9.13-9.15 abort the process in interleaved (chunked) multi-worker search on some
# models ("Check failed: heuristics.fixed_search != nullptr", google/or-tools#5025; heap
# corruption, #5048; fixed on their main, not released): one worker does not take that path.
# The system strategy's chip shares solve with it; single-chip placements keep the 4
# interleaved workers (their bytes do not change). Every solve runs in a forked child
# (_Model.solve), so an abort costs that solve, not the compile.
SAFE_WORKERS = 1


@dataclass
class Solve:
    core_of_block: np.ndarray | None
    status: str
    wall_limit_hit: bool
    seconds: float
    note: str = ""


def relabel(core_of_block: np.ndarray) -> np.ndarray:
    """Identical cores renumbered 0.. in order of their first block (canonical, deterministic)."""
    _, first = np.unique(core_of_block, return_index=True)
    order = core_of_block[np.sort(first)]
    mapping = np.empty(int(core_of_block.max()) + 1, dtype=np.int64)
    mapping[order] = np.arange(len(order))
    return mapping[core_of_block]


class _Model:
    def __init__(self, graph: BlockGraph, capacities: dict[str, np.ndarray], uniform: bool,
                 need_traffic: bool, cost: SynapseListCost):
        self.graph = graph
        self.cost = cost
        self.m = m = cp_model.CpModel()
        cores = len(next(iter(capacities.values())))
        self.cores = cores
        blocks = graph.block_count
        self.x = [[m.NewBoolVar(f"x{b}_{c}") if (not uniform or c <= b) else None
                   for c in range(cores)] for b in range(blocks)]
        for b in range(blocks):
            m.AddExactlyOne(v for v in self.x[b] if v is not None)
        self.used = [m.NewBoolVar(f"used{c}") for c in range(cores)]
        for c in range(cores):
            column = [self.x[b][c] for b in range(blocks) if self.x[b][c] is not None]
            for v in column:
                m.AddImplication(v, self.used[c])
            for r in ADDITIVE:
                if r in capacities:
                    m.Add(sum(int(graph.demand[r][b]) * self.x[b][c] for b in range(blocks)
                              if self.x[b][c] is not None) <= int(capacities[r][c]) * self.used[c])
        if uniform:
            for c in range(cores - 1):
                m.AddImplication(self.used[c + 1], self.used[c])

        self.f: dict[tuple[int, int], cp_model.IntVar] = {}
        self.total: dict[int, cp_model.IntVar] = {}
        self.total_max: dict[int, int] = {}
        # Auxiliary variables and how to compute them from an assignment (for complete hints).
        self.aux: list[tuple[cp_model.IntVar, object]] = []
        atoms = graph.atom_blocks.tocsr()
        self._atoms_of_group: dict[int, list[tuple[int, np.ndarray]]] = {}
        for a in range(atoms.shape[0]):
            self._atoms_of_group.setdefault(int(graph.atom_group[a]), []).append(
                (int(graph.atom_size[a]), atoms.indices[atoms.indptr[a]:atoms.indptr[a + 1]]))
        self._feeders = graph.feeders.tocsr()
        self.uniform = uniform
        if "neuron_profiles" in capacities and graph.profiles_of_block is not None:
            self._profiles(capacities["neuron_profiles"])
        if need_traffic or {"fan_in_axons", "fan_out_axons", "synapse_memory_bits"} & set(capacities):
            self._traffic(capacities)

    def _profiles(self, capacity: np.ndarray) -> None:
        """A core holds a profile when any block holding it sits there; at most its capacity."""
        m = self.m
        held = self.graph.profiles_of_block.tocsc()
        for c in range(self.cores):
            terms = []
            for k in range(held.shape[1]):
                blocks = held.indices[held.indptr[k]:held.indptr[k + 1]]
                xs = [self.x[b][c] for b in blocks if self.x[b][c] is not None]
                if not xs:
                    continue
                if len(xs) == 1:
                    terms.append(xs[0])
                    continue
                on = m.NewBoolVar(f"p{k}_{c}")
                for v in xs:
                    m.AddImplication(v, on)
                self.aux.append((on, lambda cob, blocks=blocks, c=c: int(np.any(cob[blocks] == c))))
                terms.append(on)
            if terms:
                m.Add(sum(terms) <= int(capacity[c]))

    def _traffic(self, capacities: dict[str, np.ndarray]) -> None:
        m, g_, cores = self.m, self.graph, self.cores
        sending: dict[tuple[int, int], list] = {}      # (g, c) -> terms summing to f[g,c]
        atoms = g_.atom_blocks.tocsr()
        for a in range(atoms.shape[0]):
            g, size = int(g_.atom_group[a]), int(g_.atom_size[a])
            fed = atoms.indices[atoms.indptr[a]:atoms.indptr[a + 1]]
            for c in range(cores):
                xs = [self.x[b][c] for b in fed if self.x[b][c] is not None]
                if not xs:
                    continue
                if len(xs) == 1:
                    present = xs[0]
                else:
                    present = m.NewBoolVar(f"a{a}_{c}")
                    for v in xs:
                        m.AddImplication(v, present)
                    self.aux.append((present, lambda cob, fed=fed, c=c: int(np.any(cob[fed] == c))))
                sending.setdefault((g, c), []).append(size * present)
        rows = g_.feeders.tocsr()
        for g in np.flatnonzero(~g_.group_exact):
            fed = rows.indices[rows.indptr[g]:rows.indptr[g + 1]]
            amounts = rows.data[rows.indptr[g]:rows.indptr[g + 1]]
            senders = int(g_.group_senders[g])
            for c in range(cores):
                terms = [(int(k), self.x[b][c]) for b, k in zip(fed, amounts) if self.x[b][c] is not None]
                if not terms:
                    continue
                f = m.NewIntVar(0, senders, f"f{g}_{c}")
                m.AddMinEquality(f, [senders, sum(k * v for k, v in terms)])
                sending[int(g), c] = [f]
                self.aux.append((f, lambda cob, g=int(g), c=c: self.sending_value(g, c, cob)))
        for (g, c), terms in sending.items():
            self.f[g, c] = sum(terms)
        for g in sorted({g for g, _ in sending}):
            mine = [self.f[g, c] for c in range(cores) if (g, c) in self.f]
            top = int(g_.group_senders[g]) * len(mine)
            total = m.NewIntVar(0, top, f"t{g}")
            m.Add(total == sum(mine))
            self.aux.append((total, lambda cob, g=g: sum(self.sending_value(g, c, cob) for c in range(cores))))
            self.total[g] = total
            self.total_max[g] = top
        rows_count = g_.feeders.shape[0]
        per_synapse, per_list, scale = self.cost.bound_terms()
        for c in range(cores):
            fan_in = sum(self.f[g, c] for g in range(rows_count) if (g, c) in self.f)
            if "fan_in_axons" in capacities:
                m.Add(fan_in <= int(capacities["fan_in_axons"][c]))
            if "synapse_memory_bits" in capacities:
                synapses = sum(int(g_.demand["synapses"][b]) * self.x[b][c]
                               for b in range(g_.block_count) if self.x[b][c] is not None)
                m.Add(per_synapse * synapses + per_list * fan_in
                      <= scale * int(capacities["synapse_memory_bits"][c]))
        if "fan_out_axons" in capacities:
            for c in range(cores):
                terms = []
                for b in range(g_.block_count):
                    if b not in self.total or self.x[b][c] is None:
                        continue
                    w = m.NewIntVar(0, self.total_max[b], f"w{b}_{c}")
                    m.Add(w >= self.total[b]).OnlyEnforceIf(self.x[b][c])
                    self.aux.append((w, lambda cob, b=b, c=c: 0 if cob[b] != c else
                                     sum(self.sending_value(b, d, cob) for d in range(cores))))
                    terms.append(w)
                if terms:
                    m.Add(sum(terms) <= int(capacities["fan_out_axons"][c]))

    def message_objective(self) -> None:
        m, g_ = self.m, self.graph
        rates = g_.group_rate
        top = float(rates.max()) if len(rates) else 0.0
        equal = top > 0 and np.allclose(rates[rates > 0], top)
        weight = np.where(rates > 0, 1 if equal else np.maximum(1, np.round(1000 * rates / max(top, 1e-12))), 0)
        terms = []
        for g, total in self.total.items():
            wg = int(weight[g])
            if wg == 0:
                continue
            terms.append(wg * total)
            if g < g_.block_count:          # spikes staying on the group's own core are free
                for c in range(self.cores):
                    if (g, c) in self.f and self.x[g][c] is not None:
                        local = m.NewIntVar(0, int(g_.group_senders[g]), f"l{g}_{c}")
                        self.aux.append((local, lambda cob, g=g, c=c: 0 if cob[g] != c else
                                         self.sending_value(g, c, cob)))
                        m.Add(local <= self.f[g, c])
                        m.Add(local <= int(g_.group_senders[g]) * self.x[g][c])
                        terms.append(-wg * local)
        m.Minimize(sum(terms))

    def sending_value(self, g: int, c: int, cob: np.ndarray) -> int:
        """Neurons of group g sending to core c under assignment ``cob``, as the model counts them."""
        if self.graph.group_exact[g]:
            return sum(size for size, fed in self._atoms_of_group.get(g, ()) if np.any(cob[fed] == c))
        rows = self._feeders
        fed = rows.indices[rows.indptr[g]:rows.indptr[g + 1]]
        amounts = rows.data[rows.indptr[g]:rows.indptr[g + 1]]
        return int(min(self.graph.group_senders[g], int(amounts[cob[fed] == c].sum())))

    def hint(self, core_of_block: np.ndarray) -> None:
        for b, core in enumerate(core_of_block):
            for c in range(self.cores):
                if self.x[b][c] is not None:
                    self.m.AddHint(self.x[b][c], int(c == core))
        in_use = set(core_of_block.tolist())
        for c in range(self.cores):
            self.m.AddHint(self.used[c], int(c in in_use))
        for var, value in self.aux:
            self.m.AddHint(var, int(value(core_of_block)))

    def solve(self, time_limit_s: float, seed: int, workers: int = 1) -> Solve:
        """Solve in a forked child (where the platform forks): an abort inside OR-Tools
        costs this solve, not the compile. A child that dies is retried on one worker; if
        that dies too, no assignment is returned (the caller keeps its start), with a note."""
        if _FORK is None:
            return self._solve(time_limit_s, seed, workers)
        done = _in_child(lambda: self._solve(time_limit_s, seed, workers))
        if done is not None:
            return done
        aborted = (f"the {workers}-worker search aborted in OR-Tools (google/or-tools#5025)")
        if workers > SAFE_WORKERS:
            again = _in_child(lambda: self._solve(time_limit_s, seed, SAFE_WORKERS))
            if again is not None:
                return dataclasses.replace(again, note=f"{aborted}; solved on one worker")
        return Solve(None, "ABORTED", False, 0.0, note=f"{aborted}; kept the start")

    def _solve(self, time_limit_s: float, seed: int, workers: int) -> Solve:
        solver = cp_model.CpSolver()
        p = solver.parameters
        p.num_workers = workers
        p.interleave_search = workers > 1     # several strategies, still deterministic
        p.random_seed = seed
        p.max_deterministic_time = time_limit_s
        p.max_time_in_seconds = 10 * time_limit_s + 10
        status = solver.Solve(self.m)
        name = solver.StatusName(status)
        wall_hit = solver.WallTime() >= p.max_time_in_seconds * 0.99
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return Solve(None, name, wall_hit, solver.WallTime())
        out = np.array([next(c for c in range(self.cores) if self.x[b][c] is not None
                             and solver.BooleanValue(self.x[b][c]))
                        for b in range(self.graph.block_count)], dtype=np.int64)
        return Solve(relabel(out) if self.uniform else out, name, wall_hit, solver.WallTime())


try:
    _FORK = multiprocessing.get_context("fork")
except ValueError:                      # no fork (Windows): solve in-process
    _FORK = None


def _in_child(solve) -> Solve | None:
    """``solve()`` in a forked child; None when the child died without an answer."""
    receive, send = _FORK.Pipe(duplex=False)

    def child():
        send.send(solve())
        send.close()

    process = _FORK.Process(target=child, daemon=True)
    process.start()
    send.close()
    try:
        result = receive.recv()
    except EOFError:
        result = None
    process.join()
    return result


def fewest_cores(graph: BlockGraph, capacities: dict[str, np.ndarray], cost: SynapseListCost,
                 uniform: bool, lower_bound: int, start: np.ndarray | None, time_limit_s: float,
                 seed: int, workers: int = INTERLEAVED_WORKERS) -> Solve:
    model = _Model(graph, capacities, uniform, need_traffic=False, cost=cost)
    model.m.Add(sum(model.used) >= lower_bound)
    model.m.Minimize(sum(model.used))
    if start is not None:
        model.hint(start)
    return model.solve(time_limit_s, seed, workers=workers)


def fewest_messages(graph: BlockGraph, capacities: dict[str, np.ndarray], cost: SynapseListCost,
                    uniform: bool, start: np.ndarray | None, time_limit_s: float, seed: int,
                    workers: int = INTERLEAVED_WORKERS) -> Solve:
    model = _Model(graph, capacities, uniform, need_traffic=True, cost=cost)
    model.message_objective()
    if start is not None:
        model.hint(start)
    return model.solve(time_limit_s, seed, workers=workers)
