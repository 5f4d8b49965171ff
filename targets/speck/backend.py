"""The Speck backend's hooks into nirc's driver, emulator and integer reference.

- :func:`place` is the ``layer_per_core`` partitioning strategy (registered
  with nirc.partition): CP-SAT layer -> core (nirc.targets.speck.assign),
  returned as nirc.placement.Placement whose core numbers are the physical
  cores (samna's ``cnn_layers`` indices).
- :func:`build_config` is the driver's emit hook: config.json in samna's
  vocabulary (nirc.targets.speck.config); nirc.emitter writes it atomically
  with report.json.
- :func:`load_build` is nirc.emulator's hook for configs with ``backend:
  speck``; :func:`run_network` is the integer reference nirc.intref uses for
  the speck_iaf neuron model. Both return nirc.intref.RunResult.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from nirc.errors import FitError, NircError
from nirc.hwnet import HardwareNetwork
from nirc.neuron_models.speck_iaf import MODEL
from nirc.placement import Block, Placement, ResourceUse
from nirc.targets.speck.assign import LayerToPlace, assign_layers
from nirc.targets.speck.chip import SpeckChip
from nirc.targets.speck.config import build_config as build_config_json
from nirc.targets.speck.emulate import SpeckEmulator
from nirc.targets.speck.network import from_hwnet, run_reference
from nirc.targets.speck.schema import check

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
    try:
        assignment = assign_layers(layers, chip.cores,
                                   time_limit_s=options.get("time_limit_s", chip.time_limit_s),
                                   seed=options.get("seed", chip.seed))
    except FitError as err:
        nodes = hw.populations[err.node].provenance if err.node in hw.populations else ()
        where = f"layer of NIR nodes {' -> '.join(nodes)} " if nodes else ""
        raise FitError(f"{where}on {chip.name} {err.message}", node=err.node) from None
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


def _assignment_of(placement: Placement):
    from nirc.targets.speck.assign import CoreAssignment

    return CoreAssignment(core_of={b.population: b.core for b in placement.blocks},
                          utilisation={}, objective=0, optimal=True)


def build_config(hw: HardwareNetwork, placement: Placement, target: Any
                 ) -> tuple[dict, dict[str, np.ndarray]]:
    """The driver's emit hook: (config.json content, arrays.npz content — none for Speck)."""
    chip = SpeckChip.from_mapping(target, file=getattr(target, "source", None))
    config = build_config_json(hw, _assignment_of(placement), chip)
    return config, {}


def run_batched(run_one, inputs: Mapping[str, np.ndarray], batch: bool, shapes: dict,
                record: bool):
    """Run a single-sample runner over each sample of a batch; results as nirc.intref.RunResult."""
    from nirc.intref import RunResult

    first = np.asarray(next(iter(inputs.values())))
    samples = first.shape[1] if batch else 1
    runs = []
    for b in range(samples):
        one = {k: np.asarray(v)[:, b] if batch else np.asarray(v) for k, v in inputs.items()}
        for name, x in one.items():
            if np.any(x < 0) or np.any(x != np.round(x)):
                raise NircError(f"input array for '{name}' holds {x[(x < 0) | (x != np.round(x))][0]:g}: "
                                "Speck inputs are event counts, non-negative integers per step")
        runs.append(run_one({k: x.astype(np.int64) for k, x in one.items()}))
    T = first.shape[0]

    def stack(key, name, shape):
        arrays = [r[key][name].reshape(T, *shape) for r in runs]
        return np.stack(arrays, axis=1) if batch else arrays[0]

    outputs = {name: stack("outputs", name, runs[0]["outputs"][name].shape[1:])
               for name in runs[0]["outputs"]}
    spikes = {name: stack("spikes", name, shapes[name]) for name in runs[0]["spikes"]}
    states = {name: {"v": stack("v", name, shapes[name])} for name in runs[0]["v"]} \
        if record else {}
    return RunResult(outputs=outputs, spikes=spikes, states=states, steps=T)


class SpeckBuild:
    """An emitted Speck build loaded for nirc.emulator: ``run(inputs, batch, record)``."""

    def __init__(self, emulator: SpeckEmulator):
        self.emulator = emulator
        self.config = emulator.config
        self.model = MODEL
        nirc = self.config["nirc"]
        self.dt = float(nirc["dt"])
        self.shapes = {name: tuple(core.out_shape) for name, core in emulator.cores.items()}
        self.inputs = {name: tuple(spec["shape"]) for name, spec in nirc["inputs"].items()}
        self.outputs = {name: {"name": name, "quantity": "spikes", **spec}
                        for name, spec in nirc["outputs"].items()}

    def run(self, inputs: Mapping[str, np.ndarray], batch: bool = False, record: bool = False):
        return run_batched(lambda one: self.emulator.run(one, record=record), inputs, batch,
                           self.shapes, record)

    def to_float(self, name: str, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)


def load_build(build_dir: Path, config: dict) -> SpeckBuild:
    """nirc.emulator's hook: a Speck config.json ready to run (ConfigError naming the node and
    field if malformed, nirc.targets.speck.schema)."""
    from nirc.build_schema import Problem
    from nirc.emulator import ConfigError

    where = str(Path(build_dir) / CONFIG_FILE)
    try:
        check(config)
    except Problem as problem:
        if problem.missing:
            # Worded as before the checks were written ("missing field 'dimensions'").
            leaf = problem.field.rpartition(".")[2]
            node = f"node '{problem.node}', " if problem.node else ""
            raise ConfigError(f"missing field '{leaf}' ({node}parameter '{problem.field}')",
                              file=where) from None
        raise problem.error(ConfigError, where) from None
    return SpeckBuild(SpeckEmulator(config, where=where))


def run_network(hw: HardwareNetwork, inputs: Mapping[str, np.ndarray], batch: bool = False,
                record: bool = False):
    """The integer reference for nirc.intref.run (the neuron model's run_network hook)."""
    shapes = {name: tuple(p.shape) for name, p in hw.populations.items()}
    return run_batched(lambda one: run_reference(hw, one), inputs, batch, shapes, record)
