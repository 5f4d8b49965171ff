"""The Speck backend's hooks into nirc's driver: place, emit, reference, emulate.

- :func:`place` is the ``layer_per_core`` partitioning strategy (registered
  with nirc.partition): CP-SAT layer -> core (nirc.targets.speck.assign),
  returned as nirc.placement.Placement whose core numbers are the physical
  cores (samna's ``cnn_layers`` indices).
- :func:`emit` writes ``config.json`` (nirc.targets.speck.config).
- :func:`reference` runs the event-driven integer reference of the hardware
  network; :func:`emulate` runs an emitted config directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from nirc.hwnet import HardwareNetwork
from nirc.placement import Block, Placement, ResourceUse
from nirc.targets.speck.assign import LayerToPlace, assign_layers
from nirc.targets.speck.chip import SpeckChip
from nirc.targets.speck.config import build_config, dumps
from nirc.targets.speck.emulate import SpeckEmulator
from nirc.targets.speck.network import from_hwnet, run_reference

CONFIG_FILE = "config.json"
RESOURCE_OF_KIND = {"kernel": "kernel_memory_words", "neuron": "neuron_memory_words",
                    "bias": "bias_memory_words"}


def layers_to_place(hw: HardwareNetwork) -> list[LayerToPlace]:
    return [LayerToPlace.of(layer.name, layer.geometry) for layer in from_hwnet(hw).layers]


def place(hw: HardwareNetwork, target: Any, **options: Any) -> Placement:
    import time

    chip = SpeckChip.from_mapping(target, file=getattr(target, "source", None))
    layers = layers_to_place(hw)
    start = time.perf_counter()
    assignment = assign_layers(layers, chip.cores,
                               time_limit_s=options.get("time_limit_s", chip.time_limit_s),
                               seed=options.get("seed", chip.seed))
    elapsed = time.perf_counter() - start
    core_of = assignment.core_of
    utilisation = {}
    for layer in layers:
        core = chip.cores[core_of[layer.name]]
        uses = {RESOURCE_OF_KIND[k]: ResourceUse(layer.demand.get(k), core.get(k), "words")
                for k in RESOURCE_OF_KIND}
        uses["neurons"] = ResourceUse(hw.populations[layer.name].size, core.neuron, "neurons")
        uses["destinations"] = ResourceUse(len(hw.tables_from(layer.name)),
                                           chip.limits.max_destinations, "cores")
        utilisation[core.id] = uses
    rates = options.get("rates") or {}
    pairs: dict[tuple[int, int], float] = {}
    input_messages = 0.0
    for table in hw.tables:
        size = hw.size_of(table.source)
        weight = float(np.sum(rates[table.source])) if table.source in rates else float(size)
        if table.source in hw.inputs:
            input_messages += weight
        else:
            key = (core_of[table.source], core_of[table.target])
            pairs[key] = pairs.get(key, 0.0) + weight
    return Placement(
        target=chip.name, strategy="layer_per_core", method="cpsat",
        blocks=tuple(Block(layer.name, 0, hw.populations[layer.name].size, core_of[layer.name])
                     for layer in layers),
        cores_used=len(layers), lower_bound=len(layers), lower_bound_resource="layers",
        utilisation=utilisation, messages=sum(pairs.values()), messages_by_pair=pairs,
        input_messages=input_messages,
        solver_status="OPTIMAL" if assignment.optimal else "FEASIBLE", solve_time_s=elapsed,
        notes=("core numbers are physical Speck cores (samna cnn_layers indices); the solver "
               "prefers the smallest cores that fit, leaving the largest free",))


def emit(hw: HardwareNetwork, placement: Placement, target: Any, out_dir: Path,
         report: dict | None = None) -> list[Path]:
    from nirc.targets.speck.assign import CoreAssignment

    chip = SpeckChip.from_mapping(target, file=getattr(target, "source", None))
    assignment = CoreAssignment(core_of={b.population: b.core for b in placement.blocks},
                                utilisation={}, objective=0, optimal=True)
    path = Path(out_dir) / CONFIG_FILE
    path.write_text(dumps(build_config(hw, assignment, chip)))
    return [path]


def reference(hw: HardwareNetwork, inputs: Mapping[str, np.ndarray]) -> dict:
    return run_reference(hw, inputs)


def emulate(config_dir: Path, inputs: Mapping[str, np.ndarray]) -> dict:
    return SpeckEmulator.load(Path(config_dir) / CONFIG_FILE).run(inputs)


def load_config(config_dir: Path) -> dict:
    return json.loads((Path(config_dir) / CONFIG_FILE).read_text())
