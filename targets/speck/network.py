"""Speck layers as a hardware network, and the event-driven integer reference over it.

:func:`to_hwnet` turns Speck layers into nirc's target-independent hardware
network: one population per layer (params in :mod:`nirc.neuron_models.speck_iaf`
units, broadcast per neuron), one table per (source, layer) edge whose
``weights`` is the unrolled matrix of pooling followed by convolution (built
vectorised with numpy/scipy.sparse) and whose ``kernel`` keeps the geometry and
the dense kernel the emitter writes. :func:`from_hwnet` reads it back.

:func:`run_reference` is the integer reference: it runs the hardware network
with the Speck neuron's arithmetic, event by event, using only the unrolled
tables (never the kernels), so agreeing with the emulator — which uses only the
emitted kernels — checks the kernel geometry, transposition, padding, stride
and pooling the emitter wrote.

Event order (docs/speck.md): within a time step, layers run in network order;
each layer first applies its bias, then the events of its sources in source
order, each source's events in the order they were emitted; one event updates
its target neurons in ascending flat (c, y, x) index order. Network input
counts expand to events in ascending flat index order, a count n giving n
consecutive events.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from nirc.hwnet import HardwareNetwork, InputPort, OutputPort, Population, SynapseTable
from nirc.neuron_models.speck_iaf import MODEL, apply_bias, integrate, integrate_unbounded
from nirc.targets.speck.lower import Source, SpeckLayer, SpeckNetwork


def conv_matrix(weight: np.ndarray, input_shape: tuple[int, int, int], stride: tuple[int, int],
                padding: tuple[int, int]) -> sp.csr_array:
    """(c_out*h_out*w_out, c_in*h*w) matrix of a zero-padded 2-d convolution (torch layout)."""
    c_out, c_in, k, _ = weight.shape
    _, h, w = input_shape
    h_out = (h + 2 * padding[0] - k) // stride[0] + 1
    w_out = (w + 2 * padding[1] - k) // stride[1] + 1
    co, ci, ky, kx, yo, xo = np.meshgrid(np.arange(c_out), np.arange(c_in), np.arange(k),
                                         np.arange(k), np.arange(h_out), np.arange(w_out),
                                         indexing="ij", sparse=True)
    yi = yo * stride[0] - padding[0] + ky
    xi = xo * stride[1] - padding[1] + kx
    shape6 = (c_out, c_in, k, k, h_out, w_out)
    valid = np.broadcast_to((yi >= 0) & (yi < h) & (xi >= 0) & (xi < w), shape6)
    rows = np.broadcast_to((co * h_out + yo) * w_out + xo, shape6)[valid]
    cols = np.broadcast_to((ci * h + yi) * w + xi, shape6)[valid]
    vals = np.broadcast_to(weight[:, :, :, :, None, None], shape6)[valid]
    keep = vals != 0
    return sp.csr_array((vals[keep], (rows[keep], cols[keep])),
                        shape=(c_out * h_out * w_out, c_in * h * w))


def pool_matrix(source_shape: tuple[int, int, int], pooling: int) -> sp.csr_array:
    """(c*(h//p)*(w//p), c*h*w) 0/1 matrix: a source event at (c, y, x) lands at (c, y//p, x//p).

    Events beyond the last full window are dropped (the destination map is h//p x w//p).
    """
    c, h, w = source_shape
    hp, wp = h // pooling, w // pooling
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    keep = (yy // pooling < hp) & (xx // pooling < wp)
    rows = ((cc * hp + yy // pooling) * wp + xx // pooling)[keep]
    cols = ((cc * h + yy) * w + xx)[keep]
    return sp.csr_array((np.ones(rows.size, dtype=np.int64), (rows, cols)),
                        shape=(c * hp * wp, c * h * w))


def _source_map(net: SpeckNetwork, source: Source) -> tuple[int, int, int]:
    if source.is_input:
        shape = net.inputs[source.name]
    else:
        shape = net.layer(source.name).output_shape
    shape = tuple(int(s) for s in shape)
    return shape if len(shape) == 3 else (shape[0], 1, 1)


def to_hwnet(net: SpeckNetwork, unrolled: bool = True) -> HardwareNetwork:
    """Speck layers as a hardware network; ``unrolled=False`` leaves the tables' unrolled
    ``weights`` out (None), for uses that read only the kernels (emitting a config)."""
    populations, tables = {}, []
    for layer in net.layers:
        size = math.prod(layer.output_shape)
        c_out, h_out, w_out = layer.output_shape
        per_neuron = np.repeat(np.arange(c_out), h_out * w_out)
        bias = np.zeros(c_out) if layer.bias is None else np.asarray(layer.bias)
        dtype = np.int64 if net.quantized else np.float64
        params = {
            "threshold_high": np.full(size, layer.threshold_high, dtype=dtype),
            "threshold_low": np.full(size, layer.threshold_low, dtype=dtype),
            "return_to_zero": np.full(size, int(layer.return_to_zero), dtype=np.int64),
            "bias": bias[per_neuron].astype(dtype),
            "v_init": np.zeros(size, dtype=dtype),
        }
        populations[layer.name] = Population(
            name=layer.name, shape=layer.output_shape, params=params, spiking=True,
            provenance=layer.provenance)
        for source in layer.sources:
            src_map = _source_map(net, source)
            matrix = None
            if unrolled:
                matrix = conv_matrix(layer.weight, layer.input_shape, layer.stride,
                                     layer.padding)
                if source.pooling != 1:
                    matrix = sp.csr_array(matrix @ pool_matrix(src_map, source.pooling))
                matrix.sort_indices()
            kernel = {"weight": layer.weight, "kernel_size": layer.kernel,
                      "stride": list(layer.stride), "padding": list(layer.padding),
                      "pooling": source.pooling, "input_shape": list(layer.input_shape),
                      "source_shape": list(src_map), "source_is_input": source.is_input,
                      "has_bias": layer.bias is not None, "scale": layer.scale}
            tables.append(SynapseTable(source=source.name, target=layer.name, weights=matrix,
                                       delay=0, provenance=layer.provenance, kernel=kernel))
    inputs = {name: InputPort(name, tuple(shape)) for name, shape in net.inputs.items()}
    outputs = {name: OutputPort(name, src, "spikes", tuple(shape))
               for name, (src, shape) in net.outputs.items()}
    return HardwareNetwork(neuron_model=MODEL.name, dt=net.dt, inputs=inputs,
                           populations=populations, tables=tuple(tables), outputs=outputs,
                           quantized=net.quantized)


def from_hwnet(hw: HardwareNetwork) -> SpeckNetwork:
    layers = []
    for name, pop in hw.populations.items():
        into = hw.tables_into(name)
        k = into[0].kernel
        c_out = pop.shape[0]
        bias = pop.params["bias"].reshape(c_out, -1)[:, 0] if k["has_bias"] else None
        layers.append(SpeckLayer(
            name=name, provenance=pop.provenance, input_shape=tuple(k["input_shape"]),
            weight=np.asarray(k["weight"]), bias=bias, stride=tuple(k["stride"]),
            padding=tuple(k["padding"]),
            threshold_high=pop.params["threshold_high"][0].item(),
            threshold_low=pop.params["threshold_low"][0].item(),
            return_to_zero=bool(pop.params["return_to_zero"][0]),
            sources=tuple(Source(t.source, t.kernel["pooling"], t.kernel["source_is_input"])
                          for t in into),
            scale=float(k.get("scale", 1.0))))
    return SpeckNetwork(layers=tuple(layers),
                        inputs={n: p.shape for n, p in hw.inputs.items()},
                        outputs={n: (o.source, o.shape) for n, o in hw.outputs.items()},
                        dt=hw.dt, quantized=hw.quantized)


# --- event-driven integer reference ------------------------------------------------------------

def input_events(counts: np.ndarray) -> np.ndarray:
    """Flat indices of one step's events: ascending index, a count n as n consecutive events."""
    flat = np.asarray(counts).reshape(-1)
    if np.any(flat < 0):
        raise ValueError("input event counts must be >= 0")
    idx = np.flatnonzero(flat)
    return np.repeat(idx, flat[idx].astype(np.int64))


def gather_columns(matrix: sp.csc_array, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(target rows, weights) of every event's column, concatenated in event order."""
    starts = matrix.indptr[events]
    lengths = matrix.indptr[events + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=matrix.dtype)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    pos = np.arange(total) + offsets
    return matrix.indices[pos].astype(np.int64), matrix.data[pos]


def update_order_columns(weights: sp.csr_array, shape: tuple[int, ...], dtype=np.int64
                         ) -> tuple[sp.csc_array, np.ndarray]:
    """Columns whose entries run in the chip's update order, and the map back to neurons.

    Rows are renumbered position-major ((y*w + x)*c + ch), so a sorted CSC column
    lists one event's targets in update order; ``neuron_of[row]`` undoes it. The entries
    are ``dtype`` (int64: the chip's integers; float64: the float network's weights).
    """
    c, h, w = (tuple(shape) + (1, 1))[:3] if len(shape) < 3 else shape
    neuron_of = np.arange(c * h * w).reshape(c, h * w).T.reshape(-1)   # position-major -> flat
    row_of = np.empty_like(neuron_of)
    row_of[neuron_of] = np.arange(neuron_of.size)
    coo = sp.coo_array(weights)
    m = sp.csc_array((coo.data.astype(dtype), (row_of[coo.row], coo.col)), shape=weights.shape)
    m.sort_indices()
    return m, neuron_of


def run_reference(hw: HardwareNetwork, inputs: Mapping[str, np.ndarray], steps: int | None = None
                  ) -> dict[str, dict[str, np.ndarray]]:
    """Spike counts and membrane values of every layer, (T, size) per layer, for integer inputs.

    ``inputs[name]`` is (T, *shape) non-negative event counts. Returns
    {"spikes": {layer: (T, size)}, "v": {layer: (T, size)}, "outputs": {name: (T, *shape)}}.
    """
    if not hw.quantized:
        raise ValueError("the Speck integer reference runs a quantized network")
    return _run_events(hw, inputs, steps, np.int64, integrate)


def run_chip_rule_float(hw: HardwareNetwork, inputs: Mapping[str, np.ndarray],
                        steps: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """:func:`run_reference` of the float network (before quantization) at infinite
    precision: the chip's event order and firing rule (threshold tested after every input
    event) with the model's own weights and thresholds, no 16-bit register. What separates
    the chip from the model as trained when quantization costs nothing."""
    if hw.quantized:
        raise ValueError("run_chip_rule_float runs the float network (before speck_quantize)")
    return _run_events(hw, inputs, steps, np.float64, integrate_unbounded)


def _run_events(hw, inputs, steps, dtype, integrate_events):
    T = steps if steps is not None else next(iter(inputs.values())).shape[0]
    order = list(hw.populations)
    csc = {(t.source, t.target): update_order_columns(t.weights, hw.populations[t.target].shape,
                                                      dtype)
           for t in hw.tables}
    state = {n: hw.populations[n].params["v_init"].astype(dtype).copy() for n in order}
    spikes = {n: np.zeros((T, hw.populations[n].size), dtype=np.int64) for n in order}
    vrec = {n: np.zeros((T, hw.populations[n].size), dtype=dtype) for n in order}
    for t in range(T):
        events = {name: input_events(inputs[name][t]) for name in hw.inputs}
        for name in order:
            p = hw.populations[name].params
            th, tl, rz = p["threshold_high"], p["threshold_low"], p["return_to_zero"]
            v = state[name]
            out = [apply_bias(v, p["bias"], th, tl, rz)]
            for table in hw.tables_into(name):
                columns, neuron_of = csc[(table.source, name)]
                rows, weights = gather_columns(columns, events[table.source])
                rows = neuron_of[rows]
                out.append(rows[integrate_events(v, rows, weights, th, tl, rz)])
            events[name] = np.concatenate(out)
            np.add.at(spikes[name][t], events[name], 1)
            vrec[name][t] = v
    outputs = {o.name: spikes[o.source].reshape((T, *o.shape)) for o in hw.outputs.values()}
    return {"spikes": spikes, "v": vrec, "outputs": outputs}
