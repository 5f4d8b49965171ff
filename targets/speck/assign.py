"""Layer -> core assignment for Speck with OR-Tools CP-SAT, and why-not explanations.

Each convolutional layer occupies one core whole; a layer may go to a core only
if its kernel, neuron and bias memories all fit there. sinabs finds *a* matching
with Edmonds-Karp max-flow (``get_valid_mapping``); nirc solves the same
matching with CP-SAT and, among the valid ones, prefers the assignment that
uses the smallest cores, so the largest cores stay free for layers added later.
The solver has a time limit and a fixed seed; the objective is deterministic.

When no assignment exists, the FitError names the layer that cannot be placed,
the memory kind it exceeds, its demand against the best free core, and a
concrete change that would make it fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ortools.sat.python import cp_model

from nirc.errors import FitError
from nirc.targets.speck.chip import CoreMemory
from nirc.targets.speck.memory import (KIND_NAMES, LayerGeometry, MemoryDemand, ceil_log2,
                                       memory_demand, words)


@dataclass(frozen=True)
class LayerToPlace:
    """One convolutional layer and the memory it needs."""

    name: str
    geometry: LayerGeometry
    demand: MemoryDemand

    @classmethod
    def of(cls, name: str, geometry: LayerGeometry) -> "LayerToPlace":
        return cls(name, geometry, memory_demand(geometry))


@dataclass(frozen=True)
class CoreAssignment:
    """Which core each layer sits on, and how full each used core is."""

    core_of: dict[str, int]
    utilisation: dict[int, dict[str, float]]      # core -> kind -> demand / capacity
    objective: int
    optimal: bool


def fits(demand: MemoryDemand, core: CoreMemory) -> bool:
    return all(demand.get(kind) <= core.get(kind) for kind in KIND_NAMES)


def core_cost(core: CoreMemory) -> int:
    """Bigger cores cost more (words of memory, in units of 1Ki), so the solver leaves them free."""
    return -(-(core.kernel + core.neuron + core.bias) // 1024)


def canonical_order(solution: dict[str, int], layers: Sequence[LayerToPlace],
                    cores: Sequence[CoreMemory]) -> dict[str, int]:
    """Cores with identical memories are interchangeable: hand them to layers in network order."""
    index = {l.name: i for i, l in enumerate(layers)}
    groups: dict[tuple[int, int, int], list[str]] = {}
    for name, c in solution.items():
        core = cores[c]
        groups.setdefault((core.kernel, core.neuron, core.bias), []).append(name)
    out = {}
    for names in groups.values():
        ids = sorted(solution[n] for n in names)
        for name, c in zip(sorted(names, key=index.__getitem__), ids):
            out[name] = c
    return {l.name: out[l.name] for l in layers if l.name in out}


def assign_layers(layers: Sequence[LayerToPlace], cores: Sequence[CoreMemory], *,
                  time_limit_s: float = 10.0, seed: int = 0) -> CoreAssignment:
    """Place every layer on its own core, or raise FitError explaining what does not fit."""
    if len(layers) > len(cores):
        extra = ", ".join(f"'{l.name}'" for l in layers[len(cores):])
        raise FitError(f"the network needs {len(layers)} convolutional cores but the chip has "
                       f"{len(cores)}; layers beyond the last core: {extra}. Merge layers or "
                       f"remove {len(layers) - len(cores)} layer(s)",
                       node=layers[len(cores)].name)
    for layer in layers:
        if not any(fits(layer.demand, core) for core in cores):
            raise FitError(explain_misfit(layer, cores), node=layer.name)
    placed, solution = _solve(layers, cores, time_limit_s, seed, require_all=True)
    if solution is None:
        placed, partial = _solve(layers, cores, time_limit_s, seed, require_all=False)
        used = set(partial.values()) if partial else set()
        unplaced = [l for l in layers if partial is None or l.name not in partial]
        free = [c for c in cores if c.id not in used]
        layer = unplaced[0]
        holders = ", ".join(f"core {c.id} holds '{n}'" for n, c in
                            sorted(((n, cores[i]) for n, i in (partial or {}).items()),
                                   key=lambda item: item[1].id)
                            if fits(layer.demand, c))
        raise FitError(explain_misfit(layer, free, competing=holders), node=layer.name)
    status_optimal, objective = placed
    util = {core: {kind: (next(l for l in layers if l.name == name).demand.get(kind)
                          / cores[core].get(kind)) for kind in KIND_NAMES}
            for name, core in solution.items()}
    return CoreAssignment(core_of=dict(solution), utilisation=util, objective=objective,
                          optimal=status_optimal)


def _solve(layers, cores, time_limit_s, seed, require_all):
    model = cp_model.CpModel()
    x = {}
    for li, layer in enumerate(layers):
        for core in cores:
            if fits(layer.demand, core):
                x[li, core.id] = model.new_bool_var(f"x_{li}_{core.id}")
    for li in range(len(layers)):
        choices = [v for (l, _), v in x.items() if l == li]
        if require_all:
            model.add_exactly_one(choices)
        else:
            model.add_at_most_one(choices)
    for core in cores:
        model.add_at_most_one([v for (_, c), v in x.items() if c == core.id])
    costs = {(l, c): core_cost(cores[c]) for (l, c) in x}
    cost = sum(costs[key] * v for key, v in x.items())
    if require_all:
        model.minimize(cost)
    else:      # place as many layers as possible first, then the cheapest way
        big = sum(costs.values()) + 1
        model.minimize(cost - big * sum(x.values()))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.random_seed = seed
    solver.parameters.num_workers = 1     # one worker: reproducible, and the model is tiny
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, None
    solution = canonical_order({layers[l].name: c for (l, c), v in x.items() if solver.value(v)},
                               layers, cores)
    return (status == cp_model.OPTIMAL, int(solver.objective_value)), solution


def explain_misfit(layer: LayerToPlace, cores: Sequence[CoreMemory], competing: str = "") -> str:
    """One line: which memory the layer exceeds on the nearest-fitting core, and how to fix it."""
    if not cores:
        return ("layer needs a core but all are taken"
                + (f" ({competing})" if competing else ""))

    def excess(core: CoreMemory) -> float:
        return sum(max(0, layer.demand.get(k) - core.get(k)) / core.get(k)
                   for k in KIND_NAMES if core.get(k))

    best = min(cores, key=lambda c: (excess(c), -c.kernel - c.neuron, c.id))
    over = [k for k in KIND_NAMES if layer.demand.get(k) > best.get(k)]
    parts = [f"{kind} memory {words(layer.demand.get(kind))} exceeds the "
             f"{words(best.get(kind))} of core {best.id} by {words(layer.demand.get(kind) - best.get(kind))}"
             for kind in over]
    which = "the best free core" if competing else "the best-fitting core"
    largest = {k: max(c.get(k) for c in cores) for k in KIND_NAMES}
    alone = [k for k in over if layer.demand.get(k) > largest[k]]
    head = (f"does not fit: {'; '.join(parts)} ({which}; largest "
            + ", ".join(f"{k} memory {words(largest[k])}" for k in ("kernel", "neuron")) + ")")
    if competing:
        head += f"; cores it would fit are taken ({competing})"
    elif not alone:
        head += ("; no single core has enough of every memory at once "
                 f"(needs kernel {words(layer.demand.kernel)} and neuron {words(layer.demand.neuron)})")
    hints = suggestions(layer.geometry, best, over)
    return head + (". To fit: " + "; or ".join(hints) if hints else "")


def suggestions(g: LayerGeometry, core: CoreMemory, kinds: Sequence[str]) -> list[str]:
    """Alternative changes, each of which alone brings layer ``g`` within ``core``'s memories."""
    kernel_slots = 2 ** ceil_log2(g.kernel * g.kernel)
    out_slots = 2 ** (ceil_log2(g.h_out) + ceil_log2(g.w_out))
    fixes: dict[str, list[str]] = {}
    c_out_max = g.c_out        # fewer output channels shrinks every memory at once
    if "kernel" in kinds:
        c_out_max = min(c_out_max, _pow2_floor(core.kernel // (g.c_in * kernel_slots)))
        options = []
        c_in_max = core.kernel // (kernel_slots * 2 ** ceil_log2(g.c_out))
        if 0 < c_in_max < g.c_in:
            options.append(f"at most {c_in_max} input channels (now {g.c_in})")
        k = next((k for k in range(g.kernel - 1, 0, -1)
                  if g.c_in * 2 ** (ceil_log2(k * k) + ceil_log2(g.c_out)) <= core.kernel), None)
        if k is not None:
            options.append(f"a {k}x{k} kernel (now {g.kernel}x{g.kernel})")
        fixes["kernel"] = options
    if "neuron" in kinds:
        c_out_max = min(c_out_max, core.neuron // out_slots)
        options = []
        for f in (2, 4, 8):
            h, w = -(-g.h_out // f), -(-g.w_out // f)
            if g.c_out * 2 ** (ceil_log2(h) + ceil_log2(w)) <= core.neuron:
                options.append(f"pool {f}x{f} earlier or use stride {f * g.stride[0]} so the "
                               f"output map shrinks from {g.h_out}x{g.w_out} to {h}x{w}")
                break
        fixes["neuron"] = options
    if "bias" in kinds:
        c_out_max = min(c_out_max, core.bias)
        fixes["bias"] = []
    hints = []
    if 0 < c_out_max < g.c_out:
        hints.append(f"at most {c_out_max} output channels (now {g.c_out})")
    if all(fixes.values()):
        # One change per exceeded memory, combined.
        groups = [" or ".join(options) for options in fixes.values()]
        if len(groups) > 1:
            groups = [f"({g})" for g in groups]
        hints.append(" and ".join(groups))
    return hints


def _pow2_floor(n: int) -> int:
    return 0 if n < 1 else 1 << (n.bit_length() - 1)
