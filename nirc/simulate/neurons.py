"""Discrete-time dynamics of the NIR neuron nodes (I, IF, LI, LIF, CubaLI, CubaLIF).

Both discretisations (forward Euler and the exact exponential with the input
held constant over a step) turn every NIR neuron into the same affine
recurrence, so one update serves all six node types and only the coefficients
differ (see docs/semantics.md):

    i[t] = decay_i * i[t-1] + gain_i * x[t]                         (Cuba only)
    v[t] = decay_v * v[t-1] + rest_v + from_i * i[t-1] + from_x * x[t]
    z[t] = v[t] > v_threshold;  v[t] = v_reset where z[t]             (spiking only)

For non-Cuba nodes ``x`` drives ``v`` directly and ``from_i`` is zero.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from nirc.errors import NircWarning, locate
from nirc.ir.nodes import CubaLI, CubaLIF, I, IF, LI, LIF, Node

METHODS = ("euler", "exact")


@dataclass(frozen=True)
class Coefficients:
    """The affine recurrence one neuron node follows at a given dt (arrays broadcast to the layer)."""

    decay_v: np.ndarray
    rest_v: np.ndarray
    from_i: np.ndarray
    from_x: np.ndarray
    decay_i: np.ndarray | None = None     # None: no synaptic current state
    gain_i: np.ndarray | None = None
    v_threshold: np.ndarray | None = None  # None: never spikes (I, LI, CubaLI)
    v_reset: np.ndarray | None = None


def _arr(value, default: float = 0.0) -> np.ndarray:
    return np.asarray(default if value is None else value, dtype=np.float64)


def _ratio_expm1(y: np.ndarray) -> np.ndarray:
    """expm1(y) / y, equal to 1 at y = 0 (the limit), without cancellation near 0."""
    y = np.asarray(y, dtype=np.float64)
    safe = np.where(y == 0, 1.0, y)
    return np.where(y == 0, 1.0, np.expm1(safe) / safe)


def _warn_unstable(name: str, field: str, ratio: np.ndarray, dt: float) -> None:
    # dt = tau exactly (up to float32 rounding of exported taus) forgets the past, but does not
    # overshoot; beyond it the leak term flips the sign of v.
    if np.any(ratio > 1 + 1e-6):
        warnings.warn(NircWarning(
            f"{locate(node=name, field=field)}: dt = {dt:g} s exceeds the time constant "
            f"(dt/{field} up to {np.max(ratio):.4g}); forward Euler overshoots: --dt "
            f"{dt / np.max(ratio):.3g} or less avoids it, or --method exact ('nirc inspect' "
            f"shows the dt the file's exporter implies)"), stacklevel=3)


def coefficients(node: Node, dt: float, method: str, name: str = "",
                 input_rule: str = "nir") -> Coefficients:
    """Coefficients of ``node``'s recurrence at time step ``dt`` seconds.

    ``input_rule`` (nirc.convention.INPUT_RULES) says how the input enters the first
    state: 'nir' as NIR's equations discretised, 'unscaled' as r*x (w_in*x for a Cuba
    current) without the dt/tau factor (Norse's IF and LIFCell current, Sinabs' ExpLeak),
    'rockpool' in Rockpool's order (a current decays after the input is added; the
    membrane adds input or current with gain r*dt*e^(dt/tau)/tau, 1 for its exports).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    spiking = isinstance(node, (IF, LIF, CubaLIF))
    threshold = _arr(node.v_threshold) if spiking else None
    reset = _arr(node.v_reset) if spiking else None
    if isinstance(node, (I, IF)):
        # No leak: Euler and the exact solution coincide.
        r = _arr(node.r)
        gain = r if input_rule == "unscaled" else dt * r
        return Coefficients(decay_v=np.ones_like(r), rest_v=np.zeros_like(r),
                            from_i=np.zeros_like(r), from_x=gain,
                            v_threshold=threshold, v_reset=reset)
    if isinstance(node, (LI, LIF)):
        tau, r, leak = _arr(node.tau), _arr(node.r), _arr(node.v_leak)
        if input_rule == "rockpool":
            decay = np.exp(-dt / tau)
            gain = _rockpool_gain(r, dt, tau)
            # LIFNeuronTorch: v = a v + x; ExpSynTorch: i = b (i + x).
            from_x = gain if isinstance(node, LIF) else decay * gain
            return Coefficients(decay_v=decay, rest_v=-np.expm1(-dt / tau) * leak,
                                from_i=np.zeros_like(decay), from_x=from_x,
                                v_threshold=threshold, v_reset=reset)
        if method == "euler":
            _warn_unstable(name, "tau", dt / tau, dt)
            k = dt / tau
            decay = 1 - k
        else:
            decay = np.exp(-dt / tau)
            k = -np.expm1(-dt / tau)
        from_x = r * np.ones_like(k) if input_rule == "unscaled" else k * r
        return Coefficients(decay_v=decay, rest_v=k * leak, from_i=np.zeros_like(k),
                            from_x=from_x, v_threshold=threshold, v_reset=reset)
    if isinstance(node, (CubaLI, CubaLIF)):
        tau_s, tau_m = _arr(node.tau_syn), _arr(node.tau_mem)
        r, leak, w_in = _arr(node.r), _arr(node.v_leak), _arr(node.w_in, 1.0)
        if input_rule == "rockpool":
            # LIFTorch: i = b (i + x); v = a v + g i (the new current).
            e_s, e_m = np.exp(-dt / tau_s), np.exp(-dt / tau_m)
            g = _rockpool_gain(r, dt, tau_m)
            return Coefficients(decay_v=e_m, rest_v=-np.expm1(-dt / tau_m) * leak,
                                from_i=g * e_s, from_x=g * e_s * w_in, decay_i=e_s,
                                gain_i=e_s * w_in, v_threshold=threshold, v_reset=reset)
        if method == "euler" or input_rule == "unscaled":
            if method == "euler":
                _warn_unstable(name, "tau_syn", dt / tau_s, dt)
                _warn_unstable(name, "tau_mem", dt / tau_m, dt)
                ks, km = dt / tau_s, dt / tau_m
                decay_i, decay_v = 1 - ks, 1 - km
            else:
                decay_i, decay_v = np.exp(-dt / tau_s), np.exp(-dt / tau_m)
                ks, km = -np.expm1(-dt / tau_s), -np.expm1(-dt / tau_m)
            gain_i = w_in * np.ones_like(ks) if input_rule == "unscaled" else ks * w_in
            # v uses the current of this step: v += km * (leak - v + r * (decay_i*i + gain_i*x)).
            return Coefficients(decay_v=decay_v, rest_v=km * leak, from_i=km * r * decay_i,
                                from_x=km * r * gain_i, decay_i=decay_i, gain_i=gain_i,
                                v_threshold=threshold, v_reset=reset)
        e_s, e_m = np.exp(-dt / tau_s), np.exp(-dt / tau_m)
        km = -np.expm1(-dt / tau_m)
        # g = tau_s (e_s - e_m) / (tau_s - tau_m), written to stay exact as tau_s -> tau_m.
        g = e_m * (dt / tau_m) * _ratio_expm1(dt * (tau_s - tau_m) / (tau_s * tau_m))
        return Coefficients(decay_v=e_m, rest_v=km * leak, from_i=r * g,
                            from_x=r * w_in * (km - g), decay_i=e_s,
                            gain_i=-np.expm1(-dt / tau_s) * w_in,
                            v_threshold=threshold, v_reset=reset)
    raise TypeError(f"{type(node).__name__} is not a neuron node")


