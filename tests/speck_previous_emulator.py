"""The Speck emulator as it was before the compiled event engine (issue 12), frozen.

It builds each core's (neuron, weight) contribution list event by event and
applies it with the chip's update in a compiled loop (its own copy below, as
the neuron model defined it then). tests/test_speck_engine.py checks the
current emulator against it bit for bit; nothing in nirc imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numba
import numpy as np

from nirc.errors import NircError
from nirc.neuron_models.speck_iaf import STATE_MAX, STATE_MIN
from nirc.targets.speck.config import FORMAT
from nirc.targets.speck.network import input_events


@dataclass
class CoreEngine:
    """One configured core: kernel geometry, weights and neuron parameters."""

    core: int
    weight: np.ndarray          # (c_out, c_in, k, k), torch layout (ky, kx)
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    bias: np.ndarray            # per neuron
    threshold_high: np.ndarray  # per neuron
    threshold_low: np.ndarray
    return_to_zero: np.ndarray
    v_init: np.ndarray

    @classmethod
    def from_config(cls, core: int, layer: dict) -> "CoreEngine":
        dims = layer["dimensions"]
        c_in = dims["input_shape"]["feature_count"]
        in_shape = (c_in, dims["input_shape"]["size"]["y"], dims["input_shape"]["size"]["x"])
        c_out = dims["output_shape"]["feature_count"]
        out_shape = (c_out, dims["output_shape"]["size"]["y"], dims["output_shape"]["size"]["x"])
        k = dims["kernel_size"]
        weight = np.asarray(layer["weights"], dtype=np.int64).reshape(c_out, c_in, k, k)
        weight = weight.transpose(0, 1, 3, 2)           # samna [kx][ky] -> (ky, kx)
        size = int(np.prod(out_shape))
        per_channel = np.repeat(np.arange(c_out), out_shape[1] * out_shape[2])
        biases = np.asarray(layer["biases"], dtype=np.int64)
        bias = biases[per_channel] if layer["leak_enable"] else np.zeros(size, dtype=np.int64)
        v0 = np.asarray(layer["neurons_initial_value"], dtype=np.int64)
        v_init = v0.reshape(c_out, out_shape[2], out_shape[1]).transpose(0, 2, 1).reshape(-1)
        return cls(core=core, weight=weight, in_shape=in_shape, out_shape=out_shape,
                   stride=(dims["stride"]["y"], dims["stride"]["x"]),
                   padding=(dims["padding"]["y"], dims["padding"]["x"]), bias=bias,
                   threshold_high=np.full(size, layer["threshold_high"], dtype=np.int64),
                   threshold_low=np.full(size, layer["threshold_low"], dtype=np.int64),
                   return_to_zero=np.full(size, int(layer["return_to_zero"]), dtype=np.int64),
                   v_init=v_init)

    def contributions(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(neuron, weight) pairs of input events (flat indices of the input map), in chip order.

        Order: event by event; within an event, covered output positions in
        row-major (y_out, x_out) order, and all output channels of a position
        (ascending) before the next position. Walking the kernel backwards
        (ky, kx descending) visits covered rows and columns in ascending order,
        so ``np.nonzero`` yields that order without a sort.
        """
        if events.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        c_in, h, w = self.in_shape
        c_out, h_out, w_out = self.out_shape
        k = self.weight.shape[2]
        ci, rest = np.divmod(events, h * w)
        yi, xi = np.divmod(rest, w)
        backwards = np.arange(k)[::-1]
        # Output row yo covers the event through kernel row ky when yo*s - p + ky == yi.
        ny = yi[:, None] + self.padding[0] - backwards[None, :]           # (E, k)
        nx = xi[:, None] + self.padding[1] - backwards[None, :]
        ok_y = (ny >= 0) & (ny % self.stride[0] == 0) & (ny // self.stride[0] < h_out)
        ok_x = (nx >= 0) & (nx % self.stride[1] == 0) & (nx // self.stride[1] < w_out)
        e, a, b = np.nonzero(ok_y[:, :, None] & ok_x[:, None, :])          # covered positions
        position = (ny[e, a] // self.stride[0]) * w_out + nx[e, b] // self.stride[1]
        neuron = np.arange(c_out)[None, :] * (h_out * w_out) + position[:, None]   # (P, c_out)
        weight = self.weight[:, ci[e], backwards[a], backwards[b]].T
        keep = weight != 0
        return neuron[keep], weight[keep]


def pool_events(events: np.ndarray, shape: tuple[int, int, int], pooling: int,
                dest_shape: tuple[int, int, int]) -> np.ndarray:
    """Flat output events of a (c, h, w) map as flat events of the pooled destination map."""
    c, h, w = shape
    ch, rest = np.divmod(events, h * w)
    y, x = np.divmod(rest, w)
    y, x = y // pooling, x // pooling
    _, hd, wd = dest_shape
    keep = (y < hd) & (x < wd)
    return ((ch * hd + y) * wd + x)[keep]


@numba.njit(nogil=True)
def _integrate_in_order(v, neuron, weight, threshold_high, threshold_low, return_to_zero,
                        fired):
    for i in range(neuron.shape[0]):
        j = neuron[i]
        value = min(max(v[j] + weight[i], STATE_MIN), STATE_MAX)
        if value >= threshold_high[j]:
            fired[i] = True
            value = 0 if return_to_zero[j] != 0 else value - threshold_high[j]
        v[j] = max(value, threshold_low[j])


def integrate(v, neuron, weight, threshold_high, threshold_low, return_to_zero):
    fired = np.zeros(neuron.shape[0], dtype=np.bool_)
    if neuron.shape[0]:
        _integrate_in_order(v, np.ascontiguousarray(neuron, dtype=np.int64),
                            np.ascontiguousarray(weight, dtype=np.int64),
                            threshold_high.astype(np.int64, copy=False),
                            threshold_low.astype(np.int64, copy=False),
                            return_to_zero.astype(np.int64, copy=False), fired)
    return np.flatnonzero(fired)


def apply_bias(v, bias, threshold_high, threshold_low, return_to_zero):
    active = np.flatnonzero(bias)
    fired = integrate(v, active, bias[active], threshold_high, threshold_low, return_to_zero)
    return active[fired]


class PreviousSpeckEmulator:
    """Runs a config.json: ``run({input: (T, *shape) counts})`` -> spikes/v per layer and outputs."""

    def __init__(self, config: dict, where: str = "config.json"):
        if config.get("format") != FORMAT:
            raise NircError(f"not a Speck config (format {config.get('format')!r})", file=where)
        self.config = config
        nirc = config["nirc"]
        self.layers = nirc["layers"]
        self.cores = {name: CoreEngine.from_config(spec["core"], config["cnn_layers"][spec["core"]])
                      for name, spec in self.layers.items()}
        by_core = {spec["core"]: name for name, spec in self.layers.items()}
        self.order = [by_core[c] for c in nirc["processing_order"]]
        # Check the routing the samna part describes matches the nirc sources.
        for name, spec in self.layers.items():
            for s in spec["sources"]:
                if s["is_input"]:
                    continue
                dests = [d for d in config["cnn_layers"][s["core"]]["destinations"]
                         if d["enable"] and d["layer"] == spec["core"]]
                if not dests or dests[0]["pooling"] != s["pooling"]:
                    raise NircError(f"core {s['core']} has no destination to core {spec['core']} "
                                    f"with pooling {s['pooling']}", file=where,
                                    node=name, field="destinations")

    @classmethod
    def load(cls, path: str | Path) -> "PreviousSpeckEmulator":
        path = Path(path)
        return cls(json.loads(path.read_text()), where=str(path))

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        nirc = self.config["nirc"]
        T = next(iter(inputs.values())).shape[0]
        state = {n: self.cores[n].v_init.copy() for n in self.order}
        sizes = {n: int(np.prod(self.cores[n].out_shape)) for n in self.order}
        spikes = {n: np.zeros((T, sizes[n]), dtype=np.int64) for n in self.order}
        vrec = {n: np.zeros((T, sizes[n]), dtype=np.int64) for n in self.order}
        input_maps = {name: tuple(spec["shape"]) if len(spec["shape"]) == 3
                      else (spec["shape"][0], 1, 1) for name, spec in nirc["inputs"].items()}
        for t in range(T):
            emitted = {name: input_events(inputs[name][t]) for name in nirc["inputs"]}
            for name in self.order:
                core = self.cores[name]
                v = state[name]
                th, tl, rz = core.threshold_high, core.threshold_low, core.return_to_zero
                out = [apply_bias(v, core.bias, th, tl, rz)]
                for s in self.layers[name]["sources"]:
                    src = s["source"]
                    src_shape = input_maps[src] if s["is_input"] else self.cores[src].out_shape
                    ev = pool_events(emitted[src], src_shape, s["pooling"], core.in_shape)
                    neuron, weight = core.contributions(ev)
                    out.append(neuron[integrate(v, neuron, weight, th, tl, rz)])
                emitted[name] = np.concatenate(out)
                np.add.at(spikes[name][t], emitted[name], 1)
                vrec[name][t] = v
        outputs = {name: spikes[spec["layer"]].reshape((T, *spec["shape"]))
                   for name, spec in nirc["outputs"].items()}
        return {"spikes": spikes, "v": vrec, "outputs": outputs}
