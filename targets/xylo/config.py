"""The Xylo deployment config on disk, in rockpool's Xylo specification vocabulary, and reading it back.

A build directory holds ``config.json`` (human-readable manifest: target,
dt, device limits, the global weight shifts and aliases, and where every NIR
input, population and output sits on the fabric; ``"backend": "xylo"`` sends
nirc.emulator here) and ``arrays.npz`` (the integer arrays, named as
``rockpool.devices.xylo.syns61201.XyloSim.from_specification`` names its
arguments); nirc.emitter writes both (with report.json) atomically. ``rockpool_specification(spec)`` gives exactly the
keyword arguments a rockpool user passes to ``XyloSim.from_specification``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nirc.build_schema import Problem
from nirc.errors import TargetError
from nirc.neuron_models.xylo_lif import XyloSpec
from nirc.targets.xylo.device import XyloDevice
from nirc.targets.xylo.layout import XyloLayout
from nirc.targets.xylo.schema import check

FORMAT = "nirc.xylo"
VERSION = 1
MANIFEST = "config.json"
ARRAYS = "arrays.npz"
ARRAY_FIELDS = ("weights_in", "weights_rec", "weights_out", "dash_mem", "dash_syn", "dash_syn_2",
                "threshold", "bias", "dash_mem_out", "dash_syn_out", "threshold_out", "bias_out")
SCALAR_FIELDS = ("weight_shift_in", "weight_shift_rec", "weight_shift_out", "dt")


def rockpool_specification(spec: XyloSpec) -> dict:
    """Keyword arguments for rockpool's ``XyloSim.from_specification`` (int8/int16 arrays, aliases as lists)."""
    kwargs = {name: np.asarray(getattr(spec, name)) for name in ARRAY_FIELDS}
    for name in ("weights_in", "weights_rec", "weights_out"):
        kwargs[name] = kwargs[name].astype(np.int8)
    kwargs.update({name: getattr(spec, name) for name in SCALAR_FIELDS})
    kwargs["aliases"] = [list(a) for a in spec.aliases] if spec.aliases else None
    return kwargs


def _placed(items, key):
    return [{"name": p.name, key: [p.start, p.stop], "shape": list(p.shape)} for p in items]


def build_config(spec: XyloSpec, layout: XyloLayout, device: XyloDevice, readout_scale: np.ndarray | None = None
                 ) -> tuple[dict, dict[str, np.ndarray]]:
    """The config.json mapping and the arrays (int8 weights, int16 per-neuron values) it refers to.

    ``readout_scale`` (Nout,): integer v_mem per float unit, written for voltage outputs so
    readers can convert them back (``v_scale``).
    """
    arrays = {name: np.asarray(getattr(spec, name)) for name in ARRAY_FIELDS}
    for name in ("weights_in", "weights_rec", "weights_out"):
        arrays[name] = arrays[name].astype(np.int8)
    for name in ARRAY_FIELDS[3:]:
        arrays[name] = arrays[name].astype(np.int16)
    manifest = {
        "format": FORMAT, "version": VERSION, "backend": "xylo", "target": device.name,
        "neuron_model": "xylo_lif", "dt": spec.dt,
        "device": {"input_channels": device.input_channels, "hidden_neurons": device.hidden_neurons,
                   "output_neurons": device.output_neurons,
                   "synapses_per_hidden_neuron": device.synapses_per_hidden_neuron,
                   "max_input_events": device.max_input_events, "max_hidden_spikes": device.max_hidden_spikes,
                   "max_readout_spikes": device.max_readout_spikes},
        "specification": {"arrays": ARRAYS, "weight_shift_in": spec.weight_shift_in,
                          "weight_shift_rec": spec.weight_shift_rec, "weight_shift_out": spec.weight_shift_out,
                          "aliases": [list(a) for a in spec.aliases], "dt": spec.dt,
                          "has_bias": spec.has_bias},
        "inputs": _placed(layout.inputs, "channels"),
        "hidden": _placed(layout.hidden, "neurons"),
        "readout": _placed(layout.readout, "neurons"),
        "outputs": [_output(p, readout_scale, spec) for p in layout.outputs],
    }
    return manifest, arrays


def relay_charges(spec: XyloSpec, start: int, stop: int) -> list[int]:
    """The integer charges per relayed spike of readout neurons [start, stop): one per output
    neuron a relay counts, in order (their weights under the readout's shift)."""
    first = spec.weights_out[:, start]
    return [int(w) << spec.weight_shift_out for w in first[first != 0]]


def _output(p, readout_scale, spec: XyloSpec) -> dict:
    entry = {"name": p.name, "quantity": p.quantity, "neurons": [p.start, p.stop], "shape": list(p.shape)}
    if p.counts_of is not None:
        # The layer's spikes per step, decoded from the relay readout's synaptic current
        # (nirc.targets.xylo.relay).
        charges = relay_charges(spec, p.start, p.stop)
        entry.update({"counts_of": p.counts_of, "read": "i_syn_out", "charges_per_spike": charges,
                      "decode": ("spikes[t] = round(y / c), " if len(charges) == 1 else
                                 "output 2r+1 of relay r: n2 = floor((y + 1) / c2), output 2r: "
                                 "n1 = round((y - c2 n2) / c1), ")
                      + "y = 2 i_syn_out[t] - i_syn_out[t-1] (0 before the first step); the "
                        "layer's spikes of step t - 1 (nirc.targets.xylo.relay)"})
    elif p.quantity != "spikes" and readout_scale is not None:
        entry["v_scale"] = [float(x) for x in readout_scale[p.start:p.stop]]
    return entry


def read_config(config_dir: str | Path) -> tuple[XyloSpec, dict]:
    """The XyloSpec and manifest of an emitted config; TargetError naming the file, node and
    field if malformed (nirc.targets.xylo.schema)."""
    root = Path(config_dir)
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetError("no such file (not a nirc Xylo config directory)", file=str(path)) from None
    except json.JSONDecodeError as err:
        raise TargetError(f"invalid JSON at line {err.lineno}: {err.msg}", file=str(path)) from None
    if not isinstance(manifest, dict):
        raise TargetError(f"not a JSON object (got {type(manifest).__name__})", file=str(path))
    if manifest.get("format") != FORMAT:
        raise TargetError(f"format {manifest.get('format')!r} is not {FORMAT!r}", file=str(path), field="format")
    if manifest.get("version") != VERSION:
        raise TargetError(f"version {manifest.get('version')!r}, this nirc reads {VERSION}", file=str(path),
                          field="version")
    try:
        cfg, arrays = check(root, manifest)
    except Problem as problem:
        raise problem.error(TargetError, str(path)) from None
    section = cfg.specification
    spec = XyloSpec(**{name: arrays[name].astype(np.int64) for name in ARRAY_FIELDS},
                    weight_shift_in=section.weight_shift_in,
                    weight_shift_rec=section.weight_shift_rec,
                    weight_shift_out=section.weight_shift_out,
                    aliases=tuple(tuple(a) for a in section.aliases), dt=float(section.dt))
    return spec.validate(str(root / section.arrays)), manifest
