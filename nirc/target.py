"""Chip descriptions: the schema of a target YAML, and how targets are found and loaded.

A target is one YAML file in ``targets/`` (installed as ``nirc.targets``) or any
path the user gives. It says what the chip has (cores and their named limits,
number formats, the neuron model it runs) and how nirc maps onto it (mapping
strategy, passes, partitioner settings). Every limit has a name and a unit
(:data:`RESOURCES`); nothing is a positional vector.

Loading validates the file against the pydantic models below and turns the first
problem into a one-line :class:`~nirc.errors.TargetError`::

    targets/x.yaml: field 'cores.limits.neurons': must be > 0, got -3

Public API: :func:`load_target` (a name such as ``"loihi2"`` or a path),
:func:`list_targets`, :func:`check_target_file`, :class:`Target`.
"""

from __future__ import annotations

import importlib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from nirc import safe_yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator,
                      model_validator)

from nirc.errors import TargetError

TARGET_PACKAGE = "nirc.targets"
MAPPINGS = ("neuron_partition", "layer_per_core", "fixed_fabric")


@dataclass(frozen=True)
class Resource:
    """One per-core resource a limit can bound: its unit and what counts against it."""

    name: str
    unit: str
    meaning: str
    mappings: tuple[str, ...]


# Every per-core limit a target may state. The partitioner of each mapping strategy
# enforces the resources listed for it; a limit a strategy cannot enforce is rejected
# at load time rather than silently ignored.
RESOURCES: dict[str, Resource] = {r.name: r for r in (
    Resource("neurons", "neurons", "neurons (compartments) placed on the core",
             ("neuron_partition", "layer_per_core", "fixed_fabric")),
    Resource("synapses", "synapses", "synapses (non-zero weights) into the core's neurons",
             ("neuron_partition",)),
    Resource("synapse_memory_bits", "bits",
             "bits of synapse lists into the core's neurons (see cores.synapse_memory)",
             ("neuron_partition",)),
    Resource("fan_in_axons", "axons", "distinct source neurons whose spikes enter the core",
             ("neuron_partition",)),
    Resource("fan_out_axons", "axons",
             "distinct (source neuron on the core, destination core) pairs",
             ("neuron_partition",)),
    Resource("neuron_profiles", "profiles",
             "distinct neuron profiles (the shared du, dv, vth, bias exponent... of a group of "
             "neurons; passes/neuron_profiles.py) among the core's neurons",
             ("neuron_partition",)),
    Resource("kernel_memory_words", "words", "convolution kernel memory of a layer-per-core core",
             ("layer_per_core",)),
    Resource("neuron_memory_words", "words", "neuron state memory of a layer-per-core core",
             ("layer_per_core",)),
    Resource("bias_memory_words", "words", "bias memory of a layer-per-core core",
             ("layer_per_core",)),
    Resource("destinations", "cores", "cores (layers) one core may send its output to",
             ("layer_per_core",)),
    Resource("input_channels", "channels", "input channels of a fixed fabric",
             ("fixed_fabric",)),
    Resource("output_neurons", "neurons", "readout neurons of a fixed fabric",
             ("fixed_fabric",)),
    Resource("fan_in_per_neuron", "synapses", "input synapses of one neuron",
             ("fixed_fabric",)),
    Resource("fan_out_per_neuron", "synapses", "output synapses of one neuron",
             ("fixed_fabric",)),
)}


# Limits of the whole chip rather than of one core. Checked after placement by the
# strategies listed for each.
CHIP_RESOURCES: dict[str, Resource] = {r.name: r for r in (
    Resource("routing_entries", "entries",
             "multicast routing-table entries of the chip's router: one per (population, core) "
             "whose neurons send spikes, plus one per network input",
             ("neuron_partition",)),
)}


def unit_of(resource: str) -> str:
    return (RESOURCES.get(resource) or CHIP_RESOURCES[resource]).unit


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Sane ranges: numbers beyond these are typos (1e9 cores, 1e30 bits) that would make the
# partitioner allocate per core or overflow integer arithmetic; docs/limits.md lists them.
MAX_CORES = 1 << 16
MAX_LIMIT = 1 << 40


