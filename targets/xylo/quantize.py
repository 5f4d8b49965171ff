"""Float network on the Xylo layout -> integer XyloSpec, and a report of the error introduced.

Requires: a XyloLayout and the float populations it places (the generic
discrete neuron: i = i_decay*i + a; v = v_decay*v + i + v_direct*a + v_bias).
Guarantees: a validated XyloSpec whose integer network approximates the float
one as chip users expect (rockpool's global_quantize / channel_quantize):

- time constants: tau/dt = 1 / (1 - decay), ``dash = round(log2(tau/dt))``
  clipped to the 4-bit range; a decay below 0 (tau shorter than dt) is a
  FitError. A neuron without a synaptic current (i_decay = 0) gets dash_syn = 1,
  the shortest current that passes input on (dash 0 clears it before use).
- weights: Xylo decays a current in the step its input arrives, so each weight
  is scaled to deliver the float neuron's total charge
  (``w * (1 - a) / (a * (1 - i_decay))`` with ``a = 1 - 2**-dash_syn``, plus
  ``v_direct``'s share).
- scaling: integer states are ``s * float``; "layer" (global) uses one ``s`` for
  all hidden neurons and one for the readout, "channel" one per neuron. ``s`` is
  as large as the state range allows (the calibrated largest |v| and |i| with a
  margin, or HEADROOM_BITS above the largest threshold without calibration)
  and the weights fit 8 bits under a 3-bit shift; each matrix
  (W_in, W_rec, W_out) then gets the smallest shift that fits its weights,
  ``w_int = round(w * s / 2**shift)``, thresholds ``round(th * s)``.
- filling the weights' range: a matrix's shift is set by its largest weight over
  every population it feeds, so a population whose own weights reach less than
  127 under it (a smaller layer sharing W_rec, or a scale factor between two
  shifts) may have its ``s`` raised until they do (``fill``; capped where its
  thresholds leave 16 bits; the row's ``fill_factor``): the rounding error of its
  weights, half a step of 2**shift, is then the smallest share of its threshold
  that 8 bits allow (the rockpool digits model's output layer reached 62 of 127).
- scale factors: a caller may multiply each population's ``s`` (the xylo_quantize
  pass searches the factor that agrees best with the float model; past the 8-bit
  range the largest weights clip to +-127, counted per matrix in the report).
- biases: ``round(s * (v_bias + i_bias / (1 - i_decay)))`` (Xylo adds bias to v).
- decay rounding: ``x -= x >> dash`` floors, so an integer state keeps on average
  (1 - 2**-dash) / 2 of a unit more than ``x * (1 - 2**-dash)`` (its residues mod
  2**dash taken as uniform); a current carries that excess into v every step,
  ``(2**dash_syn - 1) / 2`` units in its steady state. A population named in
  ``rounding_bias`` gets the rounded sum of these excesses (per fed synapse, and
  v's own) subtracted through its bias (rounding_compensation), so its states do
  not creep upward; relays and alias copies never do.
- non-spiking readouts get the largest threshold (their v_mem is the output).
"""

from __future__ import annotations

import numpy as np

from nirc.errors import FitError
from nirc.hwnet import HardwareNetwork
from nirc.neuron_models.xylo_lif import DASH_MAX, STATE_MAX, WEIGHT_MAX, WEIGHT_SHIFT_MAX, XyloSpec
from nirc.targets.xylo.device import XyloDevice
from nirc.targets.xylo.layout import XyloLayout
from nirc.targets.xylo.relay import CHARGE as RELAY_CHARGE
from nirc.targets.xylo.relay import PACKED_SHIFT as RELAY_PACKED_SHIFT
from nirc.targets.xylo.relay import is_relay, packing

HEADROOM_BITS = 2        # without calibration, states may reach 4x the largest threshold
CALIBRATION_MARGIN = 1.25  # with calibration, room above the largest float state seen
GRANULARITIES = ("layer", "channel")
FILL_MARGIN = 0.01       # filled weights round to at most 127 (127.5 would round up to 128)