def _rockpool_gain(r: np.ndarray, dt: float, tau: np.ndarray) -> np.ndarray:
    """Rockpool writes r = tau e^(-dt/tau)/dt for a unit gain; this undoes it (1 for its files)."""
    return r * dt * np.exp(dt / tau) / tau


@dataclass(frozen=True)
class SpikeRules:
    """How a spiking layer fires and resets (see nirc.convention.Convention).

    reset: 'zero' (v = v_reset) or 'subtract' (v -= v_threshold per spike). reset_delay:
    the reset is taken from the stored membrane one step later (snnTorch); then a 'zero'
    reset clears the membrane before this step's update ('before', snnTorch's Leaky) or
    clears the updated membrane ('after', its Synaptic, RLeaky and RSynaptic).
    limit: most spikes per step (1: single spikes; None: unbounded). test: '>' or '>='.
    v_min: floor applied after the reset (Sinabs' min_v_mem), or None.
    """

    reset: str = "zero"
    reset_delay: bool = False
    zero_clears: str = "before"
    # snnTorch computes a reset from the stored membrane at the start of every step, and with
    # reset_delay=False resets at once only by what that did not already do (spike - late).
    from_stored: bool = False
    limit: int | None = 1
    test: str = ">"
    v_min: float | None = None


NIR_RULES = SpikeRules()


