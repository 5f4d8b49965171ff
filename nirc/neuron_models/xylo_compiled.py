"""The Xylo fabric's time steps compiled: :meth:`XyloFabric.run` for any batch, step by step.

The arithmetic is :mod:`nirc.neuron_models.xylo_lif`'s (xylosim's), written as
the scalar loops xylosim runs, so nothing needs the whole-array shortcuts the
numpy step takes to stay exact: each source's events reach its targets in
source order (inputs, then hidden neurons), a count c of one source adding
``c * w`` with one saturation (c same-sign saturating adds of w equal one);
currents decay; membranes leak, integrate both synapses and the bias, each add
saturating; neurons fire (closed form for positive thresholds, the literal
wrapping loop otherwise), plain neurons first, then alias sources in order,
copying their spikes to their alias targets. ``tests/test_xylo_compiled.py``
checks it against the numpy step on every recording; both are checked against
xylosim by ``tests/test_xylo_vs_xylosim.py``.
"""

from __future__ import annotations

import numpy as np

from nirc.jit import njit

STATE_MIN, STATE_MAX = -32768, 32767


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
