"""NIR graph -> Speck layers: each core runs Conv2d -> integrate-and-fire -> sum pooling.

Requires a validated NIR graph. Guarantees a list of :class:`SpeckLayer` in
topological order (float parameters, discretised at ``dt`` with
:func:`nirc.simulate.coefficients`, so the float reference and the chip agree on
what a time step is), each with its input sources and their destination pooling,
or a TargetError naming the node and why Speck cannot run it.

Rules (the chip's, as sinabs' DynapcnnNetwork applies them; docs/speck.md):
- Conv2d (+bias) [Scale...] -> IF, or LIF whose leak is below half an LSB of
  the 16-bit state at this dt, is one core. Scale folds into weights and bias.
- Flatten [+ pooling] -> Linear/Affine becomes a Conv2d whose kernel covers the
  whole input (an input that is already 1-d becomes a (C, 1, 1) map).
- SumPool2d / AvgPool2d between a spiking layer (or the input) and a weight
  node become that edge's destination pooling; AvgPool(k) is SumPool(k) with
  the receiving layer's weights scaled by 1/k^2.
- A weight node with several incoming edges is a merge: each source becomes
  a destination of the same core (events add), so every source must arrive
  with the same shape and average-pool factor.
- Pooling straight after the network input is the DVS layer's pooling.
- Recurrence, Delay, CubaLIF/CubaLI, LI, I, Threshold, Conv1d, dilation,
  groups, non-square kernels and per-neuron thresholds fail naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import networkx as nx
import numpy as np

from nirc.errors import TargetError
from nirc.ir.graph import flatten, infer_shapes
from nirc.ir.nodes import (IF, LIF, Affine, AvgPool2d, Conv2d, Flatten, Input, Linear, NIRGraph,
                           Output, Scale, SumPool2d)
from nirc.neuron_models.speck_iaf import STATE_BITS
from nirc.targets.speck.chip import SpeckChip
from nirc.targets.speck.memory import LayerGeometry

WEIGHT_NODES = (Conv2d, Linear, Affine)
NEURON_NODES = (IF, LIF)
POOL_NODES = (SumPool2d, AvgPool2d)
# The float membrane floor of a layer with threshold th; -inf means "the 16-bit register's
# lowest value", which quantization writes without letting it into the scale.
LOW_THRESHOLDS = {"state_min": lambda th: -np.inf, "minus_threshold": lambda th: -th}
SHAPE_NODES = (Flatten,)

UNSUPPORTED_REASON = {
    "Delay": "Speck cores have no synaptic delays",
    "CubaLIF": "Speck neurons have no synaptic current state (only an integrate-and-fire membrane)",
    "CubaLI": "Speck neurons have no synaptic current state and no non-spiking readout",
    "LI": "Speck has no non-spiking leaky integrator; outputs are spikes",
    "I": "Speck has no non-spiking integrator; outputs are spikes",
    "Threshold": "Speck has no stateless threshold unit; use IF",
    "Conv1d": "Speck cores convolve 2-d maps only; reshape the input to (C, 1, W) and use Conv2d",
}


@dataclass(frozen=True)
class Source:
    """Where a layer's input events come from: a layer or a network input, and their pooling."""

    name: str
    pooling: int = 1
    is_input: bool = False


@dataclass(frozen=True)
class SpeckLayer:
    """One core's work: convolution of the (pooled) sources, IAF, spikes to destinations."""

    name: str
    provenance: tuple[str, ...]
    input_shape: tuple[int, int, int]
    weight: np.ndarray                      # (c_out, c_in, k, k), in membrane units per event
    bias: np.ndarray | None                 # (c_out,), membrane units per step
    stride: tuple[int, int]
    padding: tuple[int, int]
    threshold_high: float
    threshold_low: float                    # float: -inf = the register's minimum
    return_to_zero: bool
    sources: tuple[Source, ...]
    scale: float = 1.0                      # integer units per float unit, after quantize
    notes: tuple[str, ...] = field(default=())

    @property
    def kernel(self) -> int:
        return int(self.weight.shape[2])

    @property
    def output_shape(self) -> tuple[int, int, int]:
        g = self.geometry
        return (g.c_out, g.h_out, g.w_out)

    @property
    def geometry(self) -> LayerGeometry:
        c, h, w = self.input_shape
        return LayerGeometry(c_in=c, h_in=h, w_in=w, c_out=int(self.weight.shape[0]),
                             kernel=self.kernel, stride=self.stride, padding=self.padding,
                             has_bias=self.bias is not None)

    def with_(self, **changes) -> "SpeckLayer":
        return replace(self, **changes)