class NeuronLayer:
    """State and per-step update of one neuron node for a batch (state shape (B, *shape))."""

    def __init__(self, coeffs: Coefficients, shape: tuple[int, ...], dtype: np.dtype,
                 rules: SpikeRules = NIR_RULES):
        def cast(a):
            return None if a is None else np.asarray(a, dtype=dtype)

        self.decay_v, self.rest_v = cast(coeffs.decay_v), cast(coeffs.rest_v)
        self.from_i, self.from_x = cast(coeffs.from_i), cast(coeffs.from_x)
        self.decay_i, self.gain_i = cast(coeffs.decay_i), cast(coeffs.gain_i)
        self.v_threshold, self.v_reset = cast(coeffs.v_threshold), cast(coeffs.v_reset)
        self.spiking = self.v_threshold is not None
        self.has_current = self.decay_i is not None
        self.rules = rules
        # All states start at zero (not at v_leak): the convention of every exporting framework.
        self.v = np.zeros(shape, dtype=dtype)
        self.i = np.zeros(shape, dtype=dtype) if self.has_current else None

    def state(self) -> dict[str, np.ndarray]:
        return {"v": self.v, "i": self.i} if self.has_current else {"v": self.v}

    def count(self, v: np.ndarray) -> np.ndarray:
        """Spikes emitted by membrane ``v`` under the rules (0/1, or a count)."""
        rules, th = self.rules, self.v_threshold
        above = v >= th if rules.test == ">=" else v > th
        if rules.limit == 1:
            return above.astype(v.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = v / th
            n = np.floor(ratio) if rules.test == ">=" else np.ceil(ratio) - 1
        n = np.where(above, np.maximum(n, 1), 0).astype(v.dtype)
        return n if rules.limit is None else np.minimum(n, rules.limit)

    def step(self, x: np.ndarray) -> np.ndarray:
        """Advance one step on input ``x``; returns spikes (0/1 or counts) or, for
        non-spiking nodes, v."""
        rules = self.rules
        v_old = self.v
        late = None
        if self.spiking and (rules.reset_delay or rules.from_stored):
            late = self.count(v_old)
            if rules.reset == "zero" and rules.zero_clears == "before":
                v_old = np.where(late > 0, self.v_reset, v_old)
        v = self.decay_v * v_old + self.rest_v + self.from_x * x
        if self.has_current:
            v += self.from_i * self.i
            self.i = self.decay_i * self.i + self.gain_i * x
        if not self.spiking:
            self.v = v
            return v
        if late is not None:
            if rules.reset == "subtract":
                v = v - late * self.v_threshold
            elif rules.zero_clears == "after":
                v = np.where(late > 0, self.v_reset, v)
        spikes = self.count(v)
        if not rules.reset_delay:
            fired = spikes if late is None else spikes - late
            if rules.reset == "subtract":
                v = v - fired * self.v_threshold
            elif late is None:
                v = np.where(spikes > 0, self.v_reset, v)
            else:   # snnTorch: mem -= (spk - reset) * mem
                v = v - fired * (v - self.v_reset)
        if rules.v_min is not None:
            v = np.maximum(v, rules.v_min)
        self.v = v
        return spikes
