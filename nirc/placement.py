"""The placement: which neurons (or layers) sit on which core, and what that costs.

Produced by a partitioner (nirc.partition) from a HardwareNetwork and a Target,
consumed by the emitters and the mapping report. One vocabulary serves all
three mapping strategies: a :class:`Block` is a contiguous slice of one
population (a whole layer for layer-per-core chips, a single neuron index range
for fixed fabrics), and every resource is named as in nirc.target.RESOURCES.

Everything here is deterministic for a given network, target and seed except
``solve_time_s``, which emitters must keep out of deployment configs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class Block:
    """Neurons ``start:stop`` (flat C-order indices) of ``population``, placed on ``core``."""

    population: str
    start: int
    stop: int
    core: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class ResourceUse:
    """How much of one named resource a core uses, against its capacity (None: unbounded)."""

    used: int
    capacity: int | None
    unit: str

    @property
    def fraction(self) -> float | None:
        return None if not self.capacity else self.used / self.capacity


@dataclass(frozen=True)
class Placement:
    """A network placed on a target's cores.

    ``cores_used`` counts cores holding at least one block; cores are numbered
    0..cores_used-1 in the order their first block appears. ``lower_bound`` is
    max over resources of the fewest cores whose capacity covers the demand;
    ``gap`` is (cores_used - lower_bound) / cores_used. Messages count one per
    (source neuron, destination core) per spike, weighted by spike rates when
    given: ``messages`` between cores of the chip, ``input_messages`` from the
    network inputs into cores.
    """

    target: str
    strategy: str
    method: str
    blocks: tuple[Block, ...]
    cores_used: int
    lower_bound: int
    lower_bound_resource: str
    utilisation: Mapping[int, Mapping[str, ResourceUse]]
    messages: float
    messages_by_pair: Mapping[tuple[int, int], float]
    input_messages: float
    solver_status: str
    solve_time_s: float
    notes: tuple[str, ...] = field(default=())
    # Limits of the whole chip (nirc.target.CHIP_RESOURCES), e.g. routing-table entries.
    chip_utilisation: Mapping[str, ResourceUse] = field(default_factory=dict)
    # Systems of chips (nirc.partition.chips): chips used, lower bound on chips, traffic per
    # link, inter-chip routes. None on a single chip. Cores are chip * cores_per_chip + core.
    system: Mapping[str, Any] | None = None

    @property
    def gap(self) -> float:
        return (self.cores_used - self.lower_bound) / self.cores_used if self.cores_used else 0.0

    def blocks_of(self, population: str) -> list[Block]:
        return list(self._blocks_by_population.get(population, ()))

    @functools.cached_property
    def _blocks_by_population(self) -> dict[str, list[Block]]:
        """Blocks per population, by start (built once: placements are immutable)."""
        out: dict[str, list[Block]] = {}
        for b in self.blocks:
            out.setdefault(b.population, []).append(b)
        return {p: sorted(bs, key=lambda b: b.start) for p, bs in out.items()}

    def core_of(self, population: str, size: int | None = None) -> np.ndarray:
        """Core index of every neuron of ``population`` (flat C-order), as an int array."""
        blocks = self.blocks_of(population)
        if not blocks:
            raise KeyError(f"population {population!r} is not placed")
        n = size if size is not None else blocks[-1].stop
        cores = np.full(n, -1, dtype=np.int64)
        for b in blocks:
            cores[b.start:b.stop] = b.core
        return cores

    def peak_utilisation(self) -> dict[str, float]:
        """Highest used/capacity over cores, per bounded resource."""
        peak: dict[str, float] = {}
        for uses in self.utilisation.values():
            for name, use in uses.items():
                if use.fraction is not None:
                    peak[name] = max(peak.get(name, 0.0), use.fraction)
        return peak

    def to_dict(self, *, include_time: bool = False) -> dict[str, Any]:
        """A JSON-able summary (without solve time unless asked: it is not reproducible)."""
        out: dict[str, Any] = {
            "target": self.target,
            "strategy": self.strategy,
            "method": self.method,
            "cores_used": self.cores_used,
            "lower_bound": self.lower_bound,
            "lower_bound_resource": self.lower_bound_resource,
            "gap": round(self.gap, 6),
            "solver_status": self.solver_status,
            "messages": self.messages,
            "input_messages": self.input_messages,
            "messages_by_pair": [[a, b, m] for (a, b), m in sorted(self.messages_by_pair.items())],
            "blocks": [[b.population, b.start, b.stop, b.core] for b in self.blocks],
            "utilisation": {str(core): {name: {"used": u.used, "capacity": u.capacity, "unit": u.unit}
                                        for name, u in uses.items()}
                            for core, uses in sorted(self.utilisation.items())},
            "chip_utilisation": {name: {"used": u.used, "capacity": u.capacity, "unit": u.unit}
                                 for name, u in self.chip_utilisation.items()},
            "notes": list(self.notes),
        }
        if self.system is not None:
            out["system"] = self.system
        if include_time:
            out["solve_time_s"] = self.solve_time_s
        return out
