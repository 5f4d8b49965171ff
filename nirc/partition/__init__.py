"""Placing a hardware network on a target's cores.

``partition(net, target)`` dispatches on ``target.mapping`` to a registered
strategy and returns a :class:`nirc.placement.Placement`:

- ``neuron_partition`` (Loihi-like): :mod:`nirc.partition.neuron_partition`,
  blocks packed by OR-Tools CP-SAT; ``method="sequential"`` gives the naive
  in-order fill used as the baseline.
- a system of chips (``target.system``): :mod:`nirc.partition.chips` places the
  network over chips, then each chip's share with neuron_partition.
- ``layer_per_core`` and ``fixed_fabric``: registered by their backend module
  (``nirc.targets.<backend>``, imported on first use) with
  :func:`register_strategy`, using the same Placement and limit vocabulary.

A network that cannot fit raises FitError naming the resource, the layer, the
demand and the capacity. Modules: connectivity (the network as one neuron
index space), demand (the counting model), blocks (coarsening), lower_bound,
packing (core loads, sequential fill), cpsat, explain (FitError messages).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from nirc.errors import TargetError
from nirc.hwnet import HardwareNetwork
from nirc.placement import Placement
from nirc.target import Target

Strategy = Callable[..., Placement]
STRATEGIES: dict[str, Strategy] = {}


def register_strategy(mapping: str, strategy: Strategy) -> None:
    """Make ``strategy(net, target, **options) -> Placement`` place targets of ``mapping``."""
    STRATEGIES[mapping] = strategy


def partition(net: HardwareNetwork, target: Target, **options: Any) -> Placement:
    """Place ``net`` on ``target`` (options: method, rates, time_limit_s, seed — per strategy)."""
    if getattr(target, "system", None) is not None:
        from nirc.partition.chips import system_partition

        if target.mapping != "neuron_partition":
            raise TargetError(f"a system's chips must use the neuron_partition mapping, not "
                              f"{target.mapping!r}", file=target.source, field="mapping")
        return system_partition(net, target, **options)
    if target.mapping not in STRATEGIES and target.backend:
        importlib.import_module(f"nirc.targets.{target.backend}")
    strategy = STRATEGIES.get(target.mapping)
    if strategy is None:
        raise TargetError(f"no partitioner registered for mapping {target.mapping!r} "
                          f"(registered: {', '.join(sorted(STRATEGIES))})", file=target.source)
    return strategy(net, target, **options)


def _register_builtin() -> None:
    from nirc.partition.neuron_partition import neuron_partition
    register_strategy("neuron_partition", neuron_partition)


_register_builtin()
