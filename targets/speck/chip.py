"""The Speck facts a target YAML states, as one typed object the backend reads.

[targets]'s Target owns loading and validation of the YAML; this module only
picks out what the Speck backend needs (per-core memories, per-layer limits,
number formats) from either a Target object or the YAML's mapping, so the
backend never re-reads files or repeats a constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nirc.errors import TargetError
from nirc.target import Target


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerLimitsSpec(_Section):
    max_input_size: int = Field(128, gt=0)
    max_channels: int = Field(1024, gt=0)
    max_kernel_size: int = Field(16, gt=0)
    strides: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    max_padding: int = Field(7, ge=0)
    pooling: list[int] = Field(default_factory=lambda: [1, 2, 4], min_length=1)


class DvsSpec(_Section):
    size: list[int] = Field(default_factory=lambda: [128, 128], min_length=2, max_length=2)
    polarities: int = Field(2, gt=0)
    pooling: list[int] = Field(default_factory=lambda: [1, 2, 4], min_length=1)
    max_destinations: int = Field(2, gt=0)


class ReadoutSpec(_Section):
    classes: int = Field(gt=0)
    errata_channel_stride: int = Field(1, gt=0)


class NeuronSpec(_Section):
    threshold_compare: Literal[">="] = ">="
    spikes_per_input_event: Literal[1] = 1
    reset: list[Literal["subtract", "to_zero"]] = Field(
        default_factory=lambda: ["subtract", "to_zero"])
    # threshold_low, the chip's membrane floor (v = max(v, threshold_low) after every update):
    # "state_min" puts it at the lowest 16-bit value, so the membrane is bounded only by the
    # register, as NIR's IF has no floor; "minus_threshold" is sinabs' convention for IF
    # (from_nir sets min_v_mem = -v_threshold). docs/speck.md has the measured difference.
    low_threshold: Literal["state_min", "minus_threshold"] = "state_min"
    # How NIR resets map to the chip: "nir" follows v_reset (0 -> return_to_zero),
    # "subtract" subtracts the threshold as sinabs does for every IAF layer.
    reset_mode: Literal["nir", "subtract"] = "nir"


class SpeckOptions(_Section):
    """The YAML's ``backend_options`` for the Speck backend."""

    layer_limits: LayerLimitsSpec = Field(default_factory=LayerLimitsSpec)
    dvs: DvsSpec = Field(default_factory=DvsSpec)
    readout: Optional[ReadoutSpec] = None
    neuron: NeuronSpec = Field(default_factory=NeuronSpec)
    # How weights and thresholds become integers (passes/speck_quantize.py): "fidelity"
    # searches per-layer factors from sinabs' integers on calibration input and keeps
    # sinabs' unless deviating measurably agrees better; "sinabs" is sinabs' rule exactly.
    quantization: Literal["fidelity", "sinabs"] = "fidelity"


class SpeckTarget(Target):
    """A Speck-family target: nirc.target's schema with a typed ``backend_options``."""

    backend_options: SpeckOptions = Field(default_factory=SpeckOptions)


TARGET_SCHEMA = SpeckTarget


@dataclass(frozen=True)
class CoreMemory:
    """Words of kernel, neuron and bias memory on one core."""

    id: int
    kernel: int
    neuron: int
    bias: int

    def get(self, kind: str) -> int:
        return getattr(self, kind)


@dataclass(frozen=True)
class LayerLimits:
    """LayerLimitsSpec's values, plus the core's ``destinations`` limit."""

    max_input_size: int
    max_channels: int
    max_kernel_size: int
    strides: tuple[int, ...]
    max_padding: int
    pooling: tuple[int, ...]
    max_destinations: int


@dataclass(frozen=True)
class DvsLimits:
    """DvsSpec's values."""

    size: tuple[int, int]
    polarities: int
    pooling: tuple[int, ...]
    max_destinations: int


def _tuples(section: BaseModel) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.model_dump().items()}


def _options(given: Any, file: str | None) -> SpeckOptions:
    """``backend_options`` validated by SpeckOptions (defaults filled), errors as TargetError."""
    try:
        return SpeckOptions.model_validate(given or {})
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(["backend_options", *map(str, first["loc"])])
        raise TargetError(first["msg"], file=file, field=field) from None


@dataclass(frozen=True)
class SpeckChip:
    name: str
    cores: tuple[CoreMemory, ...]
    limits: LayerLimits
    dvs: DvsLimits
    weight_bits: int = 8
    bias_bits: int = 8
    state_bits: int = 16
    readout_classes: int | None = 15
    time_limit_s: float = 10.0
    seed: int = 0
    reset_mode: str = "nir"
    low_threshold: str = "state_min"
    quantization: str = "fidelity"

    @classmethod
    def from_mapping(cls, spec: Any, file: str | None = None) -> "SpeckChip":
        """From a validated Target (pydantic) or the YAML's mapping."""
        data = spec.model_dump() if hasattr(spec, "model_dump") else dict(spec)
        try:
            count = int(data["cores"]["count"])
            base = dict(data["cores"]["limits"])
            per_core = [dict(base) for _ in range(count)]
            for override in data["cores"].get("overrides", []) or []:
                for core in override["cores"]:
                    per_core[core].update({k: v for k, v in override["limits"].items()
                                           if v is not None})
            cores = tuple(CoreMemory(id=i, kernel=int(lim["kernel_memory_words"]),
                                     neuron=int(lim["neuron_memory_words"]),
                                     bias=int(lim["bias_memory_words"]))
                          for i, lim in enumerate(per_core))
            max_destinations = int(base.get("destinations") or 2)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise TargetError(f"the Speck backend needs kernel_memory_words, "
                              f"neuron_memory_words and bias_memory_words for every core ({err})",
                              file=file, field="cores") from None
        options = _options(data.get("backend_options"), file)
        limits = LayerLimits(**_tuples(options.layer_limits), max_destinations=max_destinations)
        formats = data.get("formats") or {}
        partitioner = data.get("partitioner") or {}
        return cls(name=str(data["name"]), cores=cores, limits=limits, dvs=DvsLimits(**_tuples(options.dvs)),
                   weight_bits=int(formats.get("weight_bits") or 8),
                   bias_bits=int(formats.get("bias_bits") or 8),
                   state_bits=int(formats.get("state_bits") or 16),
                   readout_classes=options.readout.classes if options.readout else None,
                   reset_mode=options.neuron.reset_mode,
                   low_threshold=options.neuron.low_threshold,
                   quantization=options.quantization,
                   time_limit_s=float(partitioner.get("time_limit_s", 10.0)),
                   seed=int(partitioner.get("seed", 0)))


def load_chip(name_or_path: str) -> SpeckChip:
    """The Speck facts of a target, loaded through [targets]' loader when present."""
    from nirc.target import load_target

    return SpeckChip.from_mapping(load_target(name_or_path), file=str(name_or_path))


def chip_for(ctx: Any) -> SpeckChip:
    """The Speck facts of the target a pass context compiles for."""
    target = getattr(ctx, "target", None)
    if target is not None and not isinstance(target, str):
        return SpeckChip.from_mapping(target, file=getattr(target, "source", None))
    return load_chip(target or ctx.target_name)
