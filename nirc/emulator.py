"""The emulator: runs an emitted deployment configuration, reading nothing but its files.

``Chip.load(build_dir)`` reads config.json and arrays.npz (docs/config-format.md);
``chip.run(inputs, batch=..., record=...)`` steps every core: each core sums
the input its stored table rows deliver (the neuron model's accumulation rule
on the spikes routed to it, ``delay`` steps old) and advances its neurons
with the neuron model's step — the same arithmetic the integer reference
uses, but on the placed, serialised network. All cores' neurons advance as
one vector per step (neurons do not interact within a step), and the rows of
one table that several cores store are gathered into one matrix whose results
are scattered to the cores' neuron slots, so a step costs one accumulation
per table whatever the placement. Populations are reassembled from their
blocks only to route spikes and to report outputs. Everything is whole-array
numpy / scipy.sparse over a batch of samples.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from nirc import build_schema
from nirc.emitter import CONFIG_NAME, FORMAT, SCHEMA_VERSION
from nirc.errors import NircError
from nirc.hwnet import SynapseTable
from nirc.intref import RunResult, check_inputs, spike_count
from nirc.neuron_models import get_model

# The arrays of one build nirc reads at most (from the sizes their headers declare): a
# 10^8-synapse system build holds about 1.4 GB.
MAX_BUILD_ARRAY_BYTES = 8 << 30


class ConfigError(NircError):
    """A deployment configuration on disk is missing, malformed or inconsistent."""


def _backend(name: Any, where: str):
    """The nirc.targets backend package a config.json names in ``backend``."""
    from nirc.target import TARGET_PACKAGE, backend_names

    known = backend_names()
    if name not in known:
        raise ConfigError(f"unknown backend {name!r} (known: {', '.join(known)})", file=where,
                          field="backend")
    return importlib.import_module(f"{TARGET_PACKAGE}.{name}")


@dataclass
class _Core:
    core: int
    size: int
    params: dict[str, np.ndarray]
    blocks: list[tuple[str, int, int, int]]   # population, start, stop, local offset
    stored: list[tuple[int, int, int, int]]   # table, first row, stop row, local offset


@dataclass
class _PlacedTable:
    """One table's rows as all cores together store them."""

    source: str
    weights: Any                  # the neuron model's prepared form of the stored rows
    attrs: dict[str, Any]
    delay: int
    at: np.ndarray | slice        # chip-wide neuron slot of each stored row


def _as_slice(index: np.ndarray) -> np.ndarray | slice:
    """A contiguous ascending index as a slice (a view instead of a gather/scatter)."""
    if index.size and np.array_equal(index, np.arange(index[0], index[0] + index.size)):
        return slice(int(index[0]), int(index[0]) + index.size)
    return index


@dataclass
class _Population:
    name: str
    shape: tuple[int, ...]
    size: int
    spiking: bool
    params: dict[str, np.ndarray]
    v_scale: np.ndarray | None
    v_offset: np.ndarray | None