def dash_from_decay(decay: np.ndarray, what: str, node: str, file: str | None, dt: float) -> np.ndarray:
    """Bit-shift decays for per-step decay factors; FitError when a time constant is shorter than dt."""
    decay = np.asarray(decay, np.float64)
    if np.any(decay < 0):
        worst = float(decay.min())
        tau = dt / (1 - worst)
        raise FitError(f"{what} time constant {tau:.3g} s is shorter than dt = {dt:g} s "
                       f"(per-step decay {worst:.3g} < 0); Xylo's shortest is dt", file=file, node=node,
                       field="tau_mem" if what == "membrane" else "tau_syn",
                       cause="time_constant", details={"tau": tau, "dt": dt},
                       why=f"the model is valid, but at dt = {dt:g} s its time constant {tau:.3g} s "
                           f"is shorter than one step", next=f"pass --dt {tau:.2g} or smaller")
    with np.errstate(divide="ignore"):
        steps = np.where(decay < 1, 1.0 / (1.0 - np.minimum(decay, 1 - 1e-300)), np.inf)
        dash = np.where(np.isfinite(steps), np.rint(np.log2(np.maximum(steps, 1.0))), DASH_MAX)
    return np.clip(dash, 0, DASH_MAX).astype(np.int64)


def rounding_compensation(dash_mem: np.ndarray, dash_syns: list[np.ndarray], fed: list[np.ndarray]
                          ) -> np.ndarray:
    """The integer bias that cancels the mean upward drift of Xylo's flooring decays (module
    docstring): -round(sum over the fed synapses of (2**dash_syn - 1) / 2 + (1 - 2**-dash_mem) / 2).
    ``fed[k]`` marks the neurons whose synapse k has any input weight."""
    excess = (1.0 - 2.0 ** -np.asarray(dash_mem, np.float64)) / 2.0
    for dash, used in zip(dash_syns, fed):
        excess = excess + np.where(used, (2.0 ** np.asarray(dash, np.float64) - 1.0) / 2.0, 0.0)
    return -np.rint(excess)


def fill_factors(placed, s: np.ndarray, matrices: list[tuple[np.ndarray, int]], room: dict[str, float]
                 ) -> dict[str, float]:
    """Per population, the factor (>= 1) that raises its scale ``s`` until its largest weight in
    any of ``matrices`` ((float weights before scaling, with the target neuron on axis 1; the
    matrix's shift)) reaches 127 under that shift, capped at ``room`` (its thresholds fill 16
    bits); 1 for a population without weights."""
    out = {}
    for p in placed:
        sl = slice(p.start, p.stop)
        peak = 0.0
        for w, shift in matrices:
            scaled = np.abs(w[:, sl]) * (s[sl][None, :, None] if w.ndim == 3 else s[sl][None, :])
            peak = max(peak, float(scaled.max(initial=0.0)) / (1 << shift))
        fill = (WEIGHT_MAX + 0.5 - FILL_MARGIN) / peak if peak > 0 else 1.0
        out[p.name] = float(max(1.0, min(fill, room.get(p.name, np.inf))))
    return out


def _per_neuron(layout: XyloLayout, net: HardwareNetwork, placed, key: str, default: float = 0.0):
    out = np.full(sum(p.size for p in placed), default, np.float64)
    for p in placed:
        params = net.populations[p.name].params
        if key in params:
            out[p.start:p.stop] = np.broadcast_to(np.asarray(params[key], np.float64), (p.size,))
    return out


def _shift_for(weights_scaled: np.ndarray) -> int:
    """Smallest weight shift with every |round(w / 2**shift)| <= 127."""
    peak = float(np.abs(weights_scaled).max()) if weights_scaled.size else 0.0
    for shift in range(WEIGHT_SHIFT_MAX + 1):
        if peak / (1 << shift) <= WEIGHT_MAX + 0.5:
            return shift
    return WEIGHT_SHIFT_MAX


def _scale(th: np.ndarray, w_peak: np.ndarray, granularity: str, state_peak: np.ndarray | None = None
           ) -> np.ndarray:
    """State scale per neuron: the largest state fits 16 bits, weights fit 8 bits under the largest shift.

    The largest state is the calibrated peak (``state_peak``, float units, with
    CALIBRATION_MARGIN) or, without calibration, the threshold with
    HEADROOM_BITS of room above it.
    """
    w_limit = (WEIGHT_MAX + 0.5) * (1 << WEIGHT_SHIFT_MAX)
    finite_th = np.where(np.isfinite(th) & (th > 0), th, 0.0)
    if state_peak is not None:
        th_limit = STATE_MAX
        finite_th = np.maximum(finite_th, CALIBRATION_MARGIN * state_peak)
    else:
        th_limit = STATE_MAX >> HEADROOM_BITS
    if granularity == "layer":
        th_peak, wp = float(finite_th.max(initial=0.0)), float(w_peak.max(initial=0.0))
        s = min(th_limit / th_peak if th_peak > 0 else np.inf, w_limit / wp if wp > 0 else np.inf)
        s = 1.0 if not np.isfinite(s) else s
        return np.full(th.shape, s)
    with np.errstate(divide="ignore"):
        s = np.minimum(np.where(finite_th > 0, th_limit / np.where(finite_th > 0, finite_th, 1), np.inf),
                       np.where(w_peak > 0, w_limit / np.where(w_peak > 0, w_peak, 1), np.inf))
    return np.where(np.isfinite(s), s, 1.0)