def _limit(resource: Resource) -> Any:
    return Field(None, gt=0, le=MAX_LIMIT, description=f"{resource.meaning} [{resource.unit}]")


class CoreLimits(_Strict):
    """Named per-core capacities; a missing limit means the chip does not bound it."""

    neurons: int | None = _limit(RESOURCES["neurons"])
    synapses: int | None = _limit(RESOURCES["synapses"])
    synapse_memory_bits: int | None = _limit(RESOURCES["synapse_memory_bits"])
    fan_in_axons: int | None = _limit(RESOURCES["fan_in_axons"])
    fan_out_axons: int | None = _limit(RESOURCES["fan_out_axons"])
    neuron_profiles: int | None = _limit(RESOURCES["neuron_profiles"])
    kernel_memory_words: int | None = _limit(RESOURCES["kernel_memory_words"])
    neuron_memory_words: int | None = _limit(RESOURCES["neuron_memory_words"])
    bias_memory_words: int | None = _limit(RESOURCES["bias_memory_words"])
    destinations: int | None = _limit(RESOURCES["destinations"])
    input_channels: int | None = _limit(RESOURCES["input_channels"])
    output_neurons: int | None = _limit(RESOURCES["output_neurons"])
    fan_in_per_neuron: int | None = _limit(RESOURCES["fan_in_per_neuron"])
    fan_out_per_neuron: int | None = _limit(RESOURCES["fan_out_per_neuron"])

    def named(self) -> dict[str, int]:
        """The limits the chip states, by resource name, in RESOURCES order."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class CoreOverride(_Strict):
    """Limits that differ on some cores (e.g. Speck's per-core kernel/neuron memories)."""

    cores: list[int] = Field(min_length=1, description="indices of the cores these limits apply to")
    limits: CoreLimits = Field(description="limits replacing the defaults on those cores")

    @field_validator("cores")
    @classmethod
    def _non_negative(cls, cores: list[int]) -> list[int]:
        for c in cores:
            if c < 0:
                raise ValueError(f"core indices must be >= 0, got {c}")
        return cores


class SynapseMemory(_Strict):
    """How synapse memory is counted (nengo-loihi's SynapseConfig.bits_per_axon, simplified).

    Each source neuron (axon) that feeds a block of neurons stores its synapses
    into that block as groups of at most ``synapses_per_group`` entries; a group
    of n entries costs ``n * (weight_bits + delay_bits + index_bits) +
    group_header_bits`` bits, rounded up to ``word_bits``.
    """

    word_bits: int = Field(64, gt=0, le=4096, description="memory word; each group is rounded up to "
                                                "whole words [bits]")
    synapses_per_group: int = Field(64, gt=0, le=1 << 20, description="most synapses one group stores "
                                                          "[synapses]")
    group_header_bits: int = Field(10, ge=0, le=4096, description="fixed cost of one group [bits]")
    index_bits: int = Field(0, ge=0, le=64, description="target-neuron index stored with each synapse "
                                                 "[bits]")


class Cores(_Strict):
    """The chip's cores: how many, and the named capacity of each."""

    count: int = Field(gt=0, le=MAX_CORES, description="cores on the chip [cores]")
    limits: CoreLimits = Field(default_factory=CoreLimits,
                               description="capacity of every core, by resource name")
    overrides: list[CoreOverride] = Field(default_factory=list,
                                          description="cores whose limits differ from 'limits'")
    synapse_memory: SynapseMemory = Field(default_factory=SynapseMemory,
                                          description="how synapse_memory_bits is counted")

    @model_validator(mode="after")
    def _overrides_name_existing_cores_once(self) -> "Cores":
        seen: set[int] = set()
        for i, override in enumerate(self.overrides):
            for c in override.cores:
                if c >= self.count:
                    raise _FieldProblem(f"overrides.{i}.cores",
                                        f"core {c} does not exist (cores are 0..{self.count - 1})")
                if c in seen:
                    raise _FieldProblem(f"overrides.{i}.cores", f"core {c} is overridden twice")
                seen.add(c)
        return self

    def limits_of(self, core: int) -> dict[str, int]:
        """The limits of one core: the defaults with that core's override applied."""
        limits = self.limits.named()
        for override in self.overrides:
            if core in override.cores:
                limits.update(override.limits.named())
        return limits

    @property
    def uniform(self) -> bool:
        return not self.overrides


class ChipLimits(_Strict):
    """Capacities of the whole chip (shared by all cores); a missing limit is unbounded."""

    routing_entries: int | None = _limit(CHIP_RESOURCES["routing_entries"])

    def named(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Formats(_Strict):
    """Number formats of the chip's registers and memories (bit widths)."""

    weight_bits: int = Field(gt=0, le=64,
                             description="stored weight (mantissa), sign included [bits]")
    weight_exponent_bits: int = Field(0, ge=0, le=16,
                                      description="signed shared exponent applied to summed "
                                                  "weights; 0: none [bits]")
    weight_shift_bits: int = Field(0, ge=0, le=16,
                                   description="unsigned left shift of the weighted input (Xylo "
                                               "dash-style); 0: none [bits]")
    delay_bits: int = Field(0, ge=0, le=16,
                            description="synaptic delay field counted in synapse memory; 0: none "
                                        "[bits]")
    max_delay_steps: int | None = Field(None, ge=1, le=1 << 16,
                                        description="longest delay one synaptic table can give, "
                                                    "spike to arrival (balance_delays uses relay "
                                                    "neurons beyond it); absent: the neuron "
                                                    "model's fixed delay only [steps]")
    state_bits: int = Field(gt=0, le=64, description="membrane potential register [bits]")
    current_bits: int | None = Field(None, gt=0, le=64,
                                     description="synaptic current register; absent: no separate "
                                                 "current [bits]")
    decay_bits: int | None = Field(None, gt=0, le=32,
                                   description="decay constants (fractions of 2**decay_bits, or "
                                               "shift widths) [bits]")
    threshold_bits: int | None = Field(None, gt=0, le=64, description="threshold mantissa [bits]")
    threshold_shift: int = Field(0, ge=0, le=32,
                                 description="left shift from threshold mantissa to state units "
                                             "[bits]")
    bias_bits: int | None = Field(None, gt=0, le=64,
                                  description="bias mantissa, sign included [bits]")
    bias_exponent_bits: int = Field(0, ge=0, le=16, description="bias exponent; 0: none [bits]")
    spike_bits: int = Field(1, gt=0, le=32,
                            description="payload of one spike; 1: binary spikes [bits]")

    # Dict-like reading, for code that treats formats as optional keys with defaults.
    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None)
        if value is None:
            value = (self.model_extra or {}).get(key)
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None


class PartitionerSettings(_Strict):
    """How the placement solver runs (neuron_partition and layer_per_core strategies)."""

    time_limit_s: float = Field(10.0, gt=0, le=86400,
                                description="budget of the CP-SAT placement in CP-SAT's "
                                            "deterministic time (about seconds on an idle "
                                            "machine; the same budget gives the same placement "
                                            "on any machine) [s]")
    seed: int = Field(0, ge=0, le=2**31 - 1,
                      description="random seed of the solver (placements are reproducible for a "
                                  "seed)")
    # Coarsening: neurons per block (None: chosen so the model has at most max_blocks blocks).
    block_size: int | None = Field(None, gt=0, le=MAX_LIMIT,
                                   description="neurons per placement block; absent: chosen so "
                                               "there are at most max_blocks [neurons]")
    max_blocks: int = Field(192, gt=0, le=100_000,
                            description="most blocks the network is cut into before packing "
                                        "[blocks]")


class Link(_Strict):
    """What crossing one link between two chips costs."""

    messages_per_step: int | None = Field(None, gt=0,
                                          description="spike messages one link carries per time "
                                                      "step, each direction; absent: unbounded "
                                                      "[messages]")
    latency_steps: int = Field(1, ge=0, description="time steps a spike spends on one link (hop) "
                                                    "[steps]")


class System(_Strict):
    """Several chips of one chip target, connected by links (a board or a rack).

    A system file names its chip target and inherits every other field from it
    (cores, formats, neuron model, passes...); fields it sets itself replace
    the chip's. Chips are numbered 0..chips-1; a ``mesh`` numbers them row-major
    and links each to its neighbours along every axis.
    """

    chip: str = Field(min_length=1, description="the chip target of every chip: a shipped name, "
                                                "or a YAML path relative to this file")
    chips: int = Field(gt=1, description="chips in the system [chips]")
    mesh: list[int] | None = Field(None, min_length=1,
                                   description="chips per axis of a mesh (their product is "
                                               "'chips'); give this or 'links'")
    links: list[list[int]] | None = Field(None, min_length=1,
                                          description="pairs [a, b] of chips joined by a link "
                                                      "(both directions); give this or 'mesh'")
    link: Link = Field(default_factory=Link, description="what crossing one link costs")
    routing_entries: int | None = Field(None, gt=0,
                                        description="inter-chip routing-table entries of each "
                                                    "chip: one per (layer, source chip, outgoing "
                                                    "link) routed through it; absent: unbounded "
                                                    "[entries]")

    @model_validator(mode="after")
    def _connected(self) -> "System":
        if (self.mesh is None) == (self.links is None):
            raise _FieldProblem("mesh", "give exactly one of 'mesh' and 'links'")
        if self.mesh is not None:
            import math

            if any(d < 1 for d in self.mesh) or math.prod(self.mesh) != self.chips:
                raise _FieldProblem("mesh", f"the axes must multiply to chips={self.chips}, "
                                            f"got {self.mesh}")
        for i, pair in enumerate(self.links or ()):
            if len(pair) != 2 or pair[0] == pair[1] or not all(0 <= c < self.chips for c in pair):
                raise _FieldProblem(f"links.{i}", f"must be two different chips in "
                                                  f"0..{self.chips - 1}, got {pair}")
        pairs = self.link_pairs()
        reached, frontier = {0}, [0]
        while frontier:
            a = frontier.pop()
            for x, y in pairs:
                for u, v in ((x, y), (y, x)):
                    if u == a and v not in reached:
                        reached.add(v)
                        frontier.append(v)
        if len(reached) != self.chips:
            missing = min(set(range(self.chips)) - reached)
            raise _FieldProblem("links", f"chip {missing} cannot be reached from chip 0")
        return self

    def link_pairs(self) -> list[tuple[int, int]]:
        """Every link once as (a, b) with a < b, sorted."""
        if self.links is not None:
            return sorted({(min(a, b), max(a, b)) for a, b in self.links})
        dims = list(self.mesh or [])
        strides = [1] * len(dims)
        for k in range(len(dims) - 2, -1, -1):
            strides[k] = strides[k + 1] * dims[k + 1]
        pairs = []
        for chip in range(self.chips):
            for axis, (size, stride) in enumerate(zip(dims, strides)):
                if (chip // stride) % size + 1 < size:
                    pairs.append((chip, chip + stride))
        return sorted(pairs)


class Target(_Strict):
    """One chip, or a system of chips, as its YAML file describes it."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$",
                      description="target name; for a shipped target, the file name without .yaml")
    description: str = Field(min_length=1, description="one line shown by 'nirc targets'")
    aliases: list[str] = Field(default_factory=list,
                               description="other names that select this target")
    vendor: str | None = Field(None, description="who makes the chip")
    # Module nirc.targets.<backend> holding what the YAML cannot say (emitter, layer
    # mapping...). backend_options is that backend's own section: the backend validates
    # it, or declares TARGET_SCHEMA (a Target subclass) to have the loader do so.
    backend: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$",
                                description="module nirc.targets.<backend> with what YAML cannot "
                                            "say (strategy, emitter, emulator hooks); absent: the"
                                            " generic ones")
    backend_options: dict[str, Any] = Field(default_factory=dict,
                                            description="free-form section validated by the "
                                                        "backend")
    neuron_model: str = Field(min_length=1,
                              description="key in nirc.neuron_models.MODELS: the integer "
                                          "arithmetic of the neurons")
    # One list of mapping names (MAPPINGS): a new strategy adds its name there only.
    mapping: Literal[MAPPINGS] = Field(  # type: ignore[valid-type]
        description="placement strategy, key in nirc.partition.STRATEGIES")
    default_dt: float = Field(gt=0, le=1e3,
                              description="time step when neither --dt nor the model's metadata "
                                          "gives one [s]")
    passes: list[str] = Field(min_length=1, max_length=64,
                              description="pass names from nirc.passes.registry.PASSES, run in "
                                          "order")
    cores: Cores = Field(description="how many cores and what each holds")
    chip: ChipLimits = Field(default_factory=ChipLimits, description="limits of the whole chip")
    formats: Formats = Field(description="number formats of registers and memories")
    partitioner: PartitionerSettings = Field(default_factory=PartitionerSettings,
                                             description="settings of the placement solver")
    sources: list[str] = Field(default_factory=list,
                               description="where the numbers in this file come from")
    system: System | None = Field(None, description="present in a system file: its chips and "
                                                    "links (the other fields come from the chip "
                                                    "target)")

    @field_validator("neuron_model")
    @classmethod
    def _known_neuron_model(cls, key: str) -> str:
        known = _registered_neuron_models()
        if known is not None and key not in known:
            raise ValueError(f"must be one of {_quoted(sorted(known))}, got {key!r}")
        return key

    @field_validator("passes")
    @classmethod
    def _known_passes(cls, names: list[str]) -> list[str]:
        known = _registered_passes()
        for i, name in enumerate(names):
            if known is not None and name not in known:
                raise _FieldProblem(str(i), f"must be one of {_quoted(sorted(known))}, got {name!r}")
        return names

    @model_validator(mode="after")
    def _passes_run_in_order(self) -> "Target":
        try:
            from nirc.passes.registry import order_problem
        except ImportError:         # the pass registry is optional while it is being built
            return self
        problem = order_problem(list(self.passes), self.neuron_model)
        if problem is not None:
            raise _FieldProblem(f"passes.{problem[0]}", problem[1])
        return self

    @model_validator(mode="after")
    def _limits_suit_mapping(self) -> "Target":
        blocks = [("cores.limits", self.cores.limits)]
        blocks += [(f"cores.overrides.{i}.limits", o.limits) for i, o in enumerate(self.cores.overrides)]
        allowed = [r.name for r in RESOURCES.values() if self.mapping in r.mappings]
        for where, limits in blocks:
            for name in limits.named():
                if self.mapping not in RESOURCES[name].mappings:
                    raise _FieldProblem(f"{where}.{name}",
                                        f"not a limit of the {self.mapping} mapping; "
                                        f"allowed: {', '.join(allowed)}")
        for name in self.chip.named():
            if self.mapping not in CHIP_RESOURCES[name].mappings:
                raise _FieldProblem(f"chip.{name}", f"not a limit of the {self.mapping} mapping")
        if self.mapping == "neuron_partition" and "neurons" not in self.cores.limits.named():
            raise _FieldProblem("cores.limits.neurons",
                                "required field missing (the neuron_partition mapping needs it)")
        return self

    # Set by the loader: the file it came from and the YAML mapping as read.
    _source: str | None = PrivateAttr(None)
    _raw: dict | None = PrivateAttr(None)

    @property
    def source(self) -> str | None:
        return self._source

    @property
    def raw(self) -> dict | None:
        return self._raw

    def limits_of(self, core: int) -> dict[str, int]:
        return self.cores.limits_of(core)

    @property
    def core_count(self) -> int:
        """Cores of one chip."""
        return self.cores.count

    @property
    def chip_count(self) -> int:
        """Chips: 1 for a chip target, ``system.chips`` for a system."""
        return self.system.chips if self.system is not None else 1


class _FieldProblem(ValueError):
    """A cross-field problem that knows which (dotted) field it is about."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _quoted(values) -> str:
    return ", ".join(repr(v) for v in values)


def _registry_names(module_name: str, attributes: tuple[str, ...]) -> set[str] | None:
    """Names in a registry another part of nirc owns, or None while it does not exist yet.

    Backends add to these registries when imported; the loader imports a target's
    backend before validating it.
    """
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            return None
        raise
    for attribute in attributes:
        registry = getattr(module, attribute, None)
        if callable(registry):
            registry = registry()
        if registry:
            return set(registry)
    return None


def _registered_neuron_models() -> set[str] | None:
    return _registry_names("nirc.neuron_models", ("MODELS",))


def _registered_passes() -> set[str] | None:
    return _registry_names("nirc.passes.registry", ("PASSES",))


# --- turning pydantic's errors into one line -------------------------------------------------

def _describe(error: dict) -> tuple[str, str]:
    """(dotted field, message) for one pydantic error, naming allowed values where there are any."""
    loc = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = error.get("input")
    if kind == "value_error" and isinstance(ctx.get("error"), _FieldProblem):
        problem = ctx["error"]
        return ".".join(p for p in (loc, problem.field) if p), problem.message
    if kind == "missing":
        return loc, "required field missing"
    if kind == "extra_forbidden":
        parent, _, name = loc.rpartition(".")
        return loc, f"unknown field {name!r}; allowed: {', '.join(_fields_at(parent))}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
              "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        shown = f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"
        return loc, f"must be {op} {shown}, got {got!r}"
    if kind == "literal_error":
        return loc, f"must be one of {ctx['expected']}, got {got!r}"
    if kind == "string_pattern_mismatch":
        return loc, f"must be lower-case letters, digits and '_' (starting with a letter), got {got!r}"
    if kind == "int_parsing_size":
        return loc, f"is far too large for this field, got {got!r}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return loc, f"must be an integer, got {got!r}"
    if kind in ("float_type", "float_parsing"):
        return loc, f"must be a number, got {got!r}"
    if kind in ("string_type",):
        return loc, f"must be a string, got {got!r}"
    if kind in ("list_type",):
        return loc, f"must be a list, got {got!r}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return loc, f"must be a mapping of fields, got {got!r}"
    if kind in ("too_short",):
        return loc, "must not be empty"
    if kind == "too_long":
        return loc, f"must have at most {ctx.get('max_length')} items"
    if kind == "value_error":
        return loc, str(ctx.get("error", error["msg"]))
    return loc, error["msg"][0].lower() + error["msg"][1:] + (f", got {got!r}" if got is not None else "")


def _fields_at(dotted: str) -> list[str]:
    """Field names of the schema model at a dotted path (for 'allowed:' lists)."""
    model: Any = Target
    for part in filter(None, dotted.split(".")):
        if part.isdigit():
            continue
        annotation = model.model_fields[part].annotation
        inner = getattr(annotation, "__args__", (annotation,))
        model = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


# --- finding and loading ----------------------------------------------------------------------

def _packaged_files() -> dict[str, Any]:
    root = importlib.resources.files(TARGET_PACKAGE)
    return {entry.name[:-len(".yaml")]: entry for entry in root.iterdir()
            if entry.name.endswith(".yaml")}


def target_names() -> list[str]:
    """Names of the targets shipped with nirc (the YAML files in nirc.targets), sorted."""
    return sorted(_packaged_files())


def parse_target(text: str, where: str) -> Target:
    """Validate YAML text as a target; ``where`` names the file in error messages."""
    try:
        data = safe_yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise TargetError(f"invalid YAML{at}: {problem}", file=where) from None
    if not isinstance(data, dict):
        raise TargetError(f"must be a mapping of fields, got {type(data).__name__}", file=where)
    if "system" in data:
        data = _with_chip_fields(data, where)
    schema = _schema_for(data, where)
    try:
        target = schema.model_validate(data)
    except ValidationError as err:
        field, message = _describe(err.errors()[0])
        raise TargetError(f"field '{field}': {message}" if field else message, file=where) from None
    target._source = where
    target._raw = data
    return target


# Fields that describe a file itself, never inherited by a system from its chip target.
_OWN_FIELDS = ("name", "description", "aliases", "vendor", "sources", "system")


def _with_chip_fields(data: dict, where: str) -> dict:
    """A system file's mapping completed with its chip target's fields (its own win)."""
    system = data.get("system")
    chip = system.get("chip") if isinstance(system, dict) else None
    if not isinstance(chip, str) or not chip:
        return data            # validation names the missing or malformed field
    base = Path(where).parent if where and not where.startswith("targets/") else None
    ref = chip
    if base is not None and (chip.endswith((".yaml", ".yml")) or "/" in chip):
        ref = str(base / chip)
    elif where.startswith("targets/") and chip.endswith((".yaml", ".yml")):
        ref = Path(chip).stem
    chip_target = load_target(ref)
    if chip_target.system is not None:
        raise TargetError(f"field 'system.chip': {chip!r} is itself a system; a system's chips "
                          f"must be a chip target", file=where)
    merged = {k: v for k, v in (chip_target.raw or {}).items() if k not in _OWN_FIELDS}
    merged.update(data)
    return merged


def backend_names() -> list[str]:
    """Backends shipped as packages under nirc.targets (a YAML's ``backend:``), sorted."""
    return sorted(p.name for p in importlib.resources.files(TARGET_PACKAGE).iterdir()
                  if p.is_dir() and not p.name.startswith("_"))


def _schema_for(data: dict, where: str) -> type[Target]:
    """Target, or the schema the YAML's backend declares for its own sections."""
    backend = data.get("backend")
    if not isinstance(backend, str) or not backend.isidentifier():
        return Target
    try:
        module = importlib.import_module(f"{TARGET_PACKAGE}.{backend}")
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith(f"{TARGET_PACKAGE}.{backend}"):
            raise TargetError(f"field 'backend': must be one of {_quoted(backend_names())}, "
                              f"got {backend!r}",
                              file=where) from None
        raise
    schema = getattr(module, "TARGET_SCHEMA", None)
    if schema is None:
        return Target
    if not (isinstance(schema, type) and issubclass(schema, Target)):
        raise TypeError(f"{module.__name__}.TARGET_SCHEMA must subclass nirc.target.Target")
    return schema


def load_target(name_or_path: str | Path) -> Target:
    """A target by shipped name (``"loihi2"``) or alias (``"speck"``), or by path to a YAML file."""
    text_name = str(name_or_path)
    packaged = _packaged_files()
    if isinstance(name_or_path, str) and text_name in packaged:
        where = f"targets/{text_name}.yaml"
        target = parse_target(packaged[text_name].read_text(encoding="utf-8"), where)
        if target.name != text_name:
            raise TargetError(f"field 'name': must be {text_name!r} (the file's name), "
                              f"got {target.name!r}", file=where)
        return target
    path = Path(name_or_path)
    looks_like_path = path.suffix in (".yaml", ".yml") or len(path.parts) > 1
    if not path.is_file():
        if looks_like_path:
            raise TargetError("no such target file", file=text_name)
        aliased = target_aliases().get(text_name)
        if aliased is not None:
            return load_target(aliased)
        raise TargetError(f"unknown target {text_name!r}; available: {', '.join(sorted(packaged))} "
                          f"(or give a path to a YAML file)")
    try:
        if path.stat().st_size > safe_yaml.MAX_BYTES:
            raise TargetError(f"is {path.stat().st_size:,} bytes, more than the "
                              f"{safe_yaml.MAX_BYTES:,} nirc reads from a target file",
                              file=text_name)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise TargetError(f"cannot read: {err}", file=text_name) from None
    return parse_target(text, text_name)


def target_aliases() -> dict[str, str]:
    """Other names of shipped targets (their YAML's ``aliases``), e.g. {"speck": "speck2f"}."""
    aliases: dict[str, str] = {}
    for name, entry in sorted(_packaged_files().items()):
        try:
            data = safe_yaml.safe_load(entry.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue        # the file's own load reports it
        listed = data.get("aliases") if isinstance(data, dict) else None
        for alias in listed if isinstance(listed, list) else ():
            alias = str(alias)
            if alias in aliases and aliases[alias] != name:
                raise TargetError(f"field 'aliases': {alias!r} is also an alias of "
                                  f"targets/{aliases[alias]}.yaml", file=f"targets/{name}.yaml")
            aliases[alias] = name
    return aliases


def check_target_file(path: str | Path) -> Target:
    """Validate one YAML file (``nirc targets check``); raises TargetError on the first problem.
    Stricter than loading: the pass list must also end in a quantized network."""
    target = load_target(Path(path))
    try:
        from nirc.passes.registry import order_problem
    except ImportError:
        return target
    problem = order_problem(list(target.passes), target.neuron_model, complete=True)
    if problem is not None:
        raise TargetError(f"field 'passes.{problem[0]}': {problem[1]}", file=str(path))
    return target


def list_targets() -> list[Target]:
    """Every shipped target, loaded and validated, sorted by name."""
    return [load_target(name) for name in target_names()]
