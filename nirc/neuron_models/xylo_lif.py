"""Xylo's bit-shift LIF neurons and the Xylo fabric's time step, as SynSense's xylosim (v2) computes them.

This module owns the integer arithmetic of Xylo (XyloAudio 2 / XyloIMU class
chips), written once and used by the quantizer, the integer reference and the
emulator. Every detail follows xylosim 0.1.3 (src/v2/cpp/XyloIAFNeuron.cpp,
XyloLayer.cpp) and is checked bit for bit against it by
tests/test_xylo_vs_xylosim.py:

- States (membrane ``v_mem``, synaptic currents ``i_syn``/``i_syn2``),
  thresholds and biases are 16-bit signed; every accumulation saturates.
- ``decay(x, dash) = x >> dash`` (arithmetic, floors), at least 1 in magnitude
  when x != 0; a state decays as ``x -= decay(x, dash)``.
- One step: (1) each input channel's events (capped at 15) add
  ``w << weight_shift_in`` to their targets' synaptic currents, one event at a
  time with saturation, channels in index order; (2) the hidden spikes of the
  previous step (at most 31 per neuron) add ``w << weight_shift_rec`` to hidden
  currents and ``w << weight_shift_out`` to readout currents the same way;
  (3) every synaptic current decays (inputs decay in the step they arrive);
  (4) ``dv = -decay(v, dash_mem)``, ``dv = sat(dv + sum(i_syn))``,
  ``dv = sat(dv + bias)`` when biases are enabled, ``v = sat(v + dv)``;
  (5) while ``v >= threshold`` and the spike count is below the limit
  (31 hidden, 1 readout): count += 1, ``v -= threshold``. Hidden neurons are
  evolved in index order and a neuron's spikes are copied to its alias targets,
  whose count then starts from (or is raised by) those spikes.

Because saturation makes the order of additions matter, the synaptic input is
computed with whole-array sums (clipped once) wherever that is exact - no
partial sum can leave the 16-bit range, or every contribution has the same
sign - and with an exact ordered composition of clamps only for the few
(sample, current) pairs where mixed signs meet a rail. :meth:`XyloFabric.run`
runs the same step compiled (:func:`run_fabric`, numba through
:mod:`nirc.jit`); the numpy step stays as :meth:`XyloFabric.run_stepwise`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from nirc.errors import TargetError
from nirc.neuron_models.base import NeuronModel
from nirc.jit import njit

STATE_BITS = 16
STATE_MIN = -(1 << (STATE_BITS - 1))
STATE_MAX = (1 << (STATE_BITS - 1)) - 1
WEIGHT_MIN, WEIGHT_MAX = -128, 127
DASH_MAX = 15          # 4-bit decay shifts
WEIGHT_SHIFT_MAX = 7   # 3-bit global weight shifts
MAX_INPUT_EVENTS = 15
MAX_HIDDEN_SPIKES = 31
MAX_READOUT_SPIKES = 1

_INT = np.int64
DENSE_LIMIT = 1 << 20      # weight tables up to this many entries are multiplied densely (BLAS)
_THREADPOOLS: list[ThreadpoolController] = []   # found once: the search walks every loaded library


# ---------------------------------------------------------------- elementwise arithmetic

def saturate(x: np.ndarray) -> np.ndarray:
    """Clamp to the signed 16-bit range (xylosim's safe_add after an exact add)."""
    return np.minimum(np.maximum(x, STATE_MIN), STATE_MAX)


def wrap(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to 16 bits (C++ assignment of an int to int16_t)."""
    return ((np.asarray(x, _INT) - STATE_MIN) & 0xFFFF) + STATE_MIN


def bitshift_decay(x: np.ndarray, dash: np.ndarray) -> np.ndarray:
    """The amount a state loses in one step: ``x >> dash``, but at least 1 in magnitude if x != 0."""
    d = np.right_shift(x, dash)
    return np.where(d == 0, np.sign(x), d)


def compose_saturating_adds(initial: np.ndarray, contributions: np.ndarray) -> np.ndarray:
    """``initial`` after adding each of ``contributions[..., j]`` in order j = 0, 1, ... with saturation.

    Each saturating add is the function x -> clip(x + s, lo, hi); such functions
    are closed under composition ((s1, l1, h1) then (s2, l2, h2) is
    (s1 + s2, clip(l1 + s2, l2, h2), clip(h1 + s2, l2, h2))), so the sequence is
    reduced pairwise in log2(n) vectorised rounds instead of n sequential ones.
    """
    s = np.asarray(contributions, _INT)
    n = s.shape[-1]
    width = 1 << max(0, int(n - 1).bit_length())
    if width != n:
        s = np.pad(s, [(0, 0)] * (s.ndim - 1) + [(0, width - n)])
    if width == 1:
        return np.minimum(np.maximum(np.asarray(initial, _INT) + s[..., 0], STATE_MIN), STATE_MAX)
    # The first round starts from plain adds (lo, hi = the rails).
    s1, s2 = s[..., 0::2], s[..., 1::2]
    lo = np.minimum(np.maximum(STATE_MIN + s2, STATE_MIN), STATE_MAX)
    hi = np.minimum(np.maximum(STATE_MAX + s2, STATE_MIN), STATE_MAX)
    s = s1 + s2
    while s.shape[-1] > 1:
        s1, s2 = s[..., 0::2], s[..., 1::2]
        l1, l2 = lo[..., 0::2], lo[..., 1::2]
        h1, h2 = hi[..., 0::2], hi[..., 1::2]
        lo = np.minimum(np.maximum(l1 + s2, l2), h2)
        hi = np.minimum(np.maximum(h1 + s2, l2), h2)
        s = s1 + s2
    return np.minimum(np.maximum(np.asarray(initial, _INT) + s[..., 0], lo[..., 0]), hi[..., 0])


def integrate(v_mem: np.ndarray, i_syns: np.ndarray, dash_mem: np.ndarray, dash_syns: np.ndarray,
              bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Decay the synaptic currents (..., N, K) and integrate them into the membranes (..., N).

    Returns (v_mem, i_syns) before the threshold test. ``bias`` None means
    biases are disabled on the chip (xylosim's has_bias = false).
    """
    i_syns = i_syns - bitshift_decay(i_syns, dash_syns)
    return membrane_step(v_mem, i_syns.sum(axis=-1), dash_mem, bias), i_syns


def membrane_step(v_mem: np.ndarray, current: np.ndarray, dash_mem: np.ndarray, bias: np.ndarray | None,
                  may_wrap: bool = True) -> np.ndarray:
    """v after one step: leak, the (unsaturated) sum of the decayed currents, bias; each add saturating.

    ``may_wrap`` False skips the int16 wrap of -decay(v), which only -(-32768) with dash 0 needs.
    """
    dv = -bitshift_decay(v_mem, dash_mem)
    if may_wrap:
        dv = wrap(dv)
    dv = saturate(dv + current)
    if bias is not None:
        dv = saturate(dv + bias)
    return saturate(v_mem + dv)


def fire(v_mem: np.ndarray, threshold: np.ndarray, max_spikes: np.ndarray | int,
         already: np.ndarray | int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Subtractive reset repeated while ``v >= threshold`` and the count is below ``max_spikes``.

    ``already`` is the count a neuron starts from (spikes copied from an alias
    source). Returns (total count, v_mem after reset).
    """
    v_mem = np.asarray(v_mem, _INT)
    threshold = np.asarray(threshold, _INT)
    room = np.maximum(np.asarray(max_spikes, _INT) - already, 0)
    positive = threshold > 0
    if positive.all():
        own, v_out = fire_positive(v_mem, threshold, room)
        return already + own, v_out
    threshold = np.broadcast_to(threshold, v_mem.shape)
    room = np.broadcast_to(room, v_mem.shape)
    safe_th = np.where(positive, threshold, 1)
    wanted = np.where(v_mem >= threshold, (v_mem - threshold) // safe_th + 1, 0)
    own = np.where(positive, np.minimum(wanted, room), 0)
    v_out = v_mem - own * threshold
    odd = ~positive & (v_mem >= threshold) & (room > 0)
    if odd.any():
        # threshold <= 0: the C++ loop wraps v around int16, so run it literally (at most 31 rounds).
        v, th, left = v_mem[odd], threshold[odd], room[odd]
        count = np.zeros_like(v)
        for _ in range(int(np.max(max_spikes))):
            go = (v >= th) & (count < left)
            if not go.any():
                break
            count += go
            v = np.where(go, wrap(v - th), v)
        own = own.copy()
        own[odd] = count
        v_out[odd] = v
    return already + own, v_out


def fire_positive(v_mem: np.ndarray, threshold: np.ndarray, room) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fire` when every threshold is > 0: the loop runs floor(v / threshold) times, capped by ``room``."""
    count = np.minimum(np.maximum(v_mem // threshold, 0), room)
    return count, v_mem - count * threshold


# ---------------------------------------------------------------- the fabric, compiled

# XyloFabric.run for any batch, step by step, as the scalar loops xylosim runs:
# each source's events reach its targets in source order (inputs, then hidden
# neurons), a count c of one source adding c * w with one saturation (c same-sign
# saturating adds of w equal one); currents decay; membranes leak, integrate both
# synapses and the bias, each add saturating; neurons fire (closed form for
# positive thresholds, the literal wrapping loop otherwise), plain neurons first,
# then alias sources in order, copying their spikes to their alias targets.
# tests/test_xylo_compiled.py checks it against the numpy step (run_stepwise).

@njit(nogil=True)
def _sat(x):
    return min(max(x, STATE_MIN), STATE_MAX)


@njit(nogil=True)
def _wrap(x):
    return ((x - STATE_MIN) & 0xFFFF) + STATE_MIN


@njit(nogil=True)
def _decay(x, dash):
    d = x >> dash
    if d == 0:
        return 1 if x > 0 else (-1 if x < 0 else 0)
    return d


@njit(nogil=True)
def _fire(v, th, room):
    """(own spikes, v after reset): subtract th while v >= th, at most ``room`` times."""
    if th > 0:
        own = min(max(v // th, 0), room)
        return own, v - own * th
    own = 0
    while v >= th and own < room:
        own += 1
        v = _wrap(v - th)
    return own, v


@njit(nogil=True)
def run_fabric(capped, v0, currents0, spikes0, indptr, indices, data, dash_columns, dash_mem,
               threshold, bias, has_bias, max_spikes, is_plain, alias_order, alias_ptr,
               alias_targets, may_wrap, hidden, readout, v_rec, cur_rec):
    """Run ``capped`` (B, T, Nin) input counts from the given state; fill the recordings.

    ``indptr/indices/data``: the effective weights by source (CSR; columns are
    synapse-1 currents of the M neurons, then synapse-2). Recordings: hidden
    (B, T, Nh), readout (B, T, Nout) spike counts, v_rec (B, T, M), cur_rec
    (B, T, 2M). Final state is left in v0, currents0, spikes0 (modified in
    place). Returns how many (sample, step, current) deliveries saturated.
    """
    n_batch, steps, nin = capped.shape
    m = v0.shape[1]
    nh = spikes0.shape[1]
    raw = np.empty(2 * m, dtype=np.int64)
    counts = np.empty(m, dtype=np.int64)
    saturated = 0
    for b in range(n_batch):
        v = v0[b]
        cur = currents0[b]
        spikes = spikes0[b]
        for k in range(steps):
            for j in range(2 * m):
                raw[j] = cur[j]
            touched = False
            for s in range(nin + nh):
                c = capped[b, k, s] if s < nin else spikes[s - nin]
                if c == 0:
                    continue
                touched = True
                for i in range(indptr[s], indptr[s + 1]):
                    j = indices[i]
                    add = c * data[i]
                    raw[j] += add
                    cur[j] = _sat(cur[j] + add)
            if touched:
                for j in range(2 * m):
                    if cur[j] != raw[j]:
                        saturated += 1
            for j in range(2 * m):
                cur[j] -= _decay(cur[j], dash_columns[j])
            for n in range(m):
                dv = -_decay(v[n], dash_mem[n])
                if may_wrap:
                    dv = _wrap(dv)
                dv = _sat(dv + cur[n] + cur[m + n])
                if has_bias:
                    dv = _sat(dv + bias[n])
                v[n] = _sat(v[n] + dv)
            for n in range(m):
                counts[n] = 0
                if is_plain[n]:
                    counts[n], v[n] = _fire(v[n], threshold[n], max_spikes[n])
            for a in range(alias_order.shape[0]):
                n = alias_order[a]
                already = counts[n]
                own, v[n] = _fire(v[n], threshold[n], max(max_spikes[n] - already, 0))
                counts[n] = already + own
                if n < nh:
                    for i in range(alias_ptr[n], alias_ptr[n + 1]):
                        t = alias_targets[i]
                        counts[t] = min(counts[t] + counts[n], max_spikes[t])
            for n in range(nh):
                spikes[n] = counts[n]
                hidden[b, k, n] = counts[n]
            for n in range(nh, m):
                readout[b, k, n - nh] = counts[n]
            for n in range(m):
                v_rec[b, k, n] = v[n]
            for j in range(2 * m):
                cur_rec[b, k, j] = cur[j]
    return saturated


# ---------------------------------------------------------------- the fabric

@dataclass(frozen=True, eq=False)
class XyloSpec:
    """One Xylo network in rockpool's specification vocabulary (XyloSim.from_specification).

    Integer arrays: weights_in (Nin, Nhidden, 2), weights_rec (Nhidden, Nhidden, 2),
    weights_out (Nhidden, Nout); per-neuron dash_mem, dash_syn, dash_syn_2,
    threshold, bias (Nhidden) and dash_mem_out, dash_syn_out, threshold_out,
    bias_out (Nout); global weight_shift_in/rec/out; aliases[i] lists the
    hidden neurons that receive copies of hidden neuron i's spikes.
    """

    weights_in: np.ndarray
    weights_rec: np.ndarray
    weights_out: np.ndarray
    dash_mem: np.ndarray
    dash_syn: np.ndarray
    dash_syn_2: np.ndarray
    threshold: np.ndarray
    bias: np.ndarray
    dash_mem_out: np.ndarray
    dash_syn_out: np.ndarray
    threshold_out: np.ndarray
    bias_out: np.ndarray
    weight_shift_in: int = 0
    weight_shift_rec: int = 0
    weight_shift_out: int = 0
    aliases: tuple[tuple[int, ...], ...] = ()
    dt: float = 1e-3

    @property
    def n_inputs(self) -> int:
        return int(self.weights_in.shape[0])

    @property
    def n_hidden(self) -> int:
        return int(self.weights_rec.shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.weights_out.shape[1])

    @property
    def has_bias(self) -> bool:
        """Biases are switched on when any is non-zero (as rockpool's from_specification does)."""
        return bool(np.any(self.bias != 0) or np.any(self.bias_out != 0))

    def validate(self, file: str | None = None) -> "XyloSpec":
        """Raise TargetError naming the field when a value does not fit Xylo's formats."""
        nin, nh, nout = self.n_inputs, self.n_hidden, self.n_outputs
        shapes = {"weights_in": (nin, nh, 2), "weights_rec": (nh, nh, 2), "weights_out": (nh, nout),
                  "dash_mem": (nh,), "dash_syn": (nh,), "dash_syn_2": (nh,), "threshold": (nh,),
                  "bias": (nh,), "dash_mem_out": (nout,), "dash_syn_out": (nout,),
                  "threshold_out": (nout,), "bias_out": (nout,)}
        ranges = {"weights_in": (WEIGHT_MIN, WEIGHT_MAX), "weights_rec": (WEIGHT_MIN, WEIGHT_MAX),
                  "weights_out": (WEIGHT_MIN, WEIGHT_MAX), "threshold": (STATE_MIN, STATE_MAX),
                  "bias": (STATE_MIN, STATE_MAX), "threshold_out": (STATE_MIN, STATE_MAX),
                  "bias_out": (STATE_MIN, STATE_MAX)}
        for name, shape in shapes.items():
            arr = np.asarray(getattr(self, name))
            if arr.shape != shape:
                raise TargetError(f"shape {arr.shape}, expected {shape}", file=file, field=name)
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise TargetError(f"must hold integers, got {arr.dtype}", file=file, field=name)
            lo, hi = ranges.get(name, (0, DASH_MAX))
            if arr.size and (arr.min() < lo or arr.max() > hi):
                raise TargetError(f"values span [{arr.min()}, {arr.max()}], outside [{lo}, {hi}]",
                                  file=file, field=name)
        for name in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
            value = getattr(self, name)
            if not 0 <= int(value) <= WEIGHT_SHIFT_MAX:
                raise TargetError(f"{value} is outside [0, {WEIGHT_SHIFT_MAX}]", file=file, field=name)
        if self.aliases and len(self.aliases) != nh:
            raise TargetError(f"{len(self.aliases)} entries, expected one per hidden neuron ({nh})",
                              file=file, field="aliases")
        for src, targets in enumerate(self.aliases):
            for t in targets:
                if not 0 <= int(t) < nh:
                    raise TargetError(f"hidden neuron {src} aliases neuron {t}, which does not exist",
                                      file=file, field="aliases")
        if not self.dt > 0:
            raise TargetError(f"time step {self.dt} must be positive", file=file, field="dt")
        return self


@dataclass
class XyloState:
    """The fabric's state between steps for a batch of B samples.

    Hidden and readout neurons are stored together (M = Nhidden + Nout, hidden
    first); ``currents`` holds synapse 1 of all M neurons, then synapse 2
    (always 0 for readout neurons, which have one synapse).
    """

    v_mem: np.ndarray          # (B, M)
    currents: np.ndarray       # (B, 2M)
    spikes: np.ndarray         # (B, Nhidden) hidden spikes of the last step, delivered next step
    saturated: int = 0         # currents clipped while delivering this step's events
    delivered: int = 0         # synaptic events delivered this step (source events x fan-out)

    @classmethod
    def zeros(cls, spec: XyloSpec, batch: int = 1) -> "XyloState":
        m = spec.n_hidden + spec.n_outputs
        return cls(np.zeros((batch, m), _INT), np.zeros((batch, 2 * m), _INT),
                   np.zeros((batch, spec.n_hidden), _INT))


@dataclass
class XyloRecord:
    """Per-step recordings (B, T, ...), named as xylosim records them."""

    spikes: np.ndarray         # hidden spike counts (rec_recurrent_spikes)
    spikes_out: np.ndarray     # readout spikes (rec_out_spikes)
    v_mem: np.ndarray
    i_syn: np.ndarray
    i_syn2: np.ndarray
    v_mem_out: np.ndarray
    i_syn_out: np.ndarray
    synaptic_events: int = 0   # source events x fan-out delivered, for benchmarks
    saturated_currents: int = 0  # (sample, step, current) deliveries clipped at the 16-bit rails


def _per_neuron(hidden, readout) -> np.ndarray:
    return np.concatenate([np.asarray(hidden, _INT).reshape(-1), np.asarray(readout, _INT).reshape(-1)])


@dataclass(frozen=True, eq=False)
class XyloFabric:
    """A spec prepared for stepping: one signed weight table from every source to every synaptic current.

    Sources are the Nin input channels then the Nhidden hidden neurons (xylosim's
    delivery order); columns are synapse 1 of the M = Nhidden + Nout neurons,
    then synapse 2 (hidden and readout neurons are stepped together; readout
    neurons have no second synapse, so those columns stay 0).
    """

    spec: XyloSpec
    weights: np.ndarray                 # (Nin + Nhidden, 2M) effective, shifts applied
    pos_neg: sp.csr_array               # [max(w, 0) | min(w, 0)] of ``weights``
    pos_neg_dense: np.ndarray | None    # the same as float64 (exact) when small enough for BLAS
    by_target: sp.csc_array             # ``weights`` by column, rows (sources) in delivery order
    fan_out: np.ndarray                 # synapses per source, for event counts
    alias_order: np.ndarray             # hidden neurons fired one by one (alias sources and targets)
    plain: np.ndarray                   # neurons (hidden or readout) fired all at once
    dash_columns: np.ndarray = field(repr=False)   # (2M,) decay shift of each current
    dash_mem: np.ndarray = field(repr=False)       # (M,)
    threshold: np.ndarray = field(repr=False)      # (M,)
    bias: np.ndarray | None = field(repr=False)    # (M,) or None when biases are off
    max_spikes: np.ndarray = field(repr=False)     # (M,) 31 hidden, 1 readout
    positive_thresholds: bool = True               # fire's closed form applies to every neuron
    may_wrap: bool = True                          # some dash_mem is 0, so -decay can leave int16

    @classmethod
    def build(cls, spec: XyloSpec) -> "XyloFabric":
        nin, nh, no = spec.n_inputs, spec.n_hidden, spec.n_outputs
        m = nh + no
        w = np.zeros((nin + nh, 2 * m), _INT)
        w_in = np.asarray(spec.weights_in, _INT) << int(spec.weight_shift_in)
        w_rec = np.asarray(spec.weights_rec, _INT) << int(spec.weight_shift_rec)
        w[:nin, :nh], w[:nin, m:m + nh] = w_in[:, :, 0], w_in[:, :, 1]
        w[nin:, :nh], w[nin:, m:m + nh] = w_rec[:, :, 0], w_rec[:, :, 1]
        w[nin:, nh:m] = np.asarray(spec.weights_out, _INT) << int(spec.weight_shift_out)
        pos_neg = sp.csr_array(np.concatenate([np.maximum(w, 0), np.minimum(w, 0)], axis=1))
        by_target = sp.csc_array(w)
        by_target.sort_indices()
        dense = pos_neg.toarray().astype(np.float64) if pos_neg.shape[0] * pos_neg.shape[1] <= DENSE_LIMIT else None
        involved = sorted({i for i, ts in enumerate(spec.aliases) if ts}
                          | {int(t) for ts in spec.aliases for t in ts})
        plain = np.setdiff1d(np.arange(m), involved)
        dash_columns = np.concatenate([_per_neuron(spec.dash_syn, spec.dash_syn_out),
                                       _per_neuron(spec.dash_syn_2, np.zeros(no))])
        dash_mem = _per_neuron(spec.dash_mem, spec.dash_mem_out)
        threshold = _per_neuron(spec.threshold, spec.threshold_out)
        return cls(spec, w, pos_neg, dense, by_target, np.count_nonzero(w, axis=1),
                   np.asarray(involved, np.intp), plain, dash_columns, dash_mem, threshold,
                   _per_neuron(spec.bias, spec.bias_out) if spec.has_bias else None,
                   _per_neuron(np.full(nh, MAX_HIDDEN_SPIKES), np.full(no, MAX_READOUT_SPIKES)),
                   bool(np.all(threshold > 0)), bool(np.any(dash_mem == 0)))

    def deliver(self, i_now: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, int]:
        """Add every source's events (B, S) to the synaptic currents (B, C), in xylosim's order.

        Returns the new currents and how many of them saturated on the way.
        """
        if self.pos_neg_dense is not None:
            pn = (events @ self.pos_neg_dense).astype(_INT)
        else:
            pn = np.asarray((sp.csr_array(events) @ self.pos_neg).todense())
        ncol = self.weights.shape[1]
        pos, neg = pn[:, :ncol], pn[:, ncol:]
        high, low = i_now + pos, i_now + neg
        total = high + neg
        if high.max(initial=STATE_MIN) <= STATE_MAX and low.min(initial=STATE_MAX) >= STATE_MIN:
            return total, 0       # no partial sum reaches a rail (the common case)
        out = saturate(total)
        clipped = int(np.count_nonzero(out != total))
        # Same-sign additions saturate like one addition of their sum; the order matters only
        # where a rail can be hit and contributions of the other sign follow or precede it.
        risky = ((high > STATE_MAX) & (neg < 0)) | ((low < STATE_MIN) & (pos > 0))
        if not risky.any():
            return out, clipped
        # Exact path: for each risky (sample, current), the non-zero contributions of its incoming
        # synapses in source order (the CSC row order), padded with zeros, which leave an
        # in-range current unchanged.
        b, c = np.nonzero(risky)
        starts, stops = self.by_target.indptr[c], self.by_target.indptr[c + 1]
        lengths = stops - starts
        pair = np.repeat(np.arange(len(b)), lengths)
        flat = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
        values = (events.ravel()[b[pair] * events.shape[1] + self.by_target.indices[flat]].astype(_INT)
                  * self.by_target.data[flat])
        keep = values != 0
        pair, values = pair[keep], values[keep]
        counts = np.bincount(pair, minlength=len(b))
        position = np.arange(len(pair)) - np.repeat(np.cumsum(counts) - counts, counts)
        width = 1 << max(0, int(counts.max(initial=0)) - 1).bit_length()
        contributions = np.zeros((len(b), width), _INT)
        contributions[pair, position] = values
        exact = compose_saturating_adds(i_now[b, c], contributions)
        saturated = clipped - int(np.count_nonzero(out[b, c] != total[b, c])) \
            + int(np.count_nonzero(exact != total[b, c]))
        out[b, c] = exact
        return out, saturated

    def step(self, state: XyloState, counts_in: np.ndarray) -> tuple[XyloState, np.ndarray]:
        """Advance one time step on ``counts_in`` (B, Nin) input events; return (new state, readout spikes)."""
        events = np.concatenate([np.minimum(counts_in, MAX_INPUT_EVENTS), state.spikes], axis=1)
        new, readout = self._advance(state, events.astype(self._event_dtype))
        new.delivered = int(self.fan_out @ np.count_nonzero(events, axis=0))
        return new, readout

    @property
    def _event_dtype(self):
        return np.float64 if self.pos_neg_dense is not None else _INT

    def _advance(self, state: XyloState, events: np.ndarray) -> tuple[XyloState, np.ndarray]:
        """One step given all source events (B, Nin + Nhidden), inputs already capped."""
        nh, m = self.spec.n_hidden, self.threshold.shape[0]
        currents, saturated = self.deliver(state.currents, events)
        currents -= bitshift_decay(currents, self.dash_columns)
        v = membrane_step(state.v_mem, currents[:, :m] + currents[:, m:], self.dash_mem, self.bias, self.may_wrap)
        if self.alias_order.size:
            counts = np.zeros_like(v)
            counts[:, self.plain], v[:, self.plain] = fire(v[:, self.plain], self.threshold[self.plain],
                                                           self.max_spikes[self.plain])
            for n in self.alias_order:
                counts[:, n], v[:, n] = fire(v[:, n], self.threshold[n], MAX_HIDDEN_SPIKES, counts[:, n])
                for t in self.spec.aliases[n]:
                    counts[:, t] = np.minimum(counts[:, t] + counts[:, n], MAX_HIDDEN_SPIKES)
        elif self.positive_thresholds:
            counts, v = fire_positive(v, self.threshold, self.max_spikes)
        else:
            counts, v = fire(v, self.threshold, self.max_spikes)
        return XyloState(v, currents, counts[:, :nh], saturated), counts[:, nh:]

    def run(self, counts: np.ndarray, state: XyloState | None = None) -> tuple[XyloRecord, XyloState]:
        """Run input events ``counts`` (T, Nin) or (B, T, Nin); return recordings (B, T, ...) and the final state.

        Compiled (:func:`run_fabric`); :meth:`run_stepwise` is the same
        computation with numpy, one vectorised step at a time."""
        capped = self._checked(counts)
        b, t = capped.shape[:2]
        nin, nh, m = self.spec.n_inputs, self.spec.n_hidden, self.threshold.shape[0]
        state = state or XyloState.zeros(self.spec, b)
        first_spikes = state.spikes
        v, cur = state.v_mem.astype(_INT, copy=True), state.currents.astype(_INT, copy=True)
        spikes = state.spikes.astype(_INT, copy=True)
        hidden = np.zeros((b, t, nh), np.uint8)
        readout = np.zeros((b, t, m - nh), np.uint8)
        v_rec = np.zeros((b, t, m), np.int16)
        cur_rec = np.zeros((b, t, 2 * m), np.int16)
        saturated = run_fabric(np.ascontiguousarray(capped), v, cur, spikes, *self._compiled(),
                               bool(self.may_wrap), hidden, readout, v_rec, cur_rec)
        record = XyloRecord(hidden, readout, np.ascontiguousarray(v_rec[:, :, :nh]),
                            np.ascontiguousarray(cur_rec[:, :, :nh]),
                            np.ascontiguousarray(cur_rec[:, :, m:m + nh]),
                            np.ascontiguousarray(v_rec[:, :, nh:m]),
                            np.ascontiguousarray(cur_rec[:, :, nh:m]),
                            self._delivered(capped, first_spikes, hidden), int(saturated))
        return record, XyloState(v, cur, spikes)

    def _compiled(self) -> tuple:
        """The fabric's tables as run_fabric takes them (built once per fabric)."""
        if "_tables" not in self.__dict__:
            by_source = sp.csr_array(self.weights)
            by_source.sort_indices()
            m, nh = self.threshold.shape[0], self.spec.n_hidden
            aliases = list(self.spec.aliases) or [()] * nh
            alias_ptr = np.concatenate([[0], np.cumsum([len(a) for a in aliases])]).astype(_INT)
            alias_targets = np.asarray([t for a in aliases for t in a], _INT)
            is_plain = np.zeros(m, np.bool_)
            is_plain[self.plain] = True
            bias = self.bias if self.bias is not None else np.zeros(m, _INT)
            tables = (by_source.indptr.astype(_INT), by_source.indices.astype(_INT),
                      by_source.data.astype(_INT), self.dash_columns.astype(_INT),
                      self.dash_mem.astype(_INT), self.threshold.astype(_INT), bias.astype(_INT),
                      self.bias is not None, self.max_spikes.astype(_INT), is_plain,
                      self.alias_order.astype(_INT), alias_ptr, alias_targets)
            object.__setattr__(self, "_tables", tables)
        return self.__dict__["_tables"]

    def _checked(self, counts: np.ndarray) -> np.ndarray:
        """Input events as (B, T, Nin) int64, capped at the chip's 15 per channel and step."""
        counts = np.asarray(counts)
        if counts.ndim == 2:
            counts = counts[None]
        if counts.ndim != 3 or counts.shape[2] != self.spec.n_inputs:
            raise TargetError(f"input events have shape {counts.shape}, expected (T, {self.spec.n_inputs}) "
                              f"or (B, T, {self.spec.n_inputs})", field="input")
        if counts.size and counts.min() < 0:
            raise TargetError("input event counts must be non-negative", field="input")
        return np.minimum(counts, MAX_INPUT_EVENTS).astype(_INT)

    def _delivered(self, capped: np.ndarray, first_spikes: np.ndarray, spikes: np.ndarray) -> int:
        """Synaptic events: every source event (input channel or hidden neuron) times its fan-out;
        hidden spikes of step k are delivered in step k + 1."""
        nin, nh = self.spec.n_inputs, self.spec.n_hidden
        t = capped.shape[1]
        previous = np.concatenate([first_spikes[:, None], spikes[:, :-1]], axis=1) if t else spikes
        sources = np.concatenate([capped > 0, previous > 0], axis=2)
        return int(sources.reshape(-1, nin + nh).sum(axis=0) @ self.fan_out)

    def run_stepwise(self, counts: np.ndarray, state: XyloState | None = None
                     ) -> tuple[XyloRecord, XyloState]:
        """:meth:`run` with numpy, one step at a time (batch rows vectorised)."""
        capped = self._checked(counts)
        b, t = capped.shape[:2]
        nin, nh, m = self.spec.n_inputs, self.spec.n_hidden, self.threshold.shape[0]
        state = state or XyloState.zeros(self.spec, b)
        first_spikes = state.spikes
        events = np.zeros((b, nin + nh), self._event_dtype)
        events[:, nin:] = state.spikes
        hidden, readout, v_mem, currents = [], [], [], []
        saturated = 0
        # The per-step products are small: BLAS threads only contend (100x slower on a busy machine).
        if not _THREADPOOLS:
            _THREADPOOLS.append(ThreadpoolController())
        with _THREADPOOLS[0].limit(limits=1, user_api="blas"):
            for k in range(t):
                events[:, :nin] = capped[:, k]
                state, out = self._advance(state, events)
                events[:, nin:] = state.spikes
                hidden.append(state.spikes)
                readout.append(out)
                v_mem.append(state.v_mem)
                currents.append(state.currents)
                saturated += state.saturated

        def bt(parts: list, dtype, width: int, cols=slice(None)) -> np.ndarray:
            """Per-step arrays (B, ...) -> (B, T, ...) of ``cols``."""
            if not parts:
                return np.zeros((b, 0, width), dtype)
            return np.ascontiguousarray(np.stack(parts, axis=1)[:, :, cols].astype(dtype))

        spikes = bt(hidden, np.uint8, nh)
        delivered = self._delivered(capped, first_spikes, spikes)
        return XyloRecord(spikes, bt(readout, np.uint8, m - nh), bt(v_mem, np.int16, nh, slice(0, nh)),
                          bt(currents, np.int16, nh, slice(0, nh)), bt(currents, np.int16, nh, slice(m, m + nh)),
                          bt(v_mem, np.int16, m - nh, slice(nh, m)), bt(currents, np.int16, m - nh, slice(nh, m)),
                          delivered, saturated), state


# ---------------------------------------------------------------- the registry's view

class XyloLIF(NeuronModel):
    """Xylo's neuron for nirc.neuron_models' per-population interface.

    ``step`` and ``accumulate`` run one population with its summed input added
    at once; the exact chip (ordered saturating delivery over all tables,
    aliases, event caps) is :class:`XyloFabric`, which the Xylo backend's
    integer reference and emulator both use. Quantization is done for the
    whole fabric at once (the three weight shifts are global), by the
    ``xylo_quantize`` pass, so :meth:`quantize` refuses single populations.
    """

    name = "xylo_lif"
    param_names = ("dash_mem", "dash_syn", "threshold", "bias")
    state_names = ("i_syn", "v_mem")
    table_fields = ("weight_shift",)
    readout_state = "v_mem"
    min_delay = 0
    dtype = np.int64
    spike_delivery = ("Xylo: input events reach hidden neurons in the same step; hidden spikes "
                      "reach hidden and readout neurons one step later")

    def firing_rules(self, pop, readout=False):
        # xylosim: while v >= threshold and the count is below the limit, count += 1, v -= threshold.
        # A state saturates at STATE_MAX: thresholds above half of it allow one spike per step.
        threshold = np.asarray((pop.params or {}).get("threshold", 0)) if pop is not None else np.zeros(1)
        one = readout or bool(threshold.size and np.all(2 * threshold.astype(np.int64) > STATE_MAX))
        return {"reset": "subtract", "spikes": "single" if one else "multi",
                "max_spikes": 1 if one else MAX_HIDDEN_SPIKES,
                "threshold_test": ">=", "per": "step"}

    def input_notice(self, values):
        # Event counts are legitimate input; the input interface caps them per channel and step.
        if np.any(values > MAX_INPUT_EVENTS):
            return (f"holds counts above {MAX_INPUT_EVENTS}; Xylo takes at most "
                    f"{MAX_INPUT_EVENTS} input events per channel and step (more are capped)")
        return None

    def init_state(self, params, batch):
        size = np.shape(params["threshold"])[0]
        return {"i_syn": np.zeros((batch, size), _INT), "v_mem": np.zeros((batch, size), _INT)}

    def prepare_weights(self, table):
        shift = int((table.kernel or {}).get("weight_shift", 0))
        return sp.csr_array(table.weights.astype(_INT) * (1 << shift))

    def accumulate(self, weights, attrs, spikes):
        counts = np.asarray(spikes, _INT)
        return np.asarray((weights @ counts.T).T, _INT)

    def step(self, params, state, a_in):
        i_syn = saturate(state["i_syn"] + a_in)
        v, i = integrate(state["v_mem"], i_syn[..., None], params["dash_mem"],
                         np.asarray(params["dash_syn"])[:, None], params.get("bias"))
        count, v = fire(v, params["threshold"], int(np.max(params.get("max_spikes", MAX_HIDDEN_SPIKES))))
        state["i_syn"], state["v_mem"] = i[..., 0], v
        return count

    def run_network(self, net, inputs, batch=False, record=False):
        """The integer reference (nirc.intref's hook): the whole fabric with its delivery order."""
        from nirc.targets.xylo.backend import reference

        return reference(net, inputs, batch=batch, record=record)

    def quantize(self, pop, tables, formats, granularity):
        raise TargetError("Xylo's weight shifts are shared by all populations: quantize the whole network "
                          "with the xylo_quantize pass, not one population at a time", node=pop.name)


MODEL = XyloLIF()
