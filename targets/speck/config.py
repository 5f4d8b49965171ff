"""The Speck deployment config, in samna's SpeckConfiguration vocabulary, as JSON.

Fields follow samna's configuration objects as sinabs fills them
(backend/dynapcnn/chips/dynapcnn.py ``get_dynapcnn_layer_config_dict``):

- ``cnn_layers[core]``: ``dimensions`` {input_shape {size {x, y}, feature_count},
  output_shape {size {x, y}, feature_count} (before pooling), padding {x, y},
  stride {x, y}, kernel_size}, ``weights`` [c_out][c_in][kx][ky] (torch's
  kernel with its last two axes swapped, as sinabs writes it), ``biases``
  [c_out], ``leak_enable``, ``neurons_initial_value`` [c_out][x][y],
  ``threshold_high``, ``threshold_low``, ``return_to_zero``,
  ``monitor_enable``, ``destinations`` (two) {layer, enable, pooling,
  feature_shift};
- ``dvs_layer``: {merge, mirror, mirror_diagonal, cut, origin, pooling,
  pass_sensor_events, monitor_enable, destinations};
- ``readout``: {enable, ...}.

A ``nirc`` section adds what samna does not hold but a reader of the file
needs: which NIR node each core computes, where network inputs enter, which
cores are network outputs, and the event processing order nirc's emulator
uses. Unused cores keep samna's defaults (empty, destinations disabled).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from nirc.hwnet import HardwareNetwork
from nirc.targets.speck.assign import CoreAssignment
from nirc.targets.speck.chip import SpeckChip

FORMAT = "nirc-speck-config"
VERSION = 1
DVS_LAYER = "dvs"


def _xy(y: int, x: int) -> dict[str, int]:
    return {"x": int(x), "y": int(y)}


def _empty_layer() -> dict[str, Any]:
    return {
        "dimensions": {"input_shape": {"size": _xy(0, 0), "feature_count": 0},
                       "output_shape": {"size": _xy(0, 0), "feature_count": 0},
                       "padding": _xy(0, 0), "stride": _xy(1, 1), "kernel_size": 1},
        "weights": [], "biases": [], "leak_enable": False, "neurons_initial_value": [],
        "threshold_high": 0, "threshold_low": 0, "return_to_zero": False,
        "monitor_enable": False,
        "destinations": [{"layer": 0, "enable": False, "pooling": 1, "feature_shift": 0}
                         for _ in range(2)],
    }


def build_config(hw: HardwareNetwork, assignment: CoreAssignment, chip: SpeckChip) -> dict:
    """The deployment config of a quantized Speck hardware network placed by ``assignment``."""
    if not hw.quantized:
        raise ValueError("the Speck config holds a quantized network")
    core_of = assignment.core_of
    cnn_layers = [_empty_layer() for _ in chip.cores]
    outputs_from = {o.source for o in hw.outputs.values()}
    for name, pop in hw.populations.items():
        into = hw.tables_into(name)
        k = into[0].kernel
        c_out, h_out, w_out = pop.shape
        c_in, h_in, w_in = k["input_shape"]
        weight = np.asarray(k["weight"], dtype=np.int64)
        bias = pop.params["bias"].reshape(c_out, -1)[:, 0]
        v0 = pop.params["v_init"].reshape(c_out, h_out, w_out).transpose(0, 2, 1)
        layer = _empty_layer()
        layer.update({
            "dimensions": {"input_shape": {"size": _xy(h_in, w_in), "feature_count": c_in},
                           "output_shape": {"size": _xy(h_out, w_out), "feature_count": c_out},
                           "padding": _xy(*k["padding"]), "stride": _xy(*k["stride"]),
                           "kernel_size": int(k["kernel_size"])},
            "weights": weight.transpose(0, 1, 3, 2).tolist(),
            "biases": bias.astype(np.int64).tolist(),
            "leak_enable": bool(np.any(bias != 0)),
            "neurons_initial_value": v0.astype(np.int64).tolist(),
            "threshold_high": int(pop.params["threshold_high"][0]),
            "threshold_low": int(pop.params["threshold_low"][0]),
            "return_to_zero": bool(pop.params["return_to_zero"][0]),
            "monitor_enable": name in outputs_from,
        })
        dests = [(t.target, t.kernel["pooling"]) for t in hw.tables_from(name)]
        for i, (target, pooling) in enumerate(dests):
            layer["destinations"][i] = {"layer": int(core_of[target]), "enable": True,
                                        "pooling": int(pooling), "feature_shift": 0}
        cnn_layers[core_of[name]] = layer

    inputs, dvs = {}, _dvs_layer_default()
    for name, port in hw.inputs.items():
        tables = hw.tables_from(name)
        pools = {t.kernel["pooling"] for t in tables}
        via_dvs = pools != {1}
        inputs[name] = {"shape": list(port.shape), "via_dvs_layer": via_dvs,
                        "cores": [int(core_of[t.target]) for t in tables]}
        if via_dvs:
            c, h, w = port.shape if len(port.shape) == 3 else (port.shape[0], 1, 1)
            pooling = tables[0].kernel["pooling"]
            dvs.update({"merge": c == 1, "pooling": _xy(pooling, pooling),
                        "cut": _xy(h - 1, w - 1), "origin": _xy(0, 0)})
            for i, t in enumerate(tables):
                dvs["destinations"][i] = {"layer": int(core_of[t.target]), "enable": True}
    config = {
        "format": FORMAT, "version": VERSION, "backend": "speck", "chip": chip.name,
        "dvs_layer": dvs,
        "cnn_layers": cnn_layers,
        "readout": {"enable": False} if chip.readout_classes else None,
        "nirc": {
            "dt": hw.dt,
            "layers": {name: {"core": int(core_of[name]),
                              "provenance": list(pop.provenance),
                              "sources": [{"source": t.source, "is_input": bool(
                                  t.kernel["source_is_input"]),
                                  "core": None if t.kernel["source_is_input"] else int(
                                      core_of[t.source]),
                                  "pooling": int(t.kernel["pooling"])}
                                  for t in hw.tables_into(name)]}
                       for name, pop in hw.populations.items()},
            "processing_order": [int(core_of[name]) for name in hw.populations],
            "inputs": inputs,
            "outputs": {o.name: {"core": int(core_of[o.source]), "layer": o.source,
                                 "shape": list(o.shape)} for o in hw.outputs.values()},
            "event_order": "layers in processing_order; per layer: bias, then sources in "
                           "listed order, events in emission order; an event updates its "
                           "neurons in ascending (c, y, x) order; input counts expand in "
                           "ascending flat index order",
        },
    }
    return config


def _dvs_layer_default() -> dict[str, Any]:
    return {"merge": False, "mirror": _xy(0, 0), "mirror_diagonal": False,
            "cut": _xy(127, 127), "origin": _xy(0, 0), "pooling": _xy(1, 1),
            "pass_sensor_events": False, "monitor_enable": False,
            "destinations": [{"layer": 0, "enable": False} for _ in range(2)]}


def dumps(config: dict) -> str:
    """Deterministic JSON text (sorted keys, no floats but dt)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":")) + "\n"
