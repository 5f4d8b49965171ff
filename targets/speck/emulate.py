"""The Speck emulator: runs an emitted config.json with the chip's integer semantics.

It reads only the config (samna vocabulary plus the ``nirc`` section) and
never the compiler's data structures. Each core is an event-driven convolution
engine: an input event at (c_in, y, x) of the core's (pooled) input map adds
``W[c_out][c_in][ky][kx]`` to every output neuron (c_out, yo, xo) with
``yo*stride_y - padding_y + ky == y`` (and likewise for x), neurons in
ascending (c_out, yo, xo) order; the neuron arithmetic is
:func:`nirc.neuron_models.speck_iaf.update`, applied by the compiled event
engine :mod:`nirc.targets.speck.engine` (events walk the kernel directly; a
count n of one input pixel is applied as one run). An output spike at (c, y, x)
reaches each enabled destination as (c, y // pooling, x // pooling), dropped
if that lies outside the destination's input map. Event order: see
:mod:`nirc.targets.speck.network` and docs/speck.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from nirc.errors import NircError
from nirc.targets.speck.config import FORMAT
from nirc.targets.speck.engine import (apply_bias, count_events, covered, pixel_decoder,
                                       pooled_runs, pooling_map, run_events)


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

    def __post_init__(self):
        # The engine reads weights as (c_in, ky, kx, c_out): output channels innermost.
        self.kernel = np.ascontiguousarray(self.weight.transpose(1, 2, 3, 0))
        c_out, k = self.weight.shape[0], self.weight.shape[2]
        # Taps with kx reversed, (c_in, ky, reversed kx * c_out): a kernel row in output order.
        flipped = np.ascontiguousarray(self.kernel[:, :, ::-1, :]).reshape(-1, k, k * c_out)
        rows = covered(self.in_shape[1], self.out_shape[1], k, self.stride[0], self.padding[0])
        cols = covered(self.in_shape[2], self.out_shape[2], k, self.stride[1], self.padding[1])
        self.geometry = (self.kernel, flipped, pixel_decoder(*self.in_shape),
                         int(self.in_shape[1]), int(self.in_shape[2]),
                         *(int(n) for n in self.out_shape), *rows, *cols,
                         bool(self.stride[1] == 1 and self.in_shape[2] > 0))
        # The chip's neuron parameters are per core (bias per channel); the engine takes them so.
        c_out = self.out_shape[0]
        self.channel_bias = np.ascontiguousarray(self.bias.reshape(c_out, -1)[:, 0])
        self.scalars = tuple(int(a[0]) for a in (self.threshold_high, self.threshold_low,
                                                 self.return_to_zero))

    def position_major(self, v: np.ndarray) -> np.ndarray:
        """Flat (c, y, x) state -> the engine's (y, x, c) order."""
        return v.reshape(self.out_shape[0], -1).T.reshape(-1).copy()


class SpeckEmulator:
    """Runs a config.json: ``run({input: (T, *shape) counts})`` -> spikes/v per layer and outputs."""

    def __init__(self, config: dict, where: str = "config.json"):
        if config.get("format") != FORMAT:
            raise NircError(f"not a Speck config (format {config.get('format')!r})", file=where)
        self.config = config
        nirc = config["nirc"]
        self.layers = nirc["layers"]
        self.cores = {name: CoreEngine.from_config(spec["core"], config["cnn_layers"][spec["core"]])
                      for name, spec in self.layers.items()}
        input_maps = {name: tuple(spec["shape"]) if len(spec["shape"]) == 3
                      else (spec["shape"][0], 1, 1) for name, spec in nirc["inputs"].items()}
        # Where each source pixel lands on each layer's input map (pooling, dropped edges).
        self.landing = {
            (name, i): pooling_map(*(input_maps[s["source"]] if s["is_input"]
                                     else self.cores[s["source"]].out_shape),
                                   s["pooling"], *self.cores[name].in_shape[1:])
            for name, spec in self.layers.items() for i, s in enumerate(spec["sources"])}
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
    def load(cls, path: str | Path) -> "SpeckEmulator":
        path = Path(path)
        return cls(json.loads(path.read_text()), where=str(path))

    def run(self, inputs: Mapping[str, np.ndarray], record: bool = True
            ) -> dict[str, dict[str, np.ndarray]]:
        """``inputs[name]`` is (T, *shape) non-negative integer event counts.

        Returns spike counts per layer and step, the outputs, and with ``record``
        the membrane values per layer and step (``"v"``; empty without)."""
        nirc = self.config["nirc"]
        T = next(iter(inputs.values())).shape[0]
        state = {n: self.cores[n].position_major(self.cores[n].v_init) for n in self.order}
        sizes = {n: int(np.prod(self.cores[n].out_shape)) for n in self.order}
        spikes = {n: np.zeros((T, sizes[n]), dtype=np.int64) for n in self.order}
        vrec = {n: np.empty((T, sizes[n]), dtype=np.int64) for n in self.order} if record else {}
        buffers = {n: np.empty(1024, dtype=np.int64) for n in self.order}
        counts = {name: np.asarray(x).reshape(T, -1) for name, x in inputs.items()}
        for name, x in counts.items():
            if np.any(x < 0):
                raise ValueError(f"input '{name}': event counts must be >= 0")
        for t in range(T):
            # Events per source as (pixel, count) runs in emission order.
            emitted = {}
            for name in nirc["inputs"]:
                pixels = np.flatnonzero(counts[name][t])
                emitted[name] = (pixels.astype(np.int64), counts[name][t][pixels].astype(np.int64))
            for name in self.order:
                core = self.cores[name]
                v = state[name]
                th, tl, rz = core.scalars
                out, n_out = apply_bias(v, core.channel_bias, core.out_shape[0], th, tl, rz,
                                        buffers[name], 0)
                for i, s in enumerate(self.layers[name]["sources"]):
                    pixels, repeats = pooled_runs(*emitted[s["source"]], self.landing[name, i])
                    out, n_out = run_events(v, pixels, repeats, *core.geometry, th, tl, rz,
                                            out, n_out)
                buffers[name] = out
                events = out[:n_out]        # read by later layers of this step only
                emitted[name] = (events, np.ones(n_out, dtype=np.int64))
                count_events(spikes[name][t], events)
                if record:
                    vrec[name][t] = v
        # The engine's state is position-major; records are flat (c, y, x).
        vrec = {n: v.reshape(T, -1, self.cores[n].out_shape[0]).transpose(0, 2, 1).reshape(T, -1)
                for n, v in vrec.items()}
        outputs = {name: spikes[spec["layer"]].reshape((T, *spec["shape"]))
                   for name, spec in nirc["outputs"].items()}
        return {"spikes": spikes, "v": vrec, "outputs": outputs}