class Chip:
    """A loaded deployment configuration, ready to run."""

    def __init__(self, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray], where: str):
        self.config = config
        self.where = where
        self.model = get_model(config["neuron_model"])
        self.dt = float(config["dt"])
        self.inputs = {p["name"]: tuple(p["shape"]) for p in config["inputs"]}
        self.outputs = {o["name"]: o for o in config["outputs"]}
        self._arrays = arrays
        self.populations = {p["name"]: self._population(p) for p in config["populations"]}
        tables = [self._table(t) for t in config["tables"]]
        self.cores = [self._core(c, len(tables)) for c in config["cores"]]
        self.depth = max([t.delay for t in tables], default=0) + 1
        # Neurons are independent of one another within a step, so every core's neurons
        # advance in one vector (cores in order, each at its base offset); what is per core
        # is which table rows it stores and where its blocks' spikes are routed.
        bases = np.cumsum([0] + [core.size for core in self.cores])
        self.n_chip = int(bases[-1])
        self.params = {k: np.concatenate([core.params[k] for core in self.cores])
                       if self.cores else np.zeros(0, self.model.dtype)
                       for k in self.model.param_names}
        slots = {name: np.full(pop.size, -1, np.int64) for name, pop in self.populations.items()}
        for core, base in zip(self.cores, bases):
            for name, start, stop, offset in core.blocks:
                slots[name][start:stop] = base + offset + np.arange(stop - start)
        for name, slot in slots.items():
            covered = np.unique(slot[slot >= 0]).size
            if covered != slot.size or np.any(slot < 0):
                raise ConfigError(f"population's blocks cover {covered} of {slot.size} "
                                  f"neurons", file=where, node=name, field="cores")
        # Chip-wide slot of each population neuron, for routing spikes and reporting states.
        self.slots = {name: _as_slice(slot) for name, slot in slots.items()}
        self.tables = self._placed_tables(tables, bases)

    # --- reading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, build_dir: str | Path) -> "Chip":
        build = Path(build_dir)
        path = build / CONFIG_NAME
        try:
            config = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"no {CONFIG_NAME} (is this a nirc build directory?)",
                              file=str(build)) from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"not valid JSON ({err})", file=str(path)) from None
        if not isinstance(config, dict):
            raise ConfigError(f"not a JSON object (got {type(config).__name__})", file=str(path))
        if config.get("backend"):
            # A chip whose config follows its vendor's vocabulary: its backend runs it.
            return _backend(config["backend"], str(path)).load_build(build, config)
        if config.get("format") != FORMAT:
            raise ConfigError(f"format is {config.get('format')!r}, expected {FORMAT!r}",
                              file=str(path), field="format")
        if config.get("schema_version") != SCHEMA_VERSION:
            raise ConfigError(f"schema_version {config.get('schema_version')!r} is not "
                              f"supported (this nirc reads {SCHEMA_VERSION})", file=str(path),
                              field="schema_version")
        try:
            checked = build_schema.structure(config)
            arrays = build_schema.read_arrays(build, checked.arrays, "arrays",
                                              MAX_BUILD_ARRAY_BYTES)
            build_schema.references(checked, arrays, get_model(checked.neuron_model))
        except build_schema.Problem as problem:
            raise problem.error(ConfigError, str(path)) from None
        except NircError as err:
            raise err.at(file=str(path)) from None
        return cls(config, arrays, str(path))

    def _value(self, value, size: int) -> np.ndarray:
        if isinstance(value, str):
            _, _, key = value.partition(":")
            array = self._arrays[key]
        else:
            array = np.asarray(value)
        return np.broadcast_to(array, (size,)).astype(self.model.dtype)

    def _population(self, p: Mapping[str, Any]) -> _Population:
        size = int(p["size"])
        params = {k: self._value(p["params"][k], size) for k in self.model.param_names}
        scale, offset = (None if p.get(k) is None else self._value(p[k], size).astype(np.float64)
                         for k in ("v_scale", "v_offset"))
        if p.get("profiles") is not None:
            self._check_profiles(p, params, size)
        return _Population(p["name"], tuple(p["shape"]), size, bool(p["spiking"]), params,
                           scale, offset)

    def _check_profiles(self, p: Mapping[str, Any], params: dict[str, np.ndarray], size: int):
        """Every neuron's parameters must be its profile's (what a chip holding profiles runs)."""
        profiles = p["profiles"]
        index = self._value(p["profile"], size)
        if index.size and not (0 <= index.min() and index.max() < len(profiles)):
            raise ConfigError(f"profile index out of range (population has {len(profiles)} "
                              f"profiles)", file=self.where, node=p["name"], field="profile")
        for key in profiles[0] if profiles else ():
            want = np.array([prof[key] for prof in profiles], self.model.dtype)[index]
            bad = np.flatnonzero(params[key] != want)
            if bad.size:
                raise ConfigError(f"neuron {bad[0]} has {key} {params[key][bad[0]]} but its "
                                  f"profile {index[bad[0]]} says {want[bad[0]]}", file=self.where,
                                  node=p["name"], field=f"params.{key}")

    def _table(self, t: Mapping[str, Any]) -> SynapseTable:
        w = t["weights"]
        rows, cols, values = (self._arrays[w[k].partition(":")[2]] for k in ("row", "col", "value"))
        shape = tuple(t["shape"])
        csr = sp.csr_array((values.astype(self.model.dtype), (rows.astype(np.int64),
                                                              cols.astype(np.int64))), shape=shape)
        delay = int(t["delay"])
        if delay < 1:
            raise ConfigError(f"table {t['id']} has delay {delay}; the emulator steps all cores "
                              f"at once and needs delays of at least 1", file=self.where,
                              node=t["target"], field="delay")
        attrs = {f: t[f] for f in self.model.table_fields if f in t}
        return SynapseTable(source=t["source"], target=t["target"], weights=csr, delay=delay,
                            kernel=attrs)

    def _core(self, c: Mapping[str, Any], n_tables: int) -> _Core:
        blocks = [(b["population"], int(b["start"]), int(b["stop"]), int(b["offset"]))
                  for b in c["blocks"]]
        size = int(c["neurons"])
        params = {}
        for k in self.model.param_names:
            values = np.zeros(size, self.model.dtype)
            for name, start, stop, offset in blocks:
                values[offset:offset + stop - start] = self.populations[name].params[k][start:stop]
            params[k] = values
        stored = []
        for s in c["synapses"]:
            table = int(s["table"])
            if not 0 <= table < n_tables:
                raise ConfigError(f"core {c['core']} stores rows of table {table}, which does "
                                  f"not exist", file=self.where, field="cores")
            start, stop = (int(r) for r in s["rows"])
            stored.append((table, start, stop, int(s["offset"])))
        return _Core(int(c["core"]), size, params, blocks, stored)

    def _placed_tables(self, tables: list[SynapseTable], bases: np.ndarray) -> list[_PlacedTable]:
        """Each table's stored rows gathered over all cores, with the chip-wide slot of each
        row (rows sum only their own synapses, so gathering them changes no sum)."""
        pieces: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for core, base in zip(self.cores, bases):
            for table, start, stop, offset in core.stored:
                first = int(base) + offset
                pieces.setdefault(table, []).append((np.arange(start, stop),
                                                     np.arange(first, first + stop - start)))
        placed = []
        for k, parts in sorted(pieces.items()):
            t = tables[k]
            rows = np.concatenate([r for r, _ in parts])
            at = np.concatenate([a for _, a in parts])
            if np.unique(at).size != at.size:
                raise ConfigError(f"table {k} stores several rows for the same neuron slot",
                                  file=self.where, node=t.target, field="cores")
            stored = t.with_(weights=sp.csr_array(t.weights[rows]))
            placed.append(_PlacedTable(t.source, self.model.prepare_weights(stored),
                                       self.model.table_attrs(t), t.delay, _as_slice(at)))
        return placed

    # --- running ---------------------------------------------------------------------------

    def run(self, inputs: Mapping[str, np.ndarray], batch: bool = False,
            record: bool = False) -> RunResult:
        """Run on ``inputs`` ({input: (T, *shape)}, or (T, B, *shape) with batch)."""
        model = self.model
        steps, n_batch, x = check_inputs(self.inputs, inputs, batch)
        depth = self.depth
        history = {name: np.zeros((depth, n_batch, int(np.prod(shape))), x[name].dtype)
                   for name, shape in self.inputs.items()}
        history.update({name: np.zeros((depth, n_batch, p.size), bool)
                        for name, p in self.populations.items()})
        spikes = {n: np.zeros((steps, n_batch, p.size), bool) for n, p in self.populations.items()}
        readout = {o["source"] for o in self.outputs.values() if o["quantity"] != "spikes"}
        traced = [n for n in self.populations if record or n in readout]   # population order
        traces = {n: {s: np.zeros((steps, n_batch, self.populations[n].size), model.dtype)
                      for s in model.state_names} for n in traced}
        params = model.prepare_params(self.params)
        state = model.init_state(params, n_batch)
        for t in range(steps):
            slot = t % depth
            for name in self.inputs:
                history[name][slot] = x[name][t]
            a_in = np.zeros((n_batch, self.n_chip), model.dtype)
            for table in self.tables:
                if table.delay <= t:
                    a_in[:, table.at] += model.accumulate(
                        table.weights, table.attrs, history[table.source][(t - table.delay) % depth])
            z = model.step(params, state, a_in)
            for name, at in self.slots.items():
                history[name][slot] = z[:, at]
                spikes[name][t] = history[name][slot]
                if name in traces:
                    for s_name, trace in traces[name].items():
                        trace[t] = state[s_name][:, at]
        return self._result(spikes, traces, steps, batch, record)

    def _result(self, spikes, traces, steps, batch, record) -> RunResult:
        def shaped(a, shape):
            out = a.reshape(a.shape[0], a.shape[1], *shape)
            return out if batch else out[:, 0]

        outputs = {}
        for name, o in self.outputs.items():
            pop = o["source"]
            src = spike_count(spikes[pop], [spikes[c] for c in o.get("copies", ())],
                              o.get("copy_weights") or ()) \
                if o["quantity"] == "spikes" else traces[pop][o["quantity"]]
            outputs[name] = shaped(src, tuple(o["shape"]))
        return RunResult(
            outputs=outputs,
            spikes={n: shaped(s, self.populations[n].shape) for n, s in spikes.items()
                    if self.populations[n].spiking},
            states={n: {s: shaped(a, self.populations[n].shape) for s, a in st.items()}
                    for n, st in traces.items()} if record else {},
            steps=steps)

    def to_float(self, output: str, values: np.ndarray) -> np.ndarray:
        """A readout output's raw values in the float simulation's units (v / v_scale + v_offset)."""
        o = self.outputs[output]
        pop = self.populations[o["source"]]
        if o["quantity"] == "spikes" or pop.v_scale is None:
            return values.astype(np.float64)
        flat = values.reshape(*values.shape[:-len(o["shape"])], -1).astype(np.float64)
        return (flat / pop.v_scale + pop.v_offset).reshape(values.shape)
