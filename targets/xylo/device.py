"""The Xylo facts a target YAML states, as one typed object the backend reads.

nirc.target owns loading and validating the YAML; this module declares the
schema of the Xylo ``backend_options`` section (installed as TARGET_SCHEMA) and
gathers every limit the backend needs (fabric sizes, fan-out, event caps,
number formats) into one :class:`XyloDevice`, so no other module repeats a
constant.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from nirc.errors import TargetError
from nirc.neuron_models import xylo_lif
from nirc.target import Target


class XyloOptions(BaseModel):
    """The YAML's ``backend_options`` for Xylo-class chips."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden_neurons: int = Field(gt=0)
    synapses_per_hidden_neuron: int = Field(ge=1, le=2)
    max_input_events: int = Field(xylo_lif.MAX_INPUT_EVENTS, gt=0)
    max_hidden_spikes: int = Field(xylo_lif.MAX_HIDDEN_SPIKES, gt=0)
    max_readout_spikes: int = Field(xylo_lif.MAX_READOUT_SPIKES, gt=0)
    has_bias: bool = True
    # Readout neurons listen to the last ``readout_sources`` hidden neurons only (None: all).
    readout_sources: int | None = Field(None, gt=0)
    # Input channels reach only the first ``input_targets`` hidden neurons (None: all).
    input_targets: int | None = Field(None, gt=0)


class XyloTarget(Target):
    """A Xylo-class target: nirc.target's schema with typed ``backend_options``."""

    backend_options: XyloOptions


TARGET_SCHEMA = XyloTarget


@dataclass(frozen=True)
class XyloDevice:
    """Everything the Xylo backend needs to know about one chip."""

    name: str
    input_channels: int
    hidden_neurons: int
    output_neurons: int
    synapses_per_hidden_neuron: int
    fan_out_per_neuron: int | None
    max_input_events: int
    max_hidden_spikes: int
    max_readout_spikes: int
    has_bias: bool
    readout_sources: int
    input_targets: int
    weight_bits: int
    weight_shift_bits: int
    state_bits: int
    decay_bits: int
    default_dt: float

    @classmethod
    def of(cls, target: Target) -> "XyloDevice":
        options = target.backend_options
        if not isinstance(options, XyloOptions):
            options = XyloOptions.model_validate(options)
        limits = target.cores.limits.named()
        for key in ("input_channels", "output_neurons", "neurons"):
            if key not in limits:
                raise TargetError("required by the Xylo backend", file=target.source,
                                  field=f"cores.limits.{key}")
        if limits["neurons"] != options.hidden_neurons + limits["output_neurons"]:
            raise TargetError(f"must equal backend_options.hidden_neurons + cores.limits.output_neurons "
                              f"({options.hidden_neurons} + {limits['output_neurons']}), "
                              f"got {limits['neurons']}", file=target.source, field="cores.limits.neurons")
        implemented = {"max_input_events": xylo_lif.MAX_INPUT_EVENTS, "max_hidden_spikes": xylo_lif.MAX_HIDDEN_SPIKES,
                       "max_readout_spikes": xylo_lif.MAX_READOUT_SPIKES}
        for key, value in implemented.items():
            if getattr(options, key) != value:
                raise TargetError(f"the xylo_lif model (xylosim v2) fixes this at {value}, got {getattr(options, key)}",
                                  file=target.source, field=f"backend_options.{key}")
        hidden = options.hidden_neurons
        return cls(name=target.name, input_channels=limits["input_channels"], hidden_neurons=hidden,
                   output_neurons=limits["output_neurons"],
                   synapses_per_hidden_neuron=options.synapses_per_hidden_neuron,
                   fan_out_per_neuron=limits.get("fan_out_per_neuron"),
                   max_input_events=options.max_input_events, max_hidden_spikes=options.max_hidden_spikes,
                   max_readout_spikes=options.max_readout_spikes, has_bias=options.has_bias,
                   readout_sources=options.readout_sources or hidden,
                   input_targets=options.input_targets or hidden,
                   weight_bits=target.formats.weight_bits,
                   weight_shift_bits=target.formats.weight_shift_bits,
                   state_bits=target.formats.state_bits,
                   decay_bits=target.formats.get("decay_bits", 4), default_dt=target.default_dt)
