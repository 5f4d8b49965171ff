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
  tests/test_dynapcnn/test_neuron_leak.py). nirc sets it to -2^15 by default
  (NIR's IF has no floor) or to -threshold (sinabs' convention), per target.
- ``v`` is a 16-bit register. Overflow behaviour is not public; nirc saturates
  at [-2^15, 2^15 - 1] before the threshold test and says so in the report.
- With leak enabled the chip adds the per-channel bias once per slow-clock
  tick; nirc adds it once per time step, before that step's events, through
  the same update (so the bias alone can fire — unconfirmed publicly).

Order of one update (nirc's choice where the public sources are silent):
saturate(v + w) -> compare with threshold_high -> reset -> floor at threshold_low.

:func:`integrate` applies an ordered list of (neuron, weight) contributions and
returns which of them fired. The update is inherently sequential (whether a
neuron fires depends on its previous update), so the loop is compiled with
numba (cache in the user's cache directory, :mod:`nirc.jit`). :func:`update`
is that one update and :func:`update_repeated` the same weight applied n times
in a row (closed form where the arithmetic allows, the plain loop otherwise);
the Speck emulator's compiled event engine calls both.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from nirc.errors import TargetError
from nirc.hwnet import Population, SynapseTable
from nirc.jit import njit
from nirc.neuron_models.base import NeuronModel

STATE_BITS = 16
STATE_MIN = -(1 << (STATE_BITS - 1))      # -32768
STATE_MAX = (1 << (STATE_BITS - 1)) - 1   # 32767
WEIGHT_BITS = 8

PARAM_NAMES = ("threshold_high", "threshold_low", "return_to_zero", "bias", "v_init")


@njit(nogil=True)
def update(v, weight, threshold_high, threshold_low, return_to_zero):
    """One contribution: (new v, fired). saturate -> threshold -> reset -> floor."""
    value = min(max(v + weight, STATE_MIN), STATE_MAX)
    fired = value >= threshold_high
    reset = 0 if return_to_zero != 0 else value - threshold_high
    # Selects, not branches: the emulator's engine vectorises this over a core's channels.
    return max(reset if fired else value, threshold_low), fired


@njit(nogil=True)
def update_repeated(v, weight, n, threshold_high, threshold_low, return_to_zero, fired_at, k):
    """``update`` n times with the same weight; returns (v, k).

    The 0-based repeat indices that fired are written to ``fired_at[k:]`` in
    ascending order and the returned k counts past them. Closed forms cover the
    cases where the per-update arithmetic provably follows them, all under
    ``STATE_MIN < threshold_high <= STATE_MAX`` and ``threshold_low <
    threshold_high`` (otherwise the floor or the saturation itself can fire):

    - falling (weight < 0, ``v + weight`` below threshold): never fires; the
      saturation and the floor are monotone, so n updates are one jump clipped
      at ``max(threshold_low, STATE_MIN)``;
    - rising without reaching the threshold (``floor <= v``, ``v + n*weight <
      threshold``): no clamp applies, the result is ``v + n*weight``;
    - rising through the threshold with ``0 < weight <= threshold``, ``threshold_low
      <= 0`` and no saturation: spikes where the running sum passes multiples of
      the threshold (subtract) or every ``ceil(threshold / weight)`` (reset to zero).

    Anything else runs the update loop.
    """
    th, tl = threshold_high, threshold_low
    floor = max(tl, STATE_MIN)
    ordinary = STATE_MIN < th and th <= STATE_MAX and tl < th
    r = 0
    while r < n:
        left = n - r
        if ordinary and weight < 0 and v + weight < th:
            return max(v + left * weight, floor), k
        if ordinary and weight > 0 and v >= floor and v + left * weight < th:
            return v + left * weight, k
        if ordinary and weight > 0 and v < th and v >= floor and th - 1 + weight <= STATE_MAX \
                and tl <= 0 and weight <= th:
            total = v + left * weight
            if return_to_zero == 0:
                # Subtract: the running sum v + i*w fires each time it passes a multiple of th.
                spikes = total // th
                for j in range(1, spikes + 1):
                    fired_at[k] = r + (j * th - v + weight - 1) // weight - 1
                    k += 1
                return total - spikes * th, k
            # Reset to zero: first spike when v + i*w reaches th, then every ceil(th/w).
            first = (th - v + weight - 1) // weight
            period = (th + weight - 1) // weight
            last = first
            while last <= left:
                fired_at[k] = r + last - 1
                k += 1
                last += period
            last -= period
            return (left - last) * weight, k
        v, fired = update(v, weight, th, tl, return_to_zero)
        if fired:
            fired_at[k] = r
            k += 1
        r += 1
    return v, k


@njit(nogil=True)
def _integrate_in_order(v, neuron, weight, threshold_high, threshold_low, return_to_zero,
                        fired):
    # The chip's update, one contribution after the other (the semantics are sequential:
    # a neuron's next update depends on whether the previous one fired).
    for i in range(neuron.shape[0]):
        j = neuron[i]
        v[j], fired[i] = update(v[j], weight[i], threshold_high[j], threshold_low[j],
                                return_to_zero[j])


def integrate(v: np.ndarray, neuron: np.ndarray, weight: np.ndarray,
              threshold_high: np.ndarray, threshold_low: np.ndarray,
              return_to_zero: np.ndarray) -> np.ndarray:
    """Apply contributions in list order to ``v`` (modified in place); return the fired ones.

    ``neuron``/``weight`` are parallel arrays in the chip's processing order;
    thresholds and ``return_to_zero`` are per-neuron arrays indexed like ``v``.
    The result is the sorted positions (into ``neuron``) whose update fired,
    i.e. the output events in the order the chip emits them.
    """
    fired = np.zeros(neuron.shape[0], dtype=np.bool_)
    if neuron.shape[0]:
        _integrate_in_order(v, np.ascontiguousarray(neuron, dtype=np.int64),
                            np.ascontiguousarray(weight, dtype=np.int64),
                            threshold_high.astype(np.int64, copy=False),
                            threshold_low.astype(np.int64, copy=False),
                            return_to_zero.astype(np.int64, copy=False), fired)
    return np.flatnonzero(fired)


@njit(nogil=True)
def _integrate_unbounded(v, neuron, weight, threshold_high, threshold_low, return_to_zero,
                         fired):
    # The same rule in float, without the 16-bit register: what the chip would compute with
    # the model's own weights and thresholds (no quantization, no saturation).
    for i in range(neuron.shape[0]):
        j = neuron[i]
        value = v[j] + weight[i]
        fired[i] = value >= threshold_high[j]
        reset = 0.0 if return_to_zero[j] != 0 else value - threshold_high[j]
        v[j] = max(reset if fired[i] else value, threshold_low[j])


def integrate_unbounded(v: np.ndarray, neuron: np.ndarray, weight: np.ndarray,
                        threshold_high: np.ndarray, threshold_low: np.ndarray,
                        return_to_zero: np.ndarray) -> np.ndarray:
    """:func:`integrate` at infinite precision: float64 ``v`` and weights, no saturation
    (the chip's firing rule alone, apart from its integers; nirc.passes.speck_quantize
    measures how much of the agreement it costs)."""
    fired = np.zeros(neuron.shape[0], dtype=np.bool_)
    if neuron.shape[0]:
        _integrate_unbounded(v, np.ascontiguousarray(neuron, dtype=np.int64),
                             np.ascontiguousarray(weight, dtype=np.float64),
                             np.asarray(threshold_high, dtype=np.float64),
                             np.asarray(threshold_low, dtype=np.float64),
                             np.asarray(return_to_zero, dtype=np.int64), fired)
    return np.flatnonzero(fired)


def apply_bias(v: np.ndarray, bias: np.ndarray, threshold_high: np.ndarray,
               threshold_low: np.ndarray, return_to_zero: np.ndarray) -> np.ndarray:
    """The once-per-step leak/bias update of every neuron; returns the neurons that fired."""
    active = np.flatnonzero(bias)
    step = integrate if np.issubdtype(v.dtype, np.integer) else integrate_unbounded
    fired = step(v, active, bias[active], threshold_high, threshold_low, return_to_zero)
    return active[fired]


class SpeckIAF(NeuronModel):
    """Speck's integrate-and-fire neuron (event-driven; see the module docstring)."""

    name = "speck_iaf"
    # Speck takes input as a list of events per step, expanded one entry per event: a
    # bound keeps memory finite (about 2**20 events; the chip's input interface carries
    # far fewer, a few million events per second).
    max_events_per_step = 1 << 20
    param_names = PARAM_NAMES
    state_names = ("v",)
    table_fields = ("kernel_size", "stride", "padding", "pooling", "input_shape")
    readout_state = "v"
    min_delay = 0
    dtype = np.int64
    spike_delivery = "Speck is event-driven: a spike reaches the next layer within its step, no step is added"

    def firing_rules(self, pop, readout=False):
        # Threshold checked after each input event: one spike per event, so several per step.
        zero = bool(np.all(np.asarray(pop.params.get("return_to_zero", 1)) != 0))
        return {"reset": "zero" if zero else "subtract", "spikes": "multi", "max_spikes": None,
                "threshold_test": ">=", "per": "input event"}

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

    def run_network(self, net, inputs, batch: bool = False, record: bool = False):
        """Speck's integer reference is event-driven (nirc.intref delegates to it)."""
        from nirc.targets.speck.backend import run_network
        return run_network(net, inputs, batch=batch, record=record)

    def quantize(self, pop: Population, tables: list[SynapseTable],
                 formats: Mapping[str, Any], granularity: str
                 ) -> tuple[Population, list[SynapseTable], dict[str, Any]]:
        # Speck scales a whole layer (weights, bias, both thresholds) by one factor chosen
        # from the layer's kernel, so it cannot be quantized population by population.
        raise TargetError(f"population '{pop.name}': speck_iaf layers are quantized by the "
                          "'speck_quantize' pass (after 'speck_lower'), not by 'quantize'; "
                          "use passes: [normalize, speck_lower, speck_quantize]", field="passes")


MODEL = SpeckIAF()