@dataclass(frozen=True)
class SpeckNetwork:
    """Layers in processing order, the network inputs (with DVS pooling) and outputs."""

    layers: tuple[SpeckLayer, ...]
    inputs: dict[str, tuple[int, ...]]        # input name -> NIR shape
    outputs: dict[str, tuple[str, tuple[int, ...]]]   # output name -> (layer, NIR shape)
    dt: float
    quantized: bool = False

    def layer(self, name: str) -> SpeckLayer:
        return next(l for l in self.layers if l.name == name)

    def destinations(self, name: str) -> list[tuple[str, int]]:
        return [(l.name, s.pooling) for l in self.layers for s in l.sources
                if s.name == name and not s.is_input]


def _fail(node: str, message: str, field: str | None = None) -> TargetError:
    return TargetError(message, node=node, field=field)


def lower_to_speck(graph: NIRGraph, chip: SpeckChip, dt: float, method: str = "euler",
                   reset: str = "nir", low_threshold: str = "state_min",
                   convention=None) -> SpeckNetwork:
    """The Speck layers that compute ``graph`` (see the module docstring for the rules).

    ``reset``: "nir" resets to v_reset (must be 0: return_to_zero), "subtract"
    uses the chip's reset by subtraction as sinabs does for every IF layer.
    ``low_threshold``: "state_min" leaves the membrane unfloored as in NIR (the
    float layer holds -inf; quantization writes the lowest 16-bit value and
    keeps it out of the scale), "minus_threshold" floors it at -threshold as
    sinabs' from_nir does.
    ``convention`` (nirc.convention.Convention): the exporter's input scaling is applied
    to the neuron coefficients (e.g. Norse's IAF adds its input unscaled).
    """
    if low_threshold not in LOW_THRESHOLDS:
        raise TargetError(f"low_threshold {low_threshold!r} is not one of "
                          f"{', '.join(LOW_THRESHOLDS)}", field="backend_options.neuron.low_threshold")
    from nirc.simulate import coefficients as nir_coefficients

    def coefficients(node, dt, method, name=""):
        rule = convention.input_rule(node.nir_type) if convention is not None else "nir"
        return nir_coefficients(node, dt, method, name, rule)

    flat = flatten(graph)
    shapes = infer_shapes(flat)
    g = nx.DiGraph()
    g.add_nodes_from(flat.nodes)
    g.add_edges_from(flat.edges)
    for name, node in flat.nodes.items():
        if node.nir_type in UNSUPPORTED_REASON:
            raise _fail(name, f"{node.nir_type} cannot run on Speck: "
                              f"{UNSUPPORTED_REASON[node.nir_type]}")
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        names = " -> ".join(s for s, _ in cycle) + f" -> {cycle[0][0]}"
        raise _fail(cycle[0][0], f"recurrent connection ({names}): Speck cores only feed "
                                 f"forward (sinabs: recurrence is not supported; it can deadlock "
                                 f"the event routing)")

    layers: list[SpeckLayer] = []
    order = list(nx.lexicographical_topological_sort(g, key=list(flat.nodes).index))
    for name in order:
        node = flat.nodes[name]
        if isinstance(node, NEURON_NODES):
            layers.append(_lower_layer(flat, g, shapes, name, chip, dt, method, reset,
                                       low_threshold, coefficients))
    if not layers:
        raise TargetError("the graph has no IF/LIF layer; Speck runs spiking convolutions only")
    by_name = {l.name: l for l in layers}
    for layer in layers:
        for s in layer.sources:
            if not s.is_input and s.name not in by_name:
                raise _fail(layer.name, f"input from '{s.name}' which is not a Speck layer")
    _check_destinations(layers, chip)
    _check_consumers(flat, g, by_name)
    outputs = {}
    for name in flat.outputs():
        src = _spiking_source_of_output(flat, g, name)
        outputs[name] = (src, tuple(shapes[name].input or ()))
    inputs = {name: tuple(shapes[name].output or ()) for name in flat.inputs()}
    return SpeckNetwork(layers=tuple(layers), inputs=inputs, outputs=outputs, dt=dt)


def _single_pred(g: nx.DiGraph, name: str) -> str:
    preds = list(g.predecessors(name))
    if len(preds) != 1:
        raise _fail(name, f"has {len(preds)} inputs ({', '.join(preds) or 'none'}); on Speck only "
                          f"a convolution may sum several inputs")
    return preds[0]


