"""Speck / DYNAP-CNN integrate-and-fire neuron: the chip's integer arithmetic, written once.

Used by the Speck quantizer (scale rule), the Speck integer reference (over the
hardware network's unrolled tables) and the Speck emulator (over the emitted
kernels). Facts and their sources are in docs/speck.md; in short:

- The chip is event-driven. Each input event adds one kernel weight to every
  output neuron its receptive field covers, neuron after neuron, and each
  touched neuron is checked at once: ``v >= threshold_high`` fires ONE output
  event (sinabs tests/test_dynapcnn/test_single_neuron_hardware.py: weight 127,
  threshold 127, one event -> one spike). A neuron left above threshold stays
  silent until its next input.
- After a spike: ``v = 0`` (return_to_zero) or ``v -= threshold_high``
  (samna's CNNLayerConfig.return_to_zero; subtraction is sinabs' default).
- ``threshold_low`` is a floor: ``v = max(v, threshold_low)`` after every
  update (sinabs' ``min_v_mem``; the leak stops there in sinabs'
  tests/test_dynapcnn/test_neuron_leak.py).
- ``v`` is a 16-bit register. Overflow behaviour is not public; nirc saturates
  at [-2^15, 2^15 - 1] before the threshold test and says so in the report.
- With leak enabled the chip adds the per-channel bias once per slow-clock
  tick; nirc adds it once per time step, before that step's events, through
  the same update (so the bias alone can fire — unconfirmed publicly).

Order of one update (nirc's choice where the public sources are silent):
saturate(v + w) -> compare with threshold_high -> reset -> floor at threshold_low.

:func:`integrate` applies an ordered list of (neuron, weight) contributions and
returns which of them fired, vectorised across neurons: contributions to
different neurons commute, so it walks the k-th contribution of every neuron
together (as many numpy rounds as the busiest neuron has inputs).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from nirc.hwnet import Population, SynapseTable
from nirc.neuron_models.base import NeuronModel

STATE_BITS = 16
STATE_MIN = -(1 << (STATE_BITS - 1))      # -32768
STATE_MAX = (1 << (STATE_BITS - 1)) - 1   # 32767
WEIGHT_BITS = 8

PARAM_NAMES = ("threshold_high", "threshold_low", "return_to_zero", "bias", "v_init")


def integrate(v: np.ndarray, neuron: np.ndarray, weight: np.ndarray,
              threshold_high: np.ndarray, threshold_low: np.ndarray,
              return_to_zero: np.ndarray) -> np.ndarray:
    """Apply contributions in list order to ``v`` (modified in place); return the fired ones.

    ``neuron``/``weight`` are parallel arrays in the chip's processing order;
    thresholds and ``return_to_zero`` are per-neuron arrays indexed like ``v``.
    The result is the sorted positions (into ``neuron``) whose update fired,
    i.e. the output events in the order the chip emits them.
    """
    n = neuron.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(neuron, kind="stable")           # grouped by neuron, list order kept
    sorted_neuron = neuron[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(sorted_neuron[1:], sorted_neuron[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    lengths = np.diff(np.append(starts, n))
    rank = np.arange(n) - np.repeat(starts, lengths)    # k-th contribution of its neuron
    by_rank = order[np.argsort(rank, kind="stable")]
    per_rank = np.bincount(rank)
    bounds = np.concatenate(([0], np.cumsum(per_rank)))
    fired: list[np.ndarray] = []
    for r in range(per_rank.shape[0]):
        pos = by_rank[bounds[r]:bounds[r + 1]]
        idx = neuron[pos]
        value = np.clip(v[idx] + weight[pos], STATE_MIN, STATE_MAX)
        fire = value >= threshold_high[idx]
        reset_value = np.where(return_to_zero[idx] != 0, 0, value - threshold_high[idx])
        value = np.where(fire, reset_value, value)
        v[idx] = np.maximum(value, threshold_low[idx])
        fired.append(pos[fire])
    return np.sort(np.concatenate(fired))


def apply_bias(v: np.ndarray, bias: np.ndarray, threshold_high: np.ndarray,
               threshold_low: np.ndarray, return_to_zero: np.ndarray) -> np.ndarray:
    """The once-per-step leak/bias update of every neuron; returns the neurons that fired."""
    active = np.flatnonzero(bias)
    fired = integrate(v, active, bias[active], threshold_high, threshold_low, return_to_zero)
    return active[fired]


class SpeckIAF(NeuronModel):
    """Speck's integrate-and-fire neuron (event-driven; see the module docstring)."""

    name = "speck_iaf"
    param_names = PARAM_NAMES
    state_names = ("v",)
    table_fields = ("kernel_size", "stride", "padding", "pooling", "input_shape")
    readout_state = "v"
    min_delay = 0
    dtype = np.int64

    def init_state(self, params: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
        size = params["threshold_high"].shape[0]
        v0 = params.get("v_init", np.zeros(size, dtype=np.int64))
        return {"v": np.broadcast_to(np.asarray(v0, dtype=np.int64), (batch, size)).copy()}

    def prepare_weights(self, table: SynapseTable) -> sp.csr_array:
        return sp.csr_array(table.weights, dtype=np.int64)

    def accumulate(self, weights: sp.csr_array, attrs: Mapping[str, Any],
                   spikes: np.ndarray) -> np.ndarray:
        # The summed input of a step; exact for the chip only when each neuron
        # receives at most one event per step (the Speck backend's own reference
        # is event-driven, see nirc.targets.speck.reference).
        return np.asarray((weights @ spikes.astype(np.int64).T).T)

    def step(self, params: Mapping[str, np.ndarray], state: dict[str, np.ndarray],
             a_in: np.ndarray) -> np.ndarray:
        """One step: the bias update, then each neuron's whole input as a single event."""
        spikes = np.zeros(a_in.shape, dtype=bool)
        th, tl, rz = params["threshold_high"], params["threshold_low"], params["return_to_zero"]
        for b in range(a_in.shape[0]):      # batch rows are independent chips
            v = state["v"][b]
            spikes[b, apply_bias(v, params["bias"], th, tl, rz)] = True
            touched = np.flatnonzero(a_in[b])
            spikes[b, touched[integrate(v, touched, a_in[b][touched], th, tl, rz)]] = True
        return spikes

    def quantize(self, pop: Population, tables: list[SynapseTable],
                 formats: Mapping[str, Any], granularity: str
                 ) -> tuple[Population, list[SynapseTable], dict[str, Any]]:
        from nirc.targets.speck.quantize import quantize_layer
        return quantize_layer(pop, tables, formats)


MODEL = SpeckIAF()
