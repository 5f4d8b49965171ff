"""The Speck emulator's compiled event engine: one core's events of one step, in chip order.

:func:`run_events` walks a core's input events straight through its kernel
(no per-synapse list is built): for each event in order, the covered output
positions in row-major order, all output channels of a position before the
next, each nonzero weight applied with
:func:`nirc.neuron_models.speck_iaf.update` — the semantics of
:func:`nirc.neuron_models.speck_iaf.integrate` over the contribution list the
previous emulator built, update for update.

Events arrive run-length encoded, (pixel, count): network inputs are counts,
and a count n is n consecutive identical events. A neuron's n updates from
such a run are consecutive in its own history (no other event reaches it in
between), so :func:`nirc.neuron_models.speck_iaf.update_repeated` applies them
at once (closed form when exact), and only the output order is rebuilt: the
chip emits the run's spikes repeat by repeat, each repeat in neuron order, so
the (repeat, neuron) pairs are put in that order with a counting sort. The
cost of a run is then its footprint plus its spikes, not count x footprint.
"""

from __future__ import annotations

import numpy as np

from nirc.jit import njit
from nirc.neuron_models.speck_iaf import update, update_repeated


SHORT_RUN = 16    # runs of up to this many identical events cost less applied event by event


@njit(nogil=True)
def _grow(buffer, needed):
    if needed <= buffer.shape[0]:
        return buffer
    bigger = np.empty(max(needed, 2 * buffer.shape[0]), dtype=buffer.dtype)
    bigger[:buffer.shape[0]] = buffer
    return bigger