def _lower_layer(flat, g, shapes, neuron_name, chip, dt, method, reset, low_threshold,
                 coefficients) -> SpeckLayer:
    neuron = flat.nodes[neuron_name]
    provenance = [neuron_name]
    # Walk back from the neuron over Scale nodes to the weight node.
    gain = 1.0
    cur = _single_pred(g, neuron_name)
    while isinstance(flat.nodes[cur], Scale):
        gain = gain * np.asarray(flat.nodes[cur].scale, dtype=np.float64)
        provenance.append(cur)
        cur = _single_pred(g, cur)
    wnode = flat.nodes[cur]
    if not isinstance(wnode, WEIGHT_NODES):
        raise _fail(neuron_name, f"is fed by {wnode.nir_type} '{cur}'; a Speck layer needs a "
                                 f"Conv2d, Linear or Affine right before its IF/LIF")
    wname = cur
    provenance.append(wname)
    out_shape = shapes[neuron_name].output

    # Sources of the weight node: each a path [Flatten|pool]* back to a neuron or an Input.
    sources, avg_factors, in_shapes = [], [], []
    for pred in g.predecessors(wname):
        src, pooling, avg, pooled_shape, path = _walk_source(flat, g, shapes, pred, wname, chip)
        provenance.extend(path)
        is_input = isinstance(flat.nodes[src], Input)
        allowed = chip.dvs.pooling if is_input else chip.limits.pooling
        if is_input and pooling > 1:
            c, h, w = _as_map(shapes[src].output)
            if c > chip.dvs.polarities or h > chip.dvs.size[0] or w > chip.dvs.size[1]:
                raise _fail(src, f"input {c}x{h}x{w} is pooled before '{wname}', which only the "
                                 f"DVS layer can do, and it takes at most {chip.dvs.polarities} "
                                 f"polarities of {chip.dvs.size[0]}x{chip.dvs.size[1]}",
                            field="shape")
        if pooling not in allowed:
            pool_node = next(n for n in path if isinstance(flat.nodes[n], POOL_NODES))
            raise _fail(pool_node, f"pooling {pooling}x{pooling} from '{src}' is not one of "
                                   f"{list(allowed)} on Speck"
                                   + (" (the DVS layer's pooling)" if is_input else ""),
                        field="kernel_size")
        sources.append(Source(src, pooling, isinstance(flat.nodes[src], Input)))
        avg_factors.append(avg)
        in_shapes.append(pooled_shape)
    if not sources:
        raise _fail(wname, "has no input")
    if len({tuple(s) for s in in_shapes}) > 1 or len(set(avg_factors)) > 1:
        raise _fail(wname, "merges inputs of different shapes or average-pool factors "
                           f"({', '.join(f'{s.name}: {list(sh)}' for s, sh in zip(sources, in_shapes))}); "
                           "Speck adds the events of every source into one kernel")
    in_shape = tuple(in_shapes[0])
    weight, bias, stride, padding, map_shape = _as_conv(flat, wname, in_shape, chip)
    weight = weight * avg_factors[0]

    coeffs = coefficients(neuron, dt, method, neuron_name)

    def per_channel(values, what: str) -> np.ndarray:
        full = np.broadcast_to(np.asarray(values, dtype=np.float64), out_shape).reshape(
            weight.shape[0], -1)
        if not np.all(full == full[:, :1]):
            raise _fail(neuron_name, f"{what} differs between neurons of one channel; Speck "
                                     f"layers share it per channel", field=what)
        return full[:, 0]

    leak = 1.0 - np.asarray(coeffs.decay_v, dtype=np.float64)
    if np.any(np.abs(leak) * 2 ** (STATE_BITS - 1) >= 0.5):
        raise _fail(neuron_name, f"LIF leaks {np.max(np.abs(leak)):.3g} of v per step at "
                                 f"dt={dt:g} s; Speck neurons do not decay (only a constant "
                                 f"per-step bias). Use IF, a larger tau, or a smaller dt",
                    field="tau")
    threshold = np.broadcast_to(np.asarray(coeffs.v_threshold, dtype=np.float64), out_shape)
    if not np.all(threshold == threshold.flat[0]):
        raise _fail(neuron_name, "thresholds differ between neurons; a Speck layer has one "
                                 "threshold", field="v_threshold")
    threshold_high = float(threshold.flat[0])
    if threshold_high <= 0:
        raise _fail(neuron_name, f"threshold {threshold_high:g} must be > 0 on Speck",
                    field="v_threshold")
    v_reset = np.asarray(coeffs.v_reset if coeffs.v_reset is not None else 0.0)
    if reset == "subtract":
        return_to_zero = False
    elif np.all(v_reset == 0):
        return_to_zero = True
    else:
        raise _fail(neuron_name, f"resets to {float(np.max(np.abs(v_reset))):g}; Speck resets to "
                                 f"0 or by subtracting the threshold", field="v_reset")
    input_gain = per_channel(np.asarray(coeffs.from_x) * gain, "r")
    weight = weight * input_gain[:, None, None, None]
    drive = per_channel(coeffs.rest_v, "v_leak")
    conv_bias = bias * input_gain if bias is not None else np.zeros(weight.shape[0])
    total_bias = conv_bias + drive
    has_bias = bias is not None or np.any(drive != 0)
    layer = SpeckLayer(name=neuron_name, provenance=tuple(dict.fromkeys(reversed(provenance))),
                       input_shape=map_shape, weight=weight,
                       bias=total_bias if has_bias else None, stride=stride, padding=padding,
                       threshold_high=threshold_high,
                       threshold_low=LOW_THRESHOLDS[low_threshold](threshold_high),
                       return_to_zero=return_to_zero, sources=tuple(sources))
    if layer.output_shape != _as_map(out_shape):
        raise _fail(neuron_name, f"shape {list(out_shape)} does not match the convolution output "
                                 f"{list(layer.output_shape)}")
    _check_layer_limits(layer, chip, wname)
    return layer


