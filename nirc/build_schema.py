"""What the emulator requires of a build's config.json (nirc's generic deployment format).

A build directory may be damaged or edited by hand before ``nirc emulate`` reads it.
:func:`check` refuses such a config with one problem, naming the field by its
dotted path (``outputs.0.copies.1``), before anything runs:

- the structure, types and bounds of every field the emulator reads (pydantic
  models, strict: a string is not a number, a number not a flag); fields it does
  not read (``nodes``, ``routing``, ``system``...) are left to their writers;
- the references between them: names unique, outputs, copies, tables and
  blocks naming populations that exist, shapes matching sizes, table shapes
  matching their endpoints, blocks inside their population and core, array
  references present in the arrays file with the length they must have, the
  neuron model's parameters and table fields all given as integers where the
  model is integer.

Register ranges (a threshold wider than the chip's field) stay the neuron
model's business; what is checked here is what would otherwise stop the
emulator half-way with a Python error.

Backends with their own config format check it the same way with the pieces
here (nirc.targets.xylo.schema, nirc.targets.speck.schema): :class:`Problem`,
:func:`validated` (a pydantic model, the first error as a Problem),
:func:`read_arrays` (the arrays file, inside the build directory, headers
checked) and :func:`member` (one array's shape and kind).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Callable, Mapping, TypeVar, Union

import numpy as np
from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt,
                      StrictStr, ValidationError)

from nirc.errors import NircError
from nirc.npzio import read_archive

Count = Annotated[StrictInt, Field(ge=0)]
Extent = Annotated[StrictInt, Field(ge=1)]
# "arrays.npz:tables/0/row": the arrays file's member holding the values.
ArrayRef = Annotated[StrictStr, Field(pattern=r"^[^:]*:.+$")]
Number = Union[StrictInt, Annotated[StrictFloat, Field(allow_inf_nan=False)]]
Value = Union[Number, ArrayRef]
# Larger than any chip nirc targets holds, small enough that no size overflows int64.
MAX_COUNT = 1 << 40
M = TypeVar("M", bound=BaseModel)


class Part(BaseModel):
    """A section of a build's config: the fields a loader reads; others (its writer's notes)
    pass unchecked."""

    model_config = ConfigDict(extra="allow")


class Port(Part):
    name: StrictStr
    shape: list[Extent] = Field(max_length=8)


class Output(Port):
    source: StrictStr
    quantity: StrictStr
    copies: list[StrictStr] = []
    copy_weights: list[Annotated[StrictInt, Field(ge=1, le=1 << 16)]] = []


class PopulationConfig(Part):
    name: StrictStr
    shape: list[Extent] = Field(max_length=8)
    size: Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
    spiking: StrictBool
    params: dict[StrictStr, Value]
    v_scale: Value | None = None
    v_offset: Value | None = None
    profiles: list[dict[StrictStr, Number]] | None = None
    profile: Value | None = None


class Weights(Part):
    row: ArrayRef
    col: ArrayRef
    value: ArrayRef


class TableConfig(Part):
    id: Count
    source: StrictStr
    target: StrictStr
    shape: tuple[Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)],
                 Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]]
    delay: Annotated[StrictInt, Field(ge=1, le=1 << 16)]
    weights: Weights


class Block(Part):
    population: StrictStr
    start: Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
    stop: Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
    offset: Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]


class Stored(Part):
    table: Count
    rows: tuple[Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)],
                Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]]
    offset: Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]


class CoreConfig(Part):
    core: Count
    neurons: Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
    blocks: list[Block]
    synapses: list[Stored]


class BuildConfig(Part):
    neuron_model: StrictStr
    dt: Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]
    arrays: StrictStr
    inputs: list[Port]
    outputs: list[Output]
    populations: list[PopulationConfig]
    tables: list[TableConfig]
    cores: list[CoreConfig]


class Problem(ValueError):
    """One thing wrong with a build: the dotted field, the node it concerns, the message; the
    file when it is not the config itself (the arrays file)."""

    def __init__(self, field: str | None, message: str, node: str | None = None,
                 file: str | None = None, missing: bool = False):
        super().__init__(message)
        self.field, self.message, self.node, self.file = field, message, node, file
        self.missing = missing          # a required field is absent (``field`` names it)

    def error(self, kind: type[NircError], config: str) -> NircError:
        """The problem as the one-line error ``kind`` (file: node, parameter: message)."""
        return kind(self.message, file=self.file or config, node=self.node, field=self.field)


def validated(model: type[M], data: Any, node_of: Callable[[tuple], str | None] = lambda loc: None
              ) -> M:
    """``data`` as ``model`` reads it, or a Problem naming the first field that is wrong
    (``node_of`` names the node a field's location belongs to, where there is one)."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        node = node_of(tuple(first["loc"]))
        if first["type"] == "missing":
            raise Problem(field, "required field missing", node, missing=True) from None
        got = first.get("input")
        shown = repr(got) if isinstance(got, (int, float, str, bool)) or got is None \
            else type(got).__name__
        raise Problem(field, f"{first['msg'][0].lower()}{first['msg'][1:]}, got {shown[:60]}",
                      node) from None


def structure(config: Mapping[str, Any]) -> BuildConfig:
    """The config as the emulator reads it, or a Problem naming the first field that is wrong."""
    return validated(BuildConfig, config)


def read_arrays(build: Path, name: str, field: str, budget: int) -> dict[str, np.ndarray]:
    """The arrays file a config names in ``field``: a file in the build directory, every
    member read after its header is checked (nirc.npzio.read_archive), ``budget`` bytes at
    most; a Problem naming that file if it cannot be read."""
    if Path(name).name != name:
        raise Problem(field, f"must name a file in the build directory, got {name!r}")
    path = build / name
    try:
        return read_archive(str(path), budget)
    except NircError as err:
        raise Problem(None, err.message, file=str(path)) from None


def member(arrays: Mapping[str, np.ndarray], key: str, shape: tuple[int | None, ...],
           file: str, what: str = "integers") -> np.ndarray:
    """The arrays file's member ``key`` with ``shape`` (None: any extent) holding ``what``
    ("integers" or "numbers"), or a Problem naming that file and the member."""
    if key not in arrays:
        raise Problem(key, "missing from the arrays file", file=file)
    a = arrays[key]
    if a.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, a.shape)):
        want = ", ".join("n" if n is None else str(n) for n in shape)
        raise Problem(key, f"shape {a.shape}, expected ({want}{',' if len(shape) == 1 else ''})",
                      file=file)
    if not _holds(a, what):
        raise Problem(key, f"holds {a.dtype} values, expected {what}", file=file)
    return a


