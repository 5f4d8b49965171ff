"""The interface every neuron model implements (integer or float arithmetic, written once).

A neuron model owns everything that depends on the arithmetic of one kind of
silicon neuron: its per-neuron parameter names and units, its state registers,
how a synaptic table turns spikes into input (the accumulation rule), one time
step of the neuron, and how float parameters of the generic discrete neuron
(see :mod:`nirc.neuron_models.float_reference`) become its integer formats.
The quantizer, the integer reference and the emulator all call these methods,
so a model plugs in by registering one object in ``nirc.neuron_models.MODELS``
— no driver, pass or emulator code names a model.

Array conventions: population parameters are 1-d arrays (size,); states and
activations are 2-d arrays (batch, size); spikes are (batch, size) bool.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Mapping

import numpy as np

from nirc.hwnet import Population, SynapseTable


class NeuronModel(ABC):
    """One neuron model: parameters, states, accumulation rule, step, quantization."""

    #: registry key, also written to hwnet.neuron_model and config.json
    name: str = ""
    #: per-neuron parameter names (Population.params keys after quantization)
    param_names: tuple[str, ...] = ()
    #: state registers, in the order they are recorded
    state_names: tuple[str, ...] = ()
    #: per-table attributes besides weights/delay (SynapseTable.kernel keys after quantization)
    table_fields: tuple[str, ...] = ()
    #: the state exposed as a non-spiking population's output
    readout_state: str = "v"
    #: parameters the hardware holds once per neuron profile (a group of neurons sharing
    #: them) rather than per neuron; the neuron_profiles pass groups populations by them
    profile_params: tuple[str, ...] = ()
    #: smallest synaptic delay the hardware has (steps); quantize raises delays below it
    min_delay: int = 0
    #: dtype of states and activations
    dtype: Any = np.int64
    #: when a spike reaches its targets on this hardware, as one sentence; nirc verify shows
    #: it when the integer run lags the float simulation ("" for no note)
    spike_delivery: str = ""

    @abstractmethod
    def init_state(self, params: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
        """Initial states, each (batch, size)."""

    @abstractmethod
    def prepare_weights(self, table: SynapseTable) -> Any:
        """The weights the hardware really stores (e.g. after mantissa truncation), in
        whatever form :meth:`accumulate` computes fastest with (opaque to callers)."""

    @abstractmethod
    def accumulate(self, weights: Any, attrs: Mapping[str, Any],
                   spikes: np.ndarray) -> np.ndarray:
        """Input delivered by one table for a (batch, n_source) spike array -> (batch, n_target).

        ``weights`` comes from :meth:`prepare_weights`; ``attrs`` holds the table's
        ``table_fields``.
        """

    @abstractmethod
    def step(self, params: Mapping[str, np.ndarray], state: dict[str, np.ndarray],
             a_in: np.ndarray) -> np.ndarray:
        """Advance one time step in place given the summed input; return spikes (batch, size)."""

    @abstractmethod
    def quantize(self, pop: Population, tables: list[SynapseTable],
                 formats: Mapping[str, Any], granularity: str
                 ) -> tuple[Population, list[SynapseTable], dict[str, Any]]:
        """Float population (generic discrete neuron) + its input tables -> this model's units.

        Returns the new population, the new tables (same order) and a report row
        with the error introduced and what could not be represented exactly.
        """

    def prepare_params(self, params: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        """``params`` plus whatever :meth:`step` derives from them alone, computed once: the
        emulator and the integer reference pass the result to every step (and to
        :meth:`init_state`). ``step`` must also accept the plain parameters."""
        return params

    # Most input events one step of one sample may carry (all channels together), checked
    # where an input file is read; None: unbounded (the model reads a dense array per step).
    max_events_per_step: int | None = None

    def firing_rules(self, pop: Population, readout: bool = False) -> dict[str, Any] | None:
        """How this hardware fires and resets ``pop`` (a quantized population; ``readout``: it
        feeds a network output), in nirc.convention's vocabulary so it can be compared with
        the rules the model was trained under: {"reset": "zero" | "subtract", "spikes":
        "single" | "multi", "max_spikes": int | None, "threshold_test": ">" | ">=", "per":
        "step" | "input event"}. None: the model's own rules (the float model)."""
        return None

    def input_notice(self, values: np.ndarray) -> str | None:
        """How the chip would read input ``values`` (events per channel and step) other than
        as given, completing "array 'x' ..." for a warning; None when it reads them as given."""
        return None

    def relay(self) -> tuple[dict[str, int], int, dict[str, Any]] | None:
        """A relay neuron, for delays longer than the chip's synapses hold: (its parameters,
        the weight of its one input synapse, that table's ``table_fields``) such that it
        fires in exactly the steps its input spike arrives and never otherwise. None: this
        model has no such neuron (the delay_balance pass then refuses longer delays)."""
        return None

    def table_attrs(self, table: SynapseTable) -> dict[str, Any]:
        """The per-table attributes of a quantized table (stored in ``table.kernel``)."""
        kernel = table.kernel or {}
        return {k: kernel[k] for k in self.table_fields if k in kernel}