def _as_map(shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3:
        return shape
    if len(shape) == 1:
        return (shape[0], 1, 1)
    raise ValueError(shape)


def _walk_source(flat, g, shapes, pred, consumer, chip):
    """Follow pred back over Flatten/pool nodes to a neuron or Input: (name, pool, avg, shape, path)."""
    pooling, avg, path = 1, 1.0, []
    cur = pred
    pooled_shape = shapes[pred].output
    while True:
        node = flat.nodes[cur]
        if isinstance(node, NEURON_NODES) or isinstance(node, Input):
            return cur, pooling, avg, pooled_shape, path
        path.append(cur)
        if isinstance(node, POOL_NODES):
            (kh, kw), (sh, sw), (ph, pw) = node.windows()
            if not (kh == kw == sh == sw) or ph or pw:
                raise _fail(cur, f"pooling kernel {[kh, kw]}, stride {[sh, sw]}, padding "
                                 f"{[ph, pw]}: Speck pools square windows with stride = size "
                                 f"and no padding", field="kernel_size")
            pooling *= kh
            if isinstance(node, AvgPool2d):
                avg /= kh * kw
        elif not isinstance(node, SHAPE_NODES):
            raise _fail(cur, f"{node.nir_type} between a spiking layer and '{consumer}' cannot run "
                             f"on Speck (only pooling and Flatten may sit there)")
        if len(list(g.successors(cur))) > 1 and isinstance(node, POOL_NODES):
            raise _fail(cur, "pooling output feeds several nodes; give each destination its own "
                             "pooling node")
        cur = _single_pred(g, cur)


def _as_conv(flat, wname, in_shape, chip):
    """Weight node as (weight (co,ci,k,k), bias|None, stride, padding, input map shape)."""
    node = flat.nodes[wname]
    if isinstance(node, Conv2d):
        if len(in_shape) != 3:
            raise _fail(wname, f"expects a (C, H, W) input, got {list(in_shape)}")
        if node.groups != 1:
            raise _fail(wname, "grouped convolutions cannot run on Speck", field="groups")
        if node.dilation_t() != (1, 1):
            raise _fail(wname, "dilated convolutions cannot run on Speck", field="dilation")
        kh, kw = node.kernel
        if kh != kw:
            raise _fail(wname, f"kernel {kh}x{kw} is not square; Speck kernels are k x k",
                        field="weight")
        pads = node.padding_lohi()
        if any(lo != hi for lo, hi in pads):
            raise _fail(wname, f"asymmetric padding {[list(p) for p in pads]} cannot run on Speck",
                        field="padding")
        bias = None if node.bias is None else np.broadcast_to(
            np.asarray(node.bias, dtype=np.float64), (node.weight.shape[0],)).copy()
        return (np.asarray(node.weight, dtype=np.float64), bias, node.stride_t(),
                (pads[0][0], pads[1][0]), tuple(int(s) for s in in_shape))
    # Linear / Affine: a convolution whose kernel covers the input map.
    weight = np.asarray(node.weight, dtype=np.float64)
    c_out = weight.shape[0]
    map_shape = _map_shape_before_flatten(flat, wname, in_shape)
    c, h, w = map_shape
    if h != w:
        raise _fail(wname, f"input map {h}x{w} is not square, so the equivalent convolution "
                           f"kernel would not be square (Speck kernels are k x k)")
    kernel = weight.reshape(c_out, c, h, w)
    bias = None
    if isinstance(node, Affine):
        bias = np.broadcast_to(np.asarray(node.bias, dtype=np.float64), (c_out,)).copy()
    return kernel, bias, (1, 1), (0, 0), map_shape


def _map_shape_before_flatten(flat, wname, in_shape):
    """The (C, H, W) map a Linear's flat input came from (a 1-d input is (N, 1, 1))."""
    cur = wname
    while True:
        preds = [p for p, t in flat.edges if t == cur]
        if not preds:
            break
        node = flat.nodes[preds[0]]
        if isinstance(node, Flatten):
            shape = infer_shapes(flat)[preds[0]].input
            if shape is not None and len(shape) == 3:
                if node.dims(3) != (0, 2):
                    raise _fail(preds[0], "only a Flatten of the whole (C, H, W) map can feed a "
                                          "Linear layer on Speck", field="start_dim")
                return tuple(int(s) for s in shape)
            break
        if isinstance(node, POOL_NODES):
            cur = preds[0]
            continue
        break
    return _as_map(in_shape)


def _check_layer_limits(layer: SpeckLayer, chip: SpeckChip, wname: str) -> None:
    lim = chip.limits
    c, h, w = layer.input_shape
    problems = []
    if max(h, w) > lim.max_input_size:
        problems.append((f"input map {h}x{w} exceeds {lim.max_input_size}x{lim.max_input_size}",
                         None))
    if c > lim.max_channels or layer.weight.shape[0] > lim.max_channels:
        problems.append((f"{c} input / {layer.weight.shape[0]} output channels exceed "
                         f"{lim.max_channels}", None))
    if layer.kernel > lim.max_kernel_size:
        problems.append((f"kernel {layer.kernel}x{layer.kernel} exceeds "
                         f"{lim.max_kernel_size}x{lim.max_kernel_size}", "weight"))
    if any(s not in lim.strides for s in layer.stride):
        problems.append((f"stride {list(layer.stride)} is not one of {list(lim.strides)} per axis",
                         "stride"))
    if any(p > lim.max_padding for p in layer.padding):
        problems.append((f"padding {list(layer.padding)} exceeds {lim.max_padding}", "padding"))
    if problems:
        message, fld = problems[0]
        raise _fail(wname, message + " on Speck", field=fld)


def _check_destinations(layers: list[SpeckLayer], chip: SpeckChip) -> None:
    targets: dict[str, list[str]] = {}
    for layer in layers:
        for s in layer.sources:
            targets.setdefault(s.name, []).append(layer.name)
    for src, dests in targets.items():
        is_input = any(s.is_input and s.name == src for l in layers for s in l.sources)
        cap = chip.dvs.max_destinations if is_input else chip.limits.max_destinations
        if len(dests) > cap:
            raise _fail(src, f"sends spikes to {len(dests)} layers ({', '.join(dests)}); a Speck "
                             f"{'DVS layer' if is_input else 'core'} has {cap} destinations")
        if is_input:
            pools = {s.pooling for l in layers for s in l.sources if s.name == src}
            if len(pools) > 1:
                raise _fail(src, f"input pooled differently for different layers "
                                 f"({sorted(pools)}); the DVS layer has one pooling")


def _check_consumers(flat, g, by_name) -> None:
    """Every edge leaving a neuron is accounted for by a layer source or an Output."""
    for name in by_name:
        for succ in g.successors(name):
            node = flat.nodes[succ]
            if not isinstance(node, (Output, Flatten, *POOL_NODES, *WEIGHT_NODES)):
                raise _fail(succ, f"{node.nir_type} after spiking layer '{name}' cannot run on "
                                  f"Speck")


def _spiking_source_of_output(flat, g, out_name) -> str:
    cur = _single_pred(g, out_name)
    path = []
    while isinstance(flat.nodes[cur], Flatten):
        path.append(cur)
        cur = _single_pred(g, cur)
    if not isinstance(flat.nodes[cur], NEURON_NODES):
        raise _fail(out_name, f"reads {flat.nodes[cur].nir_type} '{cur}'; Speck outputs are the "
                              f"spikes of an IF/LIF layer")
    return cur
