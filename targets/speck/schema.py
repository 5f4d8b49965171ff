"""What the Speck emulator requires of a build's config.json (samna's vocabulary plus ``nirc``).

A build directory may be damaged or edited by hand before ``nirc emulate`` reads
it. :func:`check` refuses such a config with one nirc.build_schema.Problem naming
the node (the layer a core computes, an input, an output) and the dotted field,
before anything runs — the compiled event engine indexes its arrays unchecked,
so what reaches it must fit:

- the fields nirc.targets.speck.emulate reads (pydantic models, strict): every
  ``cnn_layers`` entry's dimensions, weights, biases, initial values,
  thresholds and destinations, ``readout``, and the ``nirc`` section's layers,
  sources, processing order, inputs and outputs; ``dvs_layer`` and fields the
  emulator does not read are left to their writer;
- the references: a layer's core exists and is no other layer's, its weights
  hold (c_out, c_in, k, k) values, biases one per output channel, initial
  values one per neuron, its maps no larger than MAX_MAP; each source is an
  input or a layer processed before it, has the channels the core's input map
  has, and a layer source's core routes to this core with the same pooling;
  the processing order lists every layer's core once; an output's shape holds
  its layer's neurons.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Mapping, Optional

import numpy as np
from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

from nirc.build_schema import Part, Problem, validated

# Neurons of one core's input or output map, and values of one input: a Speck core holds at
# most 64 Ki neurons and its sensor 128 x 128 x 2 pixels; the emulator's tables grow with these.
MAX_MAP = 1 << 22
Word = Annotated[StrictInt, Field(ge=-(1 << 31), lt=1 << 31)]
Size = Annotated[StrictInt, Field(ge=0, le=MAX_MAP)]
Step = Annotated[StrictInt, Field(ge=1, le=MAX_MAP)]


class XY(Part):
    x: Size
    y: Size


class StepXY(Part):
    x: Step
    y: Step


class MapShape(Part):
    size: XY
    feature_count: Size


class Dimensions(Part):
    input_shape: MapShape
    output_shape: MapShape
    padding: XY
    stride: StepXY
    kernel_size: Step


class Destination(Part):
    layer: StrictInt
    enable: StrictBool
    pooling: Step


class CnnLayer(Part):
    dimensions: Dimensions
    weights: list[list[list[list[Word]]]]                 # [c_out][c_in][kx][ky]
    biases: list[Word]
    leak_enable: StrictBool
    neurons_initial_value: list[list[list[Word]]]         # [c_out][x][y]
    threshold_high: Word
    threshold_low: Word
    return_to_zero: StrictBool
    destinations: list[Destination]


class Readout(Part):
    enable: StrictBool


class Source(Part):
    source: StrictStr
    is_input: StrictBool
    core: Optional[StrictInt]
    pooling: Step


class Layer(Part):
    core: Annotated[StrictInt, Field(ge=0)]
    sources: list[Source]


class InputPort(Part):
    shape: list[Step] = Field(min_length=1, max_length=3)


class OutputPort(Part):
    layer: StrictStr
    shape: list[Step] = Field(max_length=8)


class NircSection(Part):
    dt: Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]     # (takes an integer too)
    layers: dict[StrictStr, Layer]
    processing_order: list[StrictInt]
    inputs: dict[StrictStr, InputPort] = Field(min_length=1)
    outputs: dict[StrictStr, OutputPort]


class SpeckConfig(Part):
    cnn_layers: list[CnnLayer]
    readout: Optional[Readout] = None
    nirc: NircSection


def _node_of(config: Mapping[str, Any]):
    """The layer, input or output a field's location lies in (a core: the layer it computes)."""
    def node(loc: tuple) -> str | None:
        if len(loc) >= 3 and loc[0] == "nirc" and loc[1] in ("layers", "inputs", "outputs"):
            return str(loc[2])
        if len(loc) >= 2 and loc[0] == "cnn_layers":
            layers = config.get("nirc", {}).get("layers") if isinstance(config.get("nirc"), dict) \
                else None
            for name, spec in (layers.items() if isinstance(layers, dict) else ()):
                if isinstance(spec, dict) and spec.get("core") == loc[1]:
                    return name
        return None
    return node


def _integers(values: list, field: str, size: int, node: str) -> None:
    """``values``: nested lists of integers, rectangular, holding ``size`` of them."""
    try:
        a = np.asarray(values, dtype=np.int64)
    except ValueError:
        raise Problem(field, "nested lists of unequal lengths", node) from None
    if a.size != size:
        raise Problem(field, f"{a.size} values, expected {size}", node)


def _map(shape: tuple[int, int, int], field: str, node: str) -> int:
    size = math.prod(shape)
    if min(shape) < 1 or size > MAX_MAP:
        raise Problem(field, f"map (c, y, x) = {shape} must have every extent at least 1 and "
                             f"at most {MAX_MAP} neurons", node)
    return size