def covered(size_in: int, size_out: int, k: int, stride: int, padding: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per input row (or column) i: the kernel taps and output rows it reaches, ascending output.

    Output row o covers input row i through tap t when ``o*stride - padding + t == i``.
    Returns (count (size_in,), tap (size_in, k), out (size_in, k)); entries past count unused.
    """
    taps = np.arange(k)[::-1]                                   # descending tap = ascending output
    n = np.arange(size_in)[:, None] + padding - taps[None, :]
    ok = (n >= 0) & (n % stride == 0) & (n // stride < size_out)
    count = ok.sum(axis=1)
    order = np.argsort(~ok, axis=1, kind="stable")              # valid entries first, in order
    tap = np.take_along_axis(np.broadcast_to(taps, ok.shape), order, axis=1)
    out = np.take_along_axis(n // stride, order, axis=1)
    return count.astype(np.int64), np.ascontiguousarray(tap), np.ascontiguousarray(out)


@njit(nogil=True)
def run_events(v, pixels, counts, weight, flipped, h, w, c_out, h_out, w_out,
               row_count, row_tap, row_out, col_count, col_tap, col_out, unit_stride_x,
               threshold_high, threshold_low, return_to_zero, out, n_out):
    """Apply events (flat input-map pixels ``pixels``, each ``counts`` times) to ``v``.

    ``v`` is the core's state position-major (index ``position * c_out + channel``),
    so one event's updates at a position are contiguous and independent of each
    other. ``weight`` is (c_in, k, k, c_out) (ky, kx torch order, output channel
    last) and ``flipped`` the same with kx reversed, (c_in, k, k * c_out), so a
    kernel row lists its taps in output order; (h, w) is the input map, (c_out,
    h_out, w_out) the output map; ``row_*``/``col_*`` are :func:`covered` tables
    of the kernel geometry (``unit_stride_x``: stride 1 across); the neuron
    parameters are the core's scalars. Output events (flat (c, y, x) neuron
    indices, in emission order) are appended to ``out[n_out:]``, which grows as
    needed; returns (out, n_out). (Plain arrays and numbers as arguments: numba
    checks tuple arguments' types on every call, which cost more than a small
    step's work.)
    """
    if not unit_stride_x:
        return _run_general(v, pixels, counts, weight, flipped, h, w, c_out, h_out, w_out,
                            row_count, row_tap, row_out, col_count, col_tap, col_out, False,
                            threshold_high, threshold_low, return_to_zero, out, n_out)
    # Stride 1 across: stretches of short runs take the lean loop, long runs the general one.
    e = 0
    while e < pixels.shape[0]:
        f = e
        while f < pixels.shape[0] and counts[f] <= SHORT_RUN:
            f += 1
        if f > e:
            out, n_out = _short_runs_stride1(
                v, pixels[e:f], counts[e:f], flipped, h, w, c_out, h_out, w_out, row_count,
                row_tap, row_out, col_count, col_tap, col_out, threshold_high, threshold_low,
                return_to_zero, out, n_out)
        if f < pixels.shape[0]:
            out, n_out = _run_general(v, pixels[f:f + 1], counts[f:f + 1], weight, flipped, h, w,
                                      c_out, h_out, w_out, row_count, row_tap, row_out,
                                      col_count, col_tap, col_out, True, threshold_high,
                                      threshold_low, return_to_zero, out, n_out)
        e = f + 1
    return out, n_out


@njit(nogil=True)
def _short_runs_stride1(v, pixels, counts, flipped, h, w, c_out, h_out, w_out, row_count,
                        row_tap, row_out, col_count, col_tap, col_out, th, tl, rz, out, n_out):
    """:func:`run_events` for runs of at most SHORT_RUN events on a stride-1 (across) core:
    each event in turn, each covered kernel row as one contiguous run of updates."""
    k = row_tap.shape[1]
    plane = h_out * w_out
    footprint = k * k * c_out
    fired_here = np.zeros(k * c_out, dtype=np.int64)
    for e in range(pixels.shape[0]):
        p = pixels[e]
        ci = p // (h * w)
        yi = (p % (h * w)) // w
        xi = p % w
        first_col = col_out[xi, 0]
        length = col_count[xi] * c_out
        offset = (k - 1 - col_tap[xi, 0]) * c_out
        for _ in range(counts[e]):
            out = _grow(out, n_out + footprint)
            for a in range(row_count[yi]):
                first = row_out[yi, a] * w_out + first_col
                state = v[first * c_out:first * c_out + length]
                taps = flipped[ci, row_tap[yi, a], offset:offset + length]
                for i in range(length):
                    wt = taps[i]
                    old = state[i]
                    new, fired = update(old, wt, th, tl, rz)
                    live = wt != 0                      # a zero weight is no synapse
                    state[i] = new if live else old
                    fired_here[i] = fired & live
                any_fired = 0
                for i in range(length):
                    any_fired |= fired_here[i]
                if any_fired:
                    i = 0
                    for position in range(first, first + col_count[xi]):
                        for co in range(c_out):
                            if fired_here[i]:
                                out[n_out] = co * plane + position
                                n_out += 1
                            i += 1
    return out, n_out


@njit(nogil=True)
def _run_general(v, pixels, counts, weight, flipped, h, w, c_out, h_out, w_out,
                 row_count, row_tap, row_out, col_count, col_tap, col_out, unit_stride_x,
                 threshold_high, threshold_low, return_to_zero, out, n_out):
    """:func:`run_events` for any stride and run length (long runs in closed form)."""
    k = weight.shape[1]
    plane = h_out * w_out
    footprint = k * k * c_out
    th, tl, rz = threshold_high, threshold_low, return_to_zero
    fired_here = np.zeros(k * c_out, dtype=np.int64)
    pair_r = np.empty(0, dtype=np.int64)
    pair_j = np.empty(0, dtype=np.int64)
    fired_at = np.empty(0, dtype=np.int64)
    start = np.zeros(0, dtype=np.int64)
    for e in range(pixels.shape[0]):
        p = pixels[e]
        n = counts[e]
        ci = p // (h * w)
        yi = (p % (h * w)) // w
        xi = p % w
        # A short run costs less as n single events than through the closed form.
        single = n <= SHORT_RUN
        if not single:
            pair_r = _grow(pair_r, footprint * n)
            pair_j = _grow(pair_j, footprint * n)
            fired_at = _grow(fired_at, n)
        pairs = 0
        for _ in range(n if single else 1):
            if single:
                out = _grow(out, n_out + footprint)
            for a in range(row_count[yi]):
                ky = row_tap[yi, a]
                row = row_out[yi, a] * w_out
                if single and unit_stride_x:
                    # Stride 1 across: the covered positions of this kernel row are adjacent,
                    # so their neurons (position-major) and their taps (kx reversed) are two
                    # contiguous runs of count * c_out independent updates, in update order.
                    first = row + col_out[xi, 0]
                    length = col_count[xi] * c_out
                    state = v[first * c_out:first * c_out + length]
                    offset = (k - 1 - col_tap[xi, 0]) * c_out
                    taps = flipped[ci, ky, offset:offset + length]
                    for i in range(length):
                        wt = taps[i]
                        old = state[i]
                        new, fired = update(old, wt, th, tl, rz)
                        live = wt != 0                      # a zero weight is no synapse
                        state[i] = new if live else old
                        fired_here[i] = fired & live
                    any_fired = 0
                    for i in range(length):
                        any_fired |= fired_here[i]
                    if any_fired:
                        i = 0
                        for position in range(first, first + col_count[xi]):
                            for co in range(c_out):
                                if fired_here[i]:
                                    out[n_out] = co * plane + position
                                    n_out += 1
                                i += 1
                    continue
                for b in range(col_count[xi]):
                    kx = col_tap[xi, b]
                    position = row + col_out[xi, b]
                    base = position * c_out
                    if single:
                        # One position's channels are independent neurons: written over
                        # views, without branches, this loop compiles to vector instructions.
                        state = v[base:base + c_out]
                        taps = weight[ci, ky, kx]
                        for co in range(c_out):
                            wt = taps[co]
                            old = state[co]
                            new, fired = update(old, wt, th, tl, rz)
                            live = wt != 0                  # a zero weight is no synapse
                            state[co] = new if live else old
                            fired_here[co] = fired & live
                        any_fired = 0
                        for co in range(c_out):
                            any_fired |= fired_here[co]
                        if any_fired:
                            for co in range(c_out):
                                if fired_here[co]:
                                    out[n_out] = co * plane + position
                                    n_out += 1
                    else:
                        for co in range(c_out):
                            wt = weight[ci, ky, kx, co]
                            if wt == 0:
                                continue
                            v[base + co], spikes = update_repeated(v[base + co], wt, n, th, tl,
                                                                   rz, fired_at, 0)
                            for i in range(spikes):
                                pair_r[pairs] = fired_at[i]
                                pair_j[pairs] = co * plane + position
                                pairs += 1
        if pairs:
            # Emission order: repeat by repeat, neurons in update order (a stable counting sort).
            start = _grow(start, n + 1)
            start[:n + 1] = 0
            for i in range(pairs):
                start[pair_r[i] + 1] += 1
            for r in range(n):
                start[r + 1] += start[r]
            out = _grow(out, n_out + pairs)
            for i in range(pairs):
                r = pair_r[i]
                out[n_out + start[r]] = pair_j[i]
                start[r] += 1
            n_out += pairs
    return out, n_out


@njit(nogil=True)
def apply_bias(v, bias, c_out, threshold_high, threshold_low, return_to_zero, out, n_out):
    """The once-per-step bias update of every neuron with a nonzero bias, ascending (c, y, x).

    ``v`` is position-major as in :func:`run_events`; ``bias`` is per output channel."""
    plane = v.shape[0] // c_out
    out = _grow(out, n_out + v.shape[0])
    for co in range(c_out):
        if bias[co] == 0:
            continue
        for position in range(plane):
            i = position * c_out + co
            v[i], fired = update(v[i], bias[co], threshold_high, threshold_low, return_to_zero)
            if fired:
                out[n_out] = co * plane + position
                n_out += 1
    return out, n_out


@njit(nogil=True)
def count_events(counts, events):
    """``counts[j] += 1`` for every event j (touches only the counted entries)."""
    for j in events:
        counts[j] += 1


@njit(nogil=True)
def pooled_runs(pixels, counts, c, h, w, pooling, h_dest, w_dest):
    """Events of a (c, h, w) map, as (pixel, count) runs on its pooled destination map.

    (c, y, x) lands on (c, y // pooling, x // pooling), dropped beyond the
    destination's (h_dest, w_dest); consecutive events on one pixel merge."""
    out_pixels = np.empty(pixels.shape[0], dtype=np.int64)
    out_counts = np.empty(pixels.shape[0], dtype=np.int64)
    n = 0
    for i in range(pixels.shape[0]):
        p = pixels[i]
        ch = p // (h * w)
        y = (p % (h * w)) // w // pooling
        x = p % w // pooling
        if y >= h_dest or x >= w_dest:
            continue
        q = (ch * h_dest + y) * w_dest + x
        if n and out_pixels[n - 1] == q:
            out_counts[n - 1] += counts[i]
        else:
            out_pixels[n] = q
            out_counts[n] = counts[i]
            n += 1
    return out_pixels[:n], out_counts[:n]


def runs(events: np.ndarray, counts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encoding of an event sequence (consecutive equal pixels merged, counts summed)."""
    events = np.asarray(events, dtype=np.int64)
    if counts is None:
        counts = np.ones(events.size, dtype=np.int64)
    if events.size == 0:
        return events, np.asarray(counts, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, events[1:] != events[:-1]])
    return events[starts], np.add.reduceat(np.asarray(counts, dtype=np.int64), starts)