def _holds(a: np.ndarray, what: str) -> bool:
    """Whether ``a`` holds ``what``: "integers" (signed or not) or "numbers" (floats too)."""
    return a.dtype.kind in ("iu" if what == "integers" else "iuf")


def references(cfg: BuildConfig, arrays: Mapping[str, np.ndarray], model) -> None:
    """Raise a Problem where the config's parts do not fit together (see the module doc)."""
    integer = np.dtype(model.dtype).kind in "iu"

    def unique(items, what: str) -> dict:
        seen: dict = {}
        for i, item in enumerate(items):
            if item.name in seen:
                raise Problem(f"{what}.{i}.name", f"name '{item.name}' is used twice")
            seen[item.name] = item
        return seen

    def array(ref: str, field: str, length: int | None, node: str | None = None,
              whole: bool | None = None) -> np.ndarray:
        key = ref.partition(":")[2]
        if key not in arrays:
            raise Problem(field, f"the arrays file has no member '{key}'", node)
        a = arrays[key]
        if a.ndim != 1 or (length is not None and a.size not in (1, length)):
            want = "1" if length is None else f"1 or {length}"
            raise Problem(field, f"array '{key}' has shape {a.shape}, expected ({want},)", node)
        what = "integers" if (integer if whole is None else whole) else "numbers"
        if not _holds(a, what):
            raise Problem(field, f"array '{key}' holds {a.dtype} values, expected {what}", node)
        return a

    def number(value, field: str, size: int, node: str) -> None:
        if isinstance(value, str):
            array(value, field, size, node)
        elif integer and not isinstance(value, int):
            raise Problem(field, f"must be an integer for neuron model '{model.name}', got "
                                 f"{value!r}", node)

    inputs = unique(cfg.inputs, "inputs")
    populations = unique(cfg.populations, "populations")
    unique(cfg.outputs, "outputs")
    for name in inputs.keys() & populations.keys():
        raise Problem("inputs", f"'{name}' names both an input and a population", name)
    for i, p in enumerate(cfg.populations):
        where = f"populations.{i}"
        if math.prod(p.shape) != p.size:
            raise Problem(f"{where}.size", f"size {p.size} but shape {p.shape} holds "
                                           f"{math.prod(p.shape)}", p.name)
        for k in model.param_names:
            if k not in p.params:
                raise Problem(f"{where}.params.{k}", "required field missing", p.name)
            number(p.params[k], f"{where}.params.{k}", p.size, p.name)
        for k in ("v_scale", "v_offset"):
            value = getattr(p, k)
            if isinstance(value, str):
                array(value, f"{where}.{k}", p.size, p.name, whole=False)
        if p.profiles is not None:
            if p.profile is None:
                raise Problem(f"{where}.profile", "required where profiles are given", p.name)
            if isinstance(p.profile, str):
                array(p.profile, f"{where}.profile", p.size, p.name, whole=True)
            elif not isinstance(p.profile, int):
                raise Problem(f"{where}.profile", f"must be an integer, got {p.profile!r}",
                              p.name)
            for j, prof in enumerate(p.profiles):
                for k, value in prof.items():
                    if k not in model.param_names:
                        raise Problem(f"{where}.profiles.{j}.{k}",
                                      f"not a parameter of neuron model '{model.name}'", p.name)
                    number(value, f"{where}.profiles.{j}.{k}", p.size, p.name)
    sizes = {**{n: math.prod(p.shape) for n, p in inputs.items()},
             **{n: p.size for n, p in populations.items()}}
    for i, o in enumerate(cfg.outputs):
        where = f"outputs.{i}"
        if o.source not in populations:
            raise Problem(f"{where}.source", f"no population named '{o.source}'", o.name)
        pop = populations[o.source]
        if math.prod(o.shape) != pop.size:
            raise Problem(f"{where}.shape", f"shape {o.shape} holds {math.prod(o.shape)} "
                                            f"values, its source '{o.source}' {pop.size}", o.name)
        if o.quantity != "spikes" and o.quantity not in model.state_names:
            raise Problem(f"{where}.quantity", f"must be 'spikes' or a state of neuron model "
                                               f"'{model.name}' ({', '.join(model.state_names)})"
                                               f", got {o.quantity!r}", o.name)
        if o.quantity == "spikes" and not pop.spiking:
            raise Problem(f"{where}.quantity", f"population '{o.source}' does not spike", o.name)
        for j, c in enumerate(o.copies):
            if c not in populations or populations[c].size != pop.size \
                    or not populations[c].spiking:
                raise Problem(f"{where}.copies.{j}", f"'{c}' is not a spiking population of "
                                                     f"{pop.size} neurons", o.name)
        if o.copy_weights and len(o.copy_weights) != len(o.copies):
            raise Problem(f"{where}.copy_weights", f"{len(o.copy_weights)} weights for "
                                                   f"{len(o.copies)} copies", o.name)
    for i, t in enumerate(cfg.tables):
        where = f"tables.{i}"
        if t.id != i:
            raise Problem(f"{where}.id", f"table {i} has id {t.id}")
        if t.source not in sizes:
            raise Problem(f"{where}.source", f"no input or population named '{t.source}'",
                          t.target)
        if t.target not in populations:
            raise Problem(f"{where}.target", f"no population named '{t.target}'")
        if t.shape != (sizes[t.target], sizes[t.source]):
            raise Problem(f"{where}.shape", f"shape {list(t.shape)}, but '{t.target}' has "
                                            f"{sizes[t.target]} neurons and '{t.source}' "
                                            f"{sizes[t.source]}", t.target)
        for k in model.table_fields:
            if k not in (t.model_extra or {}):
                continue
            value = t.model_extra[k]
            if not isinstance(value, int) or isinstance(value, bool):
                raise Problem(f"{where}.{k}", f"must be an integer, got {value!r}", t.target)
        parts = {k: array(getattr(t.weights, k), f"{where}.weights.{k}", None, t.target,
                          whole=k != "value" or None)
                 for k in ("row", "col", "value")}
        lengths = {a.size for a in parts.values()}
        if len(lengths) != 1:
            raise Problem(f"{where}.weights", f"row, col and value arrays differ in length "
                                              f"({', '.join(str(a.size) for a in parts.values())})",
                          t.target)
        for k, bound in (("row", t.shape[0]), ("col", t.shape[1])):
            a = parts[k]
            if a.size and (a.min() < 0 or a.max() >= bound):
                raise Problem(f"{where}.weights.{k}", f"indices must lie in 0..{bound - 1}",
                              t.target)
    for i, c in enumerate(cfg.cores):
        where = f"cores.{i}"
        for j, b in enumerate(c.blocks):
            if b.population not in populations:
                raise Problem(f"{where}.blocks.{j}.population",
                              f"no population named '{b.population}'")
            if not b.start <= b.stop <= populations[b.population].size:
                raise Problem(f"{where}.blocks.{j}", f"neurons {b.start}..{b.stop} are not "
                                                     f"inside the population's "
                                                     f"{populations[b.population].size}",
                              b.population)
            if b.offset + b.stop - b.start > c.neurons:
                raise Problem(f"{where}.blocks.{j}.offset", f"the block ends past the core's "
                                                            f"{c.neurons} neurons", b.population)
        for j, s in enumerate(c.synapses):
            if s.table >= len(cfg.tables):
                continue        # (the emulator names this one itself)
            t = cfg.tables[s.table]
            start, stop = s.rows
            if not start <= stop <= t.shape[0]:
                raise Problem(f"{where}.synapses.{j}.rows", f"rows {start}..{stop} are not "
                                                            f"inside table {s.table}'s "
                                                            f"{t.shape[0]}", t.target)
            if s.offset + stop - start > c.neurons:
                raise Problem(f"{where}.synapses.{j}.offset", f"the rows end past the core's "
                                                              f"{c.neurons} neurons", t.target)
