"""The Xylo backend's entry points for the driver: integer network <-> XyloSpec, emit, reference, emulate.

- ``quantized_network(net, device, granularity)``: float hardware network ->
  the same populations and tables in xylo_lif units (the xylo_quantize pass);
- ``spec_of(net, device)``: an integer xylo_lif hardware network -> (XyloSpec, XyloLayout);
- ``place``: the fixed_fabric partitioning strategy (one core, the layout's limits);
- ``build_config`` (nirc.driver's emit hook) / ``emit(net, target, out_dir, report)``;
- ``load_build`` (nirc.emulator's hook for configs with ``"backend": "xylo"``);
- ``reference(net, inputs)`` runs the integer network and ``emulate(build_dir, inputs)``
  runs the emitted files; both with XyloFabric, both return nirc.intref.RunResult
  ((T, *shape) or (T, B, *shape) arrays, as the rest of nirc).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from nirc.emitter import write_atomically, write_build
from nirc.errors import TargetError
from nirc.hwnet import HardwareNetwork, Population
from nirc.intref import RunResult
from nirc.neuron_models.xylo_lif import (MAX_HIDDEN_SPIKES, MAX_INPUT_EVENTS, MAX_READOUT_SPIKES, MODEL, STATE_MAX,
                                         XyloFabric, XyloRecord, XyloSpec)
from nirc.placement import Block, Placement, ResourceUse
from nirc.target import Target, load_target
from nirc.targets.xylo.config import build_config as build_config_json
from nirc.targets.xylo.config import read_config
from nirc.targets.xylo.device import XyloDevice
from nirc.targets.xylo.inputs import input_events
from nirc.targets.xylo.layout import XyloLayout, layout
from nirc.targets.xylo.quantize import quantize
from nirc.targets.xylo.relay import decode_counts

NEURON_MODEL = "xylo_lif"
# Parameters of the alias copies that carry fan-out beyond the limit (see layout._split_fan_out).
COPY_PARAMS = {"dash_mem": 0, "dash_syn": 1, "dash_syn_2": 1, "threshold": STATE_MAX, "bias": 0}


def device_for(target: Target | str) -> XyloDevice:
    return XyloDevice.of(load_target(target) if isinstance(target, str) else target)


def quantized_network(net: HardwareNetwork, device: XyloDevice, granularity: str = "layer",
                      file: str | None = None, state_peaks: dict | None = None,
                      scale_factors: dict[str, float] | None = None,
                      count_scales: dict[str, float] | None = None,
                      dash_steps: dict[str, tuple[int, int]] | None = None,
                      rounding_bias: dict[str, float] | None = None,
                      fill: dict[str, float] | None = None) -> tuple[HardwareNetwork, dict]:
    """Float network -> integer xylo_lif network (same populations and tables) and the quantization report
    (``scale_factors``, ``count_scales``, ``dash_steps``, ``rounding_bias``, ``fill``: see
    nirc.targets.xylo.quantize.quantize)."""
    placed = layout(net, device, file)
    spec, report = quantize(placed, net, device, granularity, file, state_peaks, scale_factors,
                            count_scales, dash_steps, rounding_bias, fill)
    scales = report.pop("state_scale")
    hidden = {p.name: ("hidden", p) for p in placed.hidden}
    readout = {p.name: ("readout", p) for p in placed.readout}
    where = {**hidden, **readout, **{p.name: ("input", p) for p in placed.inputs}}
    populations = {}
    for name, pop in net.populations.items():
        kind, p = where[name]
        sl = slice(p.start, p.stop)
        if kind == "hidden":
            params = {"dash_mem": spec.dash_mem[sl], "dash_syn": spec.dash_syn[sl],
                      "dash_syn_2": spec.dash_syn_2[sl], "threshold": spec.threshold[sl], "bias": spec.bias[sl]}
        else:
            params = {"dash_mem": spec.dash_mem_out[sl], "dash_syn": spec.dash_syn_out[sl],
                      "dash_syn_2": spec.dash_syn_out[sl], "threshold": spec.threshold_out[sl],
                      "bias": spec.bias_out[sl]}
        # float v = integer v_mem / v_scale (for comparing readout voltages with the float model)
        populations[name] = Population(name, pop.shape, {k: np.asarray(v, np.int64) for k, v in params.items()},
                                       pop.spiking, pop.provenance, v_scale=np.asarray(scales[kind][sl], np.float64),
                                       v_offset=np.zeros(p.size))
    # Synapses moved onto alias copies (extra fan-out) go back to the neuron they copy;
    # spec_of splits them again the same way.
    root = np.arange(placed.n_hidden)
    for source, copy in placed.alias_pairs:
        root[copy] = root[source]
    n_layers = placed.n_hidden - placed.n_copies
    merged_rec = np.zeros((n_layers, n_layers, 2), np.int64)
    np.add.at(merged_rec, root, spec.weights_rec[:, :n_layers])
    tables = []
    for t in net.tables:
        (sk, s), (tk, d) = where[t.source], where[t.target]
        synapse = int((t.kernel or {}).get("synapse", 0))
        if sk == "input":
            block, shift = spec.weights_in[s.start:s.stop, d.start:d.stop, synapse], spec.weight_shift_in
        elif tk == "hidden":
            block, shift = merged_rec[s.start:s.stop, d.start:d.stop, synapse], spec.weight_shift_rec
        else:
            block, shift = spec.weights_out[s.start:s.stop, d.start:d.stop], spec.weight_shift_out
        # Several float tables between the same pair share one block of the fabric's matrix;
        # the first carries it, the others become empty so the sum is unchanged.
        seen = any(u.source == t.source and u.target == t.target and
                   int((u.kernel or {}).get("synapse", 0)) == synapse for u in tables)
        weights = sp.csr_array(np.zeros((d.size, s.size), np.int64) if seen else block.T.astype(np.int64))
        tables.append(t.with_(weights=weights, delay=0 if sk == "input" else 1,
                              kernel={"weight_shift": int(shift), "synapse": synapse}))
    return net.with_(neuron_model=NEURON_MODEL, populations=populations, tables=tuple(tables),
                     quantized=True, notes=tuple(net.notes) + tuple(report["notes"])), report


def readout_scale(net: HardwareNetwork, placed: XyloLayout) -> np.ndarray | None:
    """Per readout neuron, integer v_mem per float unit (None when the network carries no scales)."""
    pops = [net.populations[p.name] for p in placed.readout]
    if any(p.v_scale is None for p in pops):
        return None
    return np.concatenate([np.broadcast_to(np.asarray(p.v_scale, np.float64), (p.size,)) for p in pops])


def spec_of(net: HardwareNetwork, device: XyloDevice, file: str | None = None) -> tuple[XyloSpec, XyloLayout]:
    """The XyloSpec an integer xylo_lif network stands for (weights already in 8 bits)."""
    if net.neuron_model != NEURON_MODEL or not net.quantized:
        raise TargetError(f"expected a quantized {NEURON_MODEL} network, got {net.neuron_model!r} "
                          f"(run the xylo_quantize pass)", file=file)
    placed = layout(net, device, file)
    shifts = {}
    for t in net.tables:
        kind = "in" if t.source in net.inputs else ("rec" if any(p.name == t.target for p in placed.hidden)
                                                    else "out")
        shift = int((t.kernel or {}).get("weight_shift", 0))
        if shifts.setdefault(kind, shift) != shift:
            raise TargetError(f"tables into the {kind} matrix use weight shifts {shifts[kind]} and {shift}; "
                              f"Xylo has one per matrix", file=file, node=t.target, field="weight_shift")

    def gather(placed_pops, key, size):
        # Alias copies (past the layers) never fire by themselves: largest threshold, no bias.
        out = np.full(size, COPY_PARAMS.get(key, 0) if placed_pops is placed.hidden else 0, np.int64)
        for p in placed_pops:
            out[p.start:p.stop] = net.populations[p.name].params[key]
        return out

    nh, no = placed.n_hidden, placed.n_readout
    spec = XyloSpec(
        weights_in=placed.w_in.astype(np.int64), weights_rec=placed.w_rec.astype(np.int64),
        weights_out=placed.w_out.astype(np.int64),
        dash_mem=gather(placed.hidden, "dash_mem", nh), dash_syn=gather(placed.hidden, "dash_syn", nh),
        dash_syn_2=gather(placed.hidden, "dash_syn_2", nh), threshold=gather(placed.hidden, "threshold", nh),
        bias=gather(placed.hidden, "bias", nh), dash_mem_out=gather(placed.readout, "dash_mem", no),
        dash_syn_out=gather(placed.readout, "dash_syn", no), threshold_out=gather(placed.readout, "threshold", no),
        bias_out=gather(placed.readout, "bias", no), weight_shift_in=shifts.get("in", 0),
        weight_shift_rec=shifts.get("rec", 0), weight_shift_out=shifts.get("out", 0),
        aliases=placed.aliases, dt=net.dt)
    return spec.validate(file), placed


def build_config(net: HardwareNetwork, placement: Placement | None, target: Target | str
                 ) -> tuple[dict, dict[str, np.ndarray]]:
    """nirc.driver's emit hook: config.json mapping and arrays.npz contents for a quantized network."""
    device = device_for(target)
    spec, placed = spec_of(net, device, getattr(target, "source", None))
    return build_config_json(spec, placed, device, readout_scale(net, placed))