def _rel_rms(approx: np.ndarray, exact: np.ndarray) -> float:
    peak = float(np.abs(exact).max()) if exact.size else 0.0
    if peak == 0:
        return 0.0
    return float(np.sqrt(np.mean((approx - exact) ** 2)) / peak)


def quantize(layout: XyloLayout, net: HardwareNetwork, device: XyloDevice, granularity: str = "layer",
             file: str | None = None, state_peaks: dict | None = None,
             scale_factors: dict[str, float] | None = None,
             count_scales: dict[str, float] | None = None,
             dash_steps: dict[str, tuple[int, int]] | None = None,
             rounding_bias: dict[str, float] | None = None,
             fill: dict[str, float] | None = None) -> tuple[XyloSpec, dict]:
    """The integer XyloSpec for a laid-out float network, and the quantization report.

    ``state_peaks`` ({population: {"v": (size,), "i": (size,)}}, float units, e.g. the
    largest |v| and |i| of a float run on calibration input) sizes the state scale so
    those states fit 16 bits; without it thresholds get HEADROOM_BITS of room.
    ``scale_factors`` multiplies the state scale of the named populations (a number, or
    an array with one factor per neuron; the fidelity search of the xylo_quantize pass
    chooses them); each report row gives the largest
    factor that keeps the population's thresholds in 16 bits (``max_scale_factor``),
    the largest that clips none of its weights (``unclipped_scale_factor``) and the
    weights each matrix clipped (``<matrix>_clipped``).
    ``count_scales`` multiplies the thresholds of the named readout populations (and only
    the thresholds): each chip spike then stands for that many of the model's, for a model
    that fires more spikes per step than Xylo's readout (one); the row's ``count_scale``.
    ``dash_steps`` moves the named populations' (dash_mem, dash_syn) from the nearest time
    constant by that many steps (a fidelity search may find the other side of tau better);
    the row's ``dash_steps``.
    ``rounding_bias`` ({population: 0 or 1}) adds rounding_compensation to the biases of
    the named populations (on a chip with biases); the row's ``rounding_bias``.
    ``fill`` ({population: 0 or 1}) raises the named populations' scales until their weights
    fill 8 bits under the matrices' shifts (fill_factors); the row's ``fill_factor``.
    """
    if granularity not in GRANULARITIES:
        raise FitError(f"unknown quantization granularity {granularity!r}; one of {GRANULARITIES}",
                       file=file, field="granularity")
    notes: list[str] = []
    dt = net.dt
    sections = {}
    for kind, placed in (("hidden", layout.hidden), ("readout", layout.readout)):
        i_decay = _per_neuron(layout, net, placed, "i_decay")
        v_decay = _per_neuron(layout, net, placed, "v_decay")
        for p in placed:
            dash_from_decay(i_decay[p.start:p.stop], "synaptic", p.name, file, dt)
            dash_from_decay(v_decay[p.start:p.stop], "membrane", p.name, file, dt)
        dash_syn = np.maximum(dash_from_decay(i_decay, "synaptic", kind, file, dt), 1)
        dash_mem = dash_from_decay(v_decay, "membrane", kind, file, dt)
        for p in placed:
            step_mem, step_syn = (dash_steps or {}).get(p.name, (0, 0))
            sl = slice(p.start, p.stop)
            dash_mem[sl] = np.clip(dash_mem[sl] + step_mem, 0, DASH_MAX)
            dash_syn[sl] = np.clip(dash_syn[sl] + step_syn, 1, DASH_MAX)
        a = 1.0 - 2.0 ** -dash_syn.astype(np.float64)
        v_direct = _per_neuron(layout, net, placed, "v_direct")
        charge = (1.0 - a) / a * (1.0 / (1.0 - np.minimum(i_decay, 1 - 1e-12)) + v_direct)
        th = _per_neuron(layout, net, placed, "threshold", np.inf)
        bias = (_per_neuron(layout, net, placed, "v_bias")
                + _per_neuron(layout, net, placed, "i_bias") / (1.0 - np.minimum(i_decay, 1 - 1e-12)))
        reset = _per_neuron(layout, net, placed, "v_reset")
        peak = np.zeros(len(th))
        for p in placed:
            if state_peaks and p.name in state_peaks:
                # Xylo holds a current before its decay: up to 1/a times the float current.
                peaks = state_peaks[p.name]
                peak[p.start:p.stop] = np.maximum(np.asarray(peaks.get("v", 0.0)),
                                                  np.asarray(peaks.get("i", 0.0)) / a[p.start:p.stop])
        sections[kind] = dict(i_decay=i_decay, v_decay=v_decay, dash_syn=dash_syn, dash_mem=dash_mem,
                              charge=charge, th=th, bias=bias, reset=reset, peak=peak)
        if np.any(i_decay == 0):
            notes.append(f"{int((i_decay == 0).sum())} {kind} neurons have no synaptic current; Xylo gives them "
                         f"the shortest one (dash_syn 1), spreading each input over a few steps")
        spiking = np.isfinite(th)
        if np.any(spiking):
            notes.append(f"{kind} neurons reset to v_reset ({', '.join(f'{r:g}' for r in np.unique(reset[spiking])[:3])}) "
                         f"in the float model and fire when v > threshold; Xylo subtracts the threshold and "
                         f"fires when v >= threshold")
        if np.any(v_decay >= 1):
            notes.append(f"{int((v_decay >= 1).sum())} {kind} neurons do not leak in the float model; Xylo's "
                         f"slowest leak is dash_mem {DASH_MAX} (and at least 1 unit per step)")

    hid, out = sections["hidden"], sections["readout"]
    # Alias copies (extra fan-out): no inputs, the largest threshold, no bias; they only repeat spikes.
    copy_values = {"i_decay": 0.0, "v_decay": 0.0, "dash_syn": 1, "dash_mem": 0, "charge": 0.0, "th": np.inf,
                   "bias": 0.0, "reset": 0.0, "peak": 0.0}
    for key, value in copy_values.items():
        hid[key] = np.concatenate([hid[key], np.full(layout.n_copies, value, dtype=hid[key].dtype)])
    # Count relays (nirc.targets.xylo.relay) take fixed integer values, set below; their
    # weights take no part in the readout's scale or shift.
    relay = np.zeros(len(out["th"]), bool)
    packed = False
    for p in layout.readout:
        relay[p.start:p.stop] = is_relay(net.populations[p.name])
        packed |= is_relay(net.populations[p.name]) and packing(net.populations[p.name]) > 1
    w_in = layout.w_in * hid["charge"][None, :, None]
    w_rec = layout.w_rec * hid["charge"][None, :, None]
    w_out = np.where(relay[None, :], 0.0, layout.w_out * out["charge"][None, :])
    peak_hidden = np.maximum(np.abs(w_in).max(axis=(0, 2), initial=0.0), np.abs(w_rec).max(axis=(0, 2), initial=0.0))
    peak_readout = np.abs(w_out).max(axis=0, initial=0.0)
    calibrated = bool(state_peaks)
    s_h = _scale(hid["th"], peak_hidden, granularity, hid["peak"] if calibrated else None)
    s_o = _scale(out["th"], peak_readout, granularity, out["peak"] if calibrated else None)
    w_limit = (WEIGHT_MAX + 0.5) * (1 << WEIGHT_SHIFT_MAX)
    room, weight_room = {}, {}
    for placed, s, sec, wp in ((layout.hidden, s_h, hid, peak_hidden), (layout.readout, s_o, out, peak_readout)):
        for p in placed:
            sl = slice(p.start, p.stop)
            th = np.where(np.isfinite(sec["th"][sl]) & (sec["th"][sl] > 0), sec["th"][sl], 0.0)
            with np.errstate(divide="ignore"):
                limits = np.where(th > 0, STATE_MAX / np.maximum(th * s[sl], 1e-300), np.inf)
                w_room = np.where(wp[sl] > 0, w_limit / np.maximum(wp[sl] * s[sl], 1e-300), np.inf)
            room[p.name] = float(limits.min(initial=np.inf))
            weight_room[p.name] = float(w_room.min(initial=np.inf))
            factor = np.asarray((scale_factors or {}).get(p.name, 1.0), np.float64)
            if np.any(factor != 1.0):
                s[sl] = s[sl] * factor

    shift_in = _shift_for(w_in * s_h[None, :, None])
    shift_rec = _shift_for(w_rec * s_h[None, :, None])
    # Relays packing two outputs each take charges 4 and 128: weights 1 and 32 under shift 2
    # (with_count_relay packs only when every readout is a relay).
    shift_out = RELAY_PACKED_SHIFT if packed else _shift_for(w_out * s_o[None, :])
    # Each population's weights then fill 8 bits under the shifts (module docstring).
    left = {p.name: room[p.name] / float(np.max((scale_factors or {}).get(p.name, 1.0)))
            for p in (*layout.hidden, *layout.readout)}
    fills = {**fill_factors(layout.hidden, s_h, [(w_in, shift_in), (w_rec, shift_rec)], left),
             **fill_factors(layout.readout, s_o, [(w_out, shift_out)], left)}
    fills = {name: f if (fill or {}).get(name, 0.0) else 1.0 for name, f in fills.items()}
    for placed, s in ((layout.hidden, s_h), (layout.readout, s_o)):
        for p in placed:
            s[p.start:p.stop] *= fills[p.name]
    q_in = np.clip(np.rint(w_in * s_h[None, :, None] / (1 << shift_in)), -WEIGHT_MAX - 1, WEIGHT_MAX)
    q_rec = np.clip(np.rint(w_rec * s_h[None, :, None] / (1 << shift_rec)), -WEIGHT_MAX - 1, WEIGHT_MAX)
    q_out = np.clip(np.rint(w_out * s_o[None, :] / (1 << shift_out)), -WEIGHT_MAX - 1, WEIGHT_MAX)
    if np.any(relay):
        # CHARGE per relayed spike under the matrix's shift (at least 1, so 128 at shift 7);
        # packed relays 1 and 32 (their relative charges) under PACKED_SHIFT.
        q_out[:, relay] = np.rint(layout.w_out[:, relay] * (1 if packed else
                                                            max(1, RELAY_CHARGE >> shift_out)))
        out["dash_syn"][relay], out["dash_mem"][relay] = 1, 0

    def threshold(th, s):
        return np.where(np.isfinite(th), np.clip(np.rint(th * s), 0, STATE_MAX), STATE_MAX)

    def bias_of(b, s):
        return np.clip(np.rint(b * s), -STATE_MAX - 1, STATE_MAX)

    count_scale = np.ones(len(out["th"]))
    for p in layout.readout:
        sl = slice(p.start, p.stop)
        wanted = float((count_scales or {}).get(p.name, 1.0))
        top = out["th"][sl] * s_o[sl]
        top = float(top[np.isfinite(top)].max(initial=0.0))
        # Raised thresholds must fit 16 bits: the scale applied is capped there (and reported).
        count_scale[sl] = min(wanted, STATE_MAX / top) if wanted > 1 and top > 0 else wanted
    th_h, th_o = threshold(hid["th"], s_h), threshold(out["th"] * count_scale, s_o)
    b_h, b_o = bias_of(hid["bias"], s_h), bias_of(out["bias"], s_o)
    if device.has_bias and rounding_bias:
        fed_h = [(np.abs(layout.w_in[..., k]).sum(0) + np.abs(layout.w_rec[..., k]).sum(0)) > 0 for k in (0, 1)]
        comp_h = rounding_compensation(hid["dash_mem"], [hid["dash_syn"], hid["dash_syn"]], fed_h)
        comp_o = rounding_compensation(out["dash_mem"], [out["dash_syn"]], [np.abs(layout.w_out).sum(0) > 0])
        for placed, b, comp in ((layout.hidden, b_h, comp_h), (layout.readout, b_o, comp_o)):
            for p in placed:
                sl = slice(p.start, p.stop)
                b[sl] = np.clip(b[sl] + float(rounding_bias.get(p.name, 0.0)) * comp[sl], -STATE_MAX - 1, STATE_MAX)
    th_o[relay], b_o[relay] = STATE_MAX, 0
    if (np.any(b_h != 0) or np.any(b_o != 0)) and not device.has_bias:
        raise FitError(f"the network has biases (leak to a rest potential), {device.name} has none",
                       file=file, field="has_bias")
    if np.any(np.isfinite(hid["th"]) & (th_h == 0)):
        notes.append("some hidden thresholds round to 0: those neurons fire on every step")

    spec = XyloSpec(
        weights_in=q_in.astype(np.int64), weights_rec=q_rec.astype(np.int64), weights_out=q_out.astype(np.int64),
        dash_mem=hid["dash_mem"], dash_syn=hid["dash_syn"], dash_syn_2=hid["dash_syn"].copy(),
        threshold=th_h.astype(np.int64), bias=b_h.astype(np.int64),
        dash_mem_out=out["dash_mem"], dash_syn_out=out["dash_syn"],
        threshold_out=th_o.astype(np.int64), bias_out=b_o.astype(np.int64),
        weight_shift_in=shift_in, weight_shift_rec=shift_rec, weight_shift_out=shift_out,
        aliases=layout.aliases, dt=dt).validate(file)

    def layer_rows(placed, sec, s, matrices):
        rows = []
        for p in placed:
            sl = slice(p.start, p.stop)
            tau_float = 1.0 / np.maximum(1e-300, 1.0 - sec["v_decay"][sl])
            tau_xylo = 2.0 ** sec["dash_mem"][sl]
            row = {"population": p.name, "neurons": [p.start, p.stop], "scale": float(np.median(s[sl])),
                   "scale_factor": float(np.median((scale_factors or {}).get(p.name, 1.0))),
                   "max_scale_factor": room[p.name] if np.isfinite(room[p.name]) else None,
                   "unclipped_scale_factor": weight_room[p.name] if np.isfinite(weight_room[p.name]) else None,
                   "dash_mem": sorted(set(sec["dash_mem"][sl].tolist())),
                   "dash_syn": sorted(set(sec["dash_syn"][sl].tolist())),
                   "tau_mem_relative_error": float(np.max(np.abs(tau_xylo / tau_float - 1),
                                                          where=np.isfinite(tau_float), initial=0.0)),
                   "count_scale": float(count_scale[p.start]) if placed is layout.readout else 1.0,
                   "dash_steps": list((dash_steps or {}).get(p.name, (0, 0))),
                   "fill_factor": fills[p.name],
                   "rounding_bias": float((rounding_bias or {}).get(p.name, 0.0)) if device.has_bias else 0.0,
                   "tau_syn_relative_error": float(np.max(np.abs(
                       2.0 ** sec["dash_syn"][sl] / np.maximum(1e-300, 1.0 / np.maximum(
                           1e-300, 1.0 - sec["i_decay"][sl])) - 1), where=sec["i_decay"][sl] > 0,
                       initial=0.0)),
                   "threshold_relative_error": _rel_rms(
                       np.where(np.isfinite(sec["th"][sl]), (th_h[sl] if placed is layout.hidden else
                                                             th_o[sl] / count_scale[sl])
                                / s[sl], 0), np.where(np.isfinite(sec["th"][sl]), sec["th"][sl], 0))}
            for name, (q, w, shift) in matrices.items():
                if w.ndim == 3:
                    wq, wf = q[:, sl, :] * (1 << shift) / s[None, sl, None], w[:, sl, :]
                else:
                    wq, wf = q[:, sl] * (1 << shift) / s[None, sl], w[:, sl]
                if np.any(wf):
                    row[f"{name}_relative_rms_error"] = _rel_rms(wq[wf != 0], wf[wf != 0])
                    row[f"{name}_zeroed"] = int(np.count_nonzero((wq == 0) & (wf != 0)))
                    # Weights beyond 8 bits under the largest shift (a scale factor past
                    # max_scale_factor trades them for a larger threshold).
                    clipped = np.abs(q[:, sl, :] if q.ndim == 3 else q[:, sl]) >= WEIGHT_MAX
                    exact = np.abs(wf) * (s[None, sl, None] if wf.ndim == 3 else s[None, sl]) / (1 << shift)
                    row[f"{name}_clipped"] = int(np.count_nonzero(clipped & (exact > WEIGHT_MAX + 0.5)))
            rows.append(row)
        return rows

    report = {
        "granularity": granularity,
        "state_range": (f"largest float |v| and |i| of a calibration run, with {CALIBRATION_MARGIN}x margin"
                        if calibrated else f"thresholds with {HEADROOM_BITS} bits of headroom (no calibration)"),
        "weight_shift_in": shift_in, "weight_shift_rec": shift_rec, "weight_shift_out": shift_out,
        "layers": layer_rows(layout.hidden, hid, s_h, {"weights_in": (q_in, w_in, shift_in),
                                                        "weights_rec": (q_rec, w_rec, shift_rec)})
        + layer_rows(layout.readout, out, s_o, {"weights_out": (q_out, w_out, shift_out)}),
        "notes": notes + list(layout.notes),
    }
    report["state_scale"] = {"hidden": s_h, "readout": s_o}     # per neuron; popped by the backend
    return spec, report