def check(config: Mapping[str, Any]) -> SpeckConfig:
    """The config as the emulator reads it, or a Problem naming what does not fit (module doc)."""
    cfg = validated(SpeckConfig, config, _node_of(config))
    nirc = cfg.nirc
    n_cores = len(cfg.cnn_layers)
    used: dict[int, str] = {}
    for name, layer in nirc.layers.items():
        if layer.core >= n_cores:
            raise Problem(f"nirc.layers.{name}.core", f"core {layer.core} does not exist (the "
                                                      f"config has {n_cores})", name)
        if layer.core in used:
            raise Problem(f"nirc.layers.{name}.core", f"core {layer.core} also computes layer "
                                                      f"'{used[layer.core]}'", name)
        used[layer.core] = name
    for name in nirc.inputs.keys() & nirc.layers.keys():
        raise Problem(f"nirc.inputs.{name}", f"'{name}' names both an input and a layer", name)

    in_maps: dict[str, tuple[int, int, int]] = {}
    out_maps: dict[str, tuple[int, int, int]] = {}
    for name, layer in nirc.layers.items():
        where = f"cnn_layers.{layer.core}"
        core = cfg.cnn_layers[layer.core]
        dims = core.dimensions
        c_in, c_out, k = dims.input_shape.feature_count, dims.output_shape.feature_count, \
            dims.kernel_size
        in_maps[name] = (c_in, dims.input_shape.size.y, dims.input_shape.size.x)
        out_maps[name] = (c_out, dims.output_shape.size.y, dims.output_shape.size.x)
        _map(in_maps[name], f"{where}.dimensions.input_shape", name)
        neurons = _map(out_maps[name], f"{where}.dimensions.output_shape", name)
        if c_out * c_in * k * k > MAX_MAP:
            raise Problem(f"{where}.dimensions.kernel_size", f"a {c_out} x {c_in} x {k} x {k} "
                                                             f"kernel is larger than {MAX_MAP}",
                          name)
        _integers(core.weights, f"{where}.weights", c_out * c_in * k * k, name)
        if len(core.biases) != c_out:
            raise Problem(f"{where}.biases", f"{len(core.biases)} biases for {c_out} output "
                                             f"channels", name)
        _integers(core.neurons_initial_value, f"{where}.neurons_initial_value", neurons, name)

    for name in nirc.inputs:
        shape = nirc.inputs[name].shape
        if len(shape) == 2:
            raise Problem(f"nirc.inputs.{name}.shape", f"must be (c,) or (c, y, x), got {shape}",
                          name)
        out_maps[name] = tuple(shape) if len(shape) == 3 else (shape[0], 1, 1)
        _map(out_maps[name], f"nirc.inputs.{name}.shape", name)

    order = {}
    for i, core in enumerate(nirc.processing_order):
        if core not in used or core in order:
            raise Problem(f"nirc.processing_order.{i}", f"core {core} is not the core of a "
                                                        f"layer, or is listed twice")
        order[core] = i
    for name, layer in nirc.layers.items():
        if layer.core not in order:
            raise Problem("nirc.processing_order", f"does not list core {layer.core} of layer "
                                                   f"'{name}'", name)
    for name, layer in nirc.layers.items():
        for i, s in enumerate(layer.sources):
            where = f"nirc.layers.{name}.sources.{i}"
            if s.is_input:
                if s.source not in nirc.inputs:
                    raise Problem(f"{where}.source", f"no input named '{s.source}'", name)
            else:
                if s.source not in nirc.layers:
                    raise Problem(f"{where}.source", f"no layer named '{s.source}'", name)
                source = nirc.layers[s.source]
                if s.core != source.core:
                    raise Problem(f"{where}.core", f"layer '{s.source}' is computed on core "
                                                   f"{source.core}, not {s.core}", name)
                if order[source.core] >= order[layer.core]:
                    raise Problem(f"{where}.source", f"layer '{s.source}' is not processed "
                                                     f"before '{name}'", name)
            if out_maps[s.source][0] != in_maps[name][0]:
                raise Problem(f"{where}.source", f"'{s.source}' has {out_maps[s.source][0]} "
                                                 f"channels, core {layer.core}'s input map "
                                                 f"{in_maps[name][0]}", name)

    for name, out in nirc.outputs.items():
        where = f"nirc.outputs.{name}"
        if out.layer not in nirc.layers:
            raise Problem(f"{where}.layer", f"no layer named '{out.layer}'", name)
        neurons = math.prod(out_maps[out.layer])
        if math.prod(out.shape) != neurons:
            raise Problem(f"{where}.shape", f"shape {out.shape} holds {math.prod(out.shape)} "
                                            f"values, layer '{out.layer}' {neurons}", name)
    return cfg