def emit(net: HardwareNetwork, target: Target | str, out_dir: str | Path, report: Mapping[str, Any]) -> Path:
    """Write config.json, arrays.npz and report.json into ``out_dir`` atomically (without the driver)."""
    config, arrays = build_config(net, None, target)
    return write_atomically(out_dir, lambda tmp: write_build(tmp, config, arrays, report))


def place(net: HardwareNetwork, target: Target, **options: Any) -> Placement:
    """The fixed_fabric strategy: one core; every population one block at its fabric indices' core 0.

    The layout itself (which hidden or readout indices) is decided by
    nirc.targets.xylo.layout and written by build_config; the Placement
    reports what the fabric's named limits use.
    """
    device = device_for(target)
    placed = layout(net, device, getattr(target, "source", None))
    limits = target.cores.limits.named()
    fan_out = np.count_nonzero(placed.w_rec, axis=(1, 2))
    used = {"neurons": placed.n_hidden + placed.n_readout, "input_channels": placed.n_inputs,
            "output_neurons": placed.n_readout,
            "fan_out_per_neuron": int(fan_out.max()) if fan_out.size else 0}
    utilisation = {0: {k: ResourceUse(v, limits.get(k), "synapses" if k.startswith("fan") else
                                      "channels" if k == "input_channels" else "neurons")
                       for k, v in used.items()}}
    blocks = tuple(Block(name, 0, net.populations[name].size, 0) for name in net.populations)
    return Placement(target=target.name, strategy="fixed_fabric", method="fixed", blocks=blocks, cores_used=1,
                     lower_bound=1, lower_bound_resource="neurons", utilisation=utilisation, messages=0.0,
                     messages_by_pair={}, input_messages=0.0, solver_status="FIXED", solve_time_s=0.0,
                     notes=tuple(f"hidden '{p.name}' at neurons {p.start}..{p.stop - 1}" for p in placed.hidden)
                     + tuple(f"readout '{p.name}' at readout neurons {p.start}..{p.stop - 1}"
                             for p in placed.readout))


