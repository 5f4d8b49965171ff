"""What reading a Xylo build back requires of its config.json and arrays.npz.

A build directory may be damaged or edited by hand before ``nirc emulate`` reads
it. :func:`check` refuses such a build with one nirc.build_schema.Problem naming
the file, the node and the dotted field, before anything runs:

- the fields nirc.targets.xylo.config.read_config and XyloBuild read (pydantic
  models, strict; other fields such as ``device`` are left to their writer);
- the arrays file: a file in the build directory, every array
  nirc.neuron_models.xylo_lif.XyloSpec holds present, integer, with the rank and
  the sizes its neighbours give (weights_in (Nin, Nh, 2), weights_rec
  (Nh, Nh, 2), weights_out (Nh, Nout), per-neuron values (Nh,) or (Nout,));
- the references: aliases one list per hidden neuron, input channel and neuron
  ranges inside the fabric holding as many values as their shapes, relay
  outputs' charges, voltage scales one per output value.

Value ranges (an 8-bit weight, a 4-bit dash) stay XyloSpec.validate's business.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import numpy as np
from pydantic import Field, StrictFloat, StrictInt, StrictStr

from nirc.build_schema import Part, Problem, member, read_arrays, validated

# Every array of a Xylo build together, stored (the largest Xylo's, 1000 hidden neurons, take
# about 2 MB); the fabric works on int64 copies, 8x an int8 array.
MAX_ARRAY_BYTES = 64 << 20

Index = Annotated[StrictInt, Field(ge=0, le=1 << 40)]
Extent = Annotated[StrictInt, Field(ge=1, le=1 << 40)]
# (A strict float takes an integer too.)
Positive = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]


class Specification(Part):
    arrays: StrictStr
    weight_shift_in: StrictInt
    weight_shift_rec: StrictInt
    weight_shift_out: StrictInt
    aliases: list[list[Index]]
    dt: Positive


class Placed(Part):
    name: StrictStr
    shape: list[Extent] = Field(max_length=8)


class InputPort(Placed):
    channels: tuple[Index, Index]


class Section(Placed):
    neurons: tuple[Index, Index]


class Output(Section):
    quantity: Literal["spikes", "v"]
    read: Literal["i_syn_out"] | None = None
    charges_per_spike: list[Annotated[StrictInt, Field(ge=-(1 << 30), le=1 << 30)]] | None = None
    v_scale: list[Annotated[StrictFloat, Field(allow_inf_nan=False)]] | None = None


class XyloConfig(Part):
    specification: Specification
    inputs: list[InputPort] = Field(min_length=1)       # the fabric runs as long as its input
    hidden: list[Section]
    readout: list[Section]
    outputs: list[Output]


def _node_of(config: Mapping[str, Any]):
    """The name of the port, population or output a field's location lies in."""
    def node(loc: tuple) -> str | None:
        if len(loc) >= 2 and loc[0] in ("inputs", "hidden", "readout", "outputs"):
            try:
                name = config[loc[0]][loc[1]]["name"]
            except (KeyError, IndexError, TypeError):
                return None
            return name if isinstance(name, str) else None
        return None
    return node


def check(build: Path, config: Mapping[str, Any]) -> tuple[XyloConfig, dict[str, np.ndarray]]:
    """The config as read_config reads it and its arrays (integer, shapes fitting together),
    or a Problem naming what does not fit (see the module doc)."""
    cfg = validated(XyloConfig, config, _node_of(config))
    spec = cfg.specification
    arrays = read_arrays(build, spec.arrays, "specification.arrays", MAX_ARRAY_BYTES)
    file = str(build / spec.arrays)
    n_in, n_hidden, _ = member(arrays, "weights_in", (None, None, 2), file).shape
    member(arrays, "weights_rec", (n_hidden, n_hidden, 2), file)
    n_out = member(arrays, "weights_out", (n_hidden, None), file).shape[1]
    for key in ("dash_mem", "dash_syn", "dash_syn_2", "threshold", "bias"):
        member(arrays, key, (n_hidden,), file)
    for key in ("dash_mem_out", "dash_syn_out", "threshold_out", "bias_out"):
        member(arrays, key, (n_out,), file)

    if spec.aliases and len(spec.aliases) != n_hidden:
        raise Problem("specification.aliases", f"{len(spec.aliases)} entries, expected one per "
                                               f"hidden neuron ({n_hidden})")
    for i, targets in enumerate(spec.aliases):
        for j, t in enumerate(targets):
            if t >= n_hidden:
                raise Problem(f"specification.aliases.{i}.{j}", f"hidden neuron {i} aliases "
                                                                f"neuron {t}, which does not exist")
    for section, items, key, bound in (("inputs", cfg.inputs, "channels", n_in),
                                       ("hidden", cfg.hidden, "neurons", n_hidden),
                                       ("readout", cfg.readout, "neurons", n_out),
                                       ("outputs", cfg.outputs, "neurons", n_out)):
        seen: set[str] = set()
        for i, p in enumerate(items):
            where = f"{section}.{i}"
            if p.name in seen:
                raise Problem(f"{where}.name", f"name '{p.name}' is used twice", p.name)
            seen.add(p.name)
            start, stop = getattr(p, key)
            if not start <= stop <= bound:
                raise Problem(f"{where}.{key}", f"{key} {start}..{stop} are not inside the "
                                                f"fabric's {bound}", p.name)
            size, count = math.prod(p.shape), stop - start
            if section == "outputs" and p.read == "i_syn_out":
                _relay(p, where, count, size)
            elif size != count:
                raise Problem(f"{where}.shape", f"shape {p.shape} holds {size} values, its "
                                                f"{key} {start}..{stop} {count}", p.name)
            if section == "outputs" and p.v_scale is not None and len(p.v_scale) != size:
                raise Problem(f"{where}.v_scale", f"{len(p.v_scale)} scales for {size} values",
                              p.name)
    return cfg, arrays


def _relay(p: Output, where: str, relays: int, size: int) -> None:
    """A relay output: one or two nonzero charges per relay, enough relays for its shape."""
    charges = p.charges_per_spike
    if charges is None:
        raise Problem(f"{where}.charges_per_spike", "required where read is 'i_syn_out'", p.name)
    if len(charges) not in (1, 2) or 0 in charges:
        raise Problem(f"{where}.charges_per_spike", f"must be one or two nonzero charges, got "
                                                    f"{charges}", p.name)
    if size > relays * len(charges):
        raise Problem(f"{where}.shape", f"shape {p.shape} holds {size} values, its {relays} "
                                        f"relays decode {relays * len(charges)}", p.name)