def _result(record: XyloRecord, manifest: Mapping[str, Any], batch: bool, record_states: bool) -> RunResult:
    """RunResult (T, [B,] ...) from a fabric recording (B, T, ...)."""
    def shaped(a: np.ndarray, shape) -> np.ndarray:
        a = np.moveaxis(a, 0, 1)                      # (T, B, n)
        a = a.reshape(a.shape[0], a.shape[1], *shape)
        return a if batch else a[:, 0]

    outputs, spikes, states = {}, {}, {}
    for out in manifest["outputs"]:
        a, b = out["neurons"]
        if out.get("read") == "i_syn_out":
            size = int(np.prod(out["shape"]))
            series = decode_counts(record.i_syn_out[:, :, a:b], out["charges_per_spike"])[:, :, :size]
        else:
            series = (record.spikes_out if out["quantity"] == "spikes" else record.v_mem_out)[:, :, a:b]
        outputs[out["name"]] = shaped(series, out["shape"])
    for section, sp_rec, fields in (("hidden", record.spikes, {"v_mem": record.v_mem, "i_syn": record.i_syn,
                                                              "i_syn2": record.i_syn2}),
                                    ("readout", record.spikes_out, {"v_mem": record.v_mem_out,
                                                                    "i_syn": record.i_syn_out})):
        for p in manifest[section]:
            a, b = p["neurons"]
            spikes[p["name"]] = shaped(sp_rec[:, :, a:b], p["shape"])
            if record_states:
                states[p["name"]] = {k: shaped(v[:, :, a:b], p["shape"]) for k, v in fields.items()}
    return RunResult(outputs=outputs, spikes=spikes, states=states, steps=record.spikes.shape[1])


def _events(manifest, inputs, batch, n_inputs) -> np.ndarray:
    """(B, T, Nin) from inputs given as (T, *shape) or (T, B, *shape)."""
    if batch:
        inputs = {k: np.moveaxis(np.asarray(v), 1, 0) for k, v in inputs.items()}
    return input_events(manifest, inputs, batch, n_inputs)


def unbounded_device(net: HardwareNetwork) -> XyloDevice:
    """A device as large as ``net`` needs (the integer reference checks arithmetic, not capacity)."""
    big = 1 << 30
    return XyloDevice(name="xylo_lif", input_channels=big, hidden_neurons=big, output_neurons=big,
                      synapses_per_hidden_neuron=2, fan_out_per_neuron=None, max_input_events=MAX_INPUT_EVENTS,
                      max_hidden_spikes=MAX_HIDDEN_SPIKES, max_readout_spikes=MAX_READOUT_SPIKES, has_bias=True,
                      readout_sources=big, input_targets=big, weight_bits=8, weight_shift_bits=3,
                      state_bits=16, decay_bits=4, default_dt=net.dt)


def reference(net: HardwareNetwork, inputs: Mapping[str, np.ndarray], batch: bool = False,
              record: bool = False, target: Target | str | None = None) -> RunResult:
    """The integer reference: the quantized network run with XyloFabric, without reading files."""
    device = device_for(target) if target is not None else unbounded_device(net)
    spec, placed = spec_of(net, device)
    manifest, _ = build_config_json(spec, placed, device, readout_scale(net, placed))
    rec, _ = XyloFabric.build(spec).run(_events(manifest, inputs, batch, spec.n_inputs))
    return _result(rec, manifest, batch, record)


class XyloBuild:
    """An emitted Xylo build loaded for nirc.emulator: ``run(inputs, batch, record)``."""

    def __init__(self, build_dir: str | Path):
        self.spec, self.manifest = read_config(build_dir)
        self.fabric = XyloFabric.build(self.spec)
        self.model = MODEL
        self.dt = self.spec.dt
        self.inputs = {p["name"]: tuple(p["shape"]) for p in self.manifest["inputs"]}
        self.outputs = {o["name"]: dict(o) for o in self.manifest["outputs"]}

    def run(self, inputs: Mapping[str, np.ndarray], batch: bool = False, record: bool = False) -> RunResult:
        rec, _ = self.fabric.run(_events(self.manifest, inputs, batch, self.spec.n_inputs))
        return _result(rec, self.manifest, batch, record)

    def to_float(self, name: str, values: np.ndarray) -> np.ndarray:
        """A readout's v_mem in the float model's units (integer / the quantizer's state scale)."""
        values = np.asarray(values, dtype=np.float64)
        out = self.outputs[name]
        if "v_scale" not in out:
            return values
        size = int(np.prod(out["shape"]))
        flat = values.reshape(*values.shape[:values.ndim - len(out["shape"])], size)
        return (flat / np.asarray(out["v_scale"], np.float64)).reshape(values.shape)


def load_build(build_dir: str | Path, config: dict | None = None) -> XyloBuild:
    """nirc.emulator's hook for configs with ``"backend": "xylo"``."""
    return XyloBuild(build_dir)


def emulate(build_dir: str | Path, inputs: Mapping[str, np.ndarray], batch: bool = False,
            record: bool = False) -> RunResult:
    """Run an emitted Xylo config (reads only the files in ``build_dir``)."""
    return XyloBuild(build_dir).run(inputs, batch, record)
