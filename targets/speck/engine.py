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
On stride-1 cores a run of at least BULK_RUN events tests a kernel row's
neurons at once for the common case that none of the n updates can fire
(the row's state then moves by n x weight, clipped at the floor, in one
vectorised pass) and hands only the others to ``update_repeated``.
"""

from __future__ import annotations

import numpy as np

from nirc.jit import njit
from nirc.neuron_models.speck_iaf import STATE_MAX, STATE_MIN, update, update_repeated


SHORT_RUN = 16    # runs of up to this many identical events cost less applied event by event
BULK_RUN = 4      # on stride-1 cores, runs of at least this many take the bulk path


@njit(nogil=True)
def _grow(buffer, needed):
    if needed <= buffer.shape[0]:
        return buffer
    bigger = np.empty(max(needed, 2 * buffer.shape[0]), dtype=buffer.dtype)
    bigger[:buffer.shape[0]] = buffer
    return bigger


@njit(nogil=True)
def _row_neurons(k, c_out, plane):
    """Flat (c, y, x) neuron offsets of a kernel row's updates (position-major, channels
    inner) from the row's first neuron: entry i is (i % c_out) * plane + i // c_out."""
    rel = np.empty(k * c_out, dtype=np.int64)
    for i in range(k * c_out):
        rel[i] = (i % c_out) * plane + i // c_out
    return rel


@njit(nogil=True, inline="always")
def _compact(fired_here, length, rel, first, out, n_out):
    """Append the fired updates' neurons (``rel + first``) to ``out`` in update order.

    Branch-free (every entry is written, only the fired ones advance the end): which
    neurons fire is data, so a branch per update would be mispredicted often."""
    for i in range(length):
        out[n_out] = rel[i] + first
        n_out += fired_here[i]
    return n_out


@njit(nogil=True, inline="always")
def _event_columns(p, decode, col_out, col_count, col_tap, c_out, k):
    """An input pixel's channel and row, and the contiguous run of updates its column
    reaches in each covered output row: first output column, run length, tap offset."""
    xi = decode[p, 2]
    return (decode[p, 0], decode[p, 1], col_out[xi, 0], col_count[xi] * c_out,
            (k - 1 - col_tap[xi, 0]) * c_out)


@njit(nogil=True, inline="always")
def _emit_by_repeat(pair_r, pair_j, pairs, n, start, out, n_out):
    """Append the step's (repeat, neuron) spike pairs to out: repeat by repeat, neurons in
    update order (a stable counting sort; start holds at least n + 1 entries)."""
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
    return out, n_out + pairs


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
def run_events(v, pixels, counts, weight, flipped, decode, h, w, c_out, h_out, w_out,
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
        return _run_general(v, pixels, counts, weight, flipped, decode, h, w, c_out, h_out, w_out,
                            row_count, row_tap, row_out, col_count, col_tap, col_out, False,
                            threshold_high, threshold_low, return_to_zero, out, n_out)
    # Stride 1 across: stretches of short runs take the lean loop, stretches of longer runs
    # the bulk one.
    e = 0
    while e < pixels.shape[0]:
        single = counts[e] < BULK_RUN
        f = e
        while f < pixels.shape[0] and (counts[f] < BULK_RUN) == single:
            f += 1
        if single:
            out, n_out = _short_runs_stride1(
                v, pixels[e:f], counts[e:f], flipped, decode, h, w, c_out, h_out, w_out, row_count,
                row_tap, row_out, col_count, col_tap, col_out, threshold_high, threshold_low,
                return_to_zero, out, n_out)
        else:
            out, n_out = _runs_stride1(
                v, pixels[e:f], counts[e:f], flipped, decode, h, w, c_out, h_out, w_out, row_count,
                row_tap, row_out, col_count, col_tap, col_out, threshold_high, threshold_low,
                return_to_zero, out, n_out)
        e = f
    return out, n_out


@njit(nogil=True)
def _runs_stride1(v, pixels, counts, flipped, decode, h, w, c_out, h_out, w_out, row_count,
                  row_tap, row_out, col_count, col_tap, col_out, th, tl, rz, out, n_out):
    """:func:`run_events` for runs of several identical events on a stride-1 (across) core.

    A run's n events reach each covered neuron as n consecutive updates of its
    own history. Most neurons cannot fire within them, and then the n updates
    have a closed form (as in :func:`nirc.neuron_models.speck_iaf.update_repeated`):
    a rising neuron (weight > 0, at or above the floor) that stays below
    threshold ends at ``v + n*w``, a falling one (weight < 0, ``v + w`` below
    threshold) at ``max(v + n*w, floor)``. That test and update run over a
    kernel row's contiguous neurons at once (vectorised); the others go through
    ``update_repeated`` one by one, and their spikes are put in the chip's
    emission order (repeat by repeat, neurons in update order) by a counting
    sort. Both forms need ``STATE_MIN < th <= STATE_MAX`` and ``tl < th``
    (otherwise every neuron takes ``update_repeated``, which checks its own).
    """
    k = row_tap.shape[1]
    plane = h_out * w_out
    footprint = k * k * c_out
    floor = max(tl, STATE_MIN)
    ordinary = STATE_MIN < th and th <= STATE_MAX and tl < th
    longest = 0
    for e in range(counts.shape[0]):
        longest = max(longest, counts[e])
    slow_here = np.zeros(k * c_out, dtype=np.int64)
    rel = _row_neurons(k, c_out, plane)
    fired_at = np.empty(longest, dtype=np.int64)
    pair_r = np.empty(footprint * longest, dtype=np.int64)
    pair_j = np.empty(footprint * longest, dtype=np.int64)
    start = np.empty(longest + 1, dtype=np.int64)
    for e in range(pixels.shape[0]):
        n = counts[e]
        ci, yi, first_col, length, offset = _event_columns(pixels[e], decode, col_out, col_count,
                                                           col_tap, c_out, k)
        pairs = 0
        for a in range(row_count[yi]):
            first = row_out[yi, a] * w_out + first_col
            state = v[first * c_out:first * c_out + length]
            taps = flipped[ci, row_tap[yi, a], offset:offset + length]
            any_slow = 0
            for i in range(length):
                wt = taps[i]
                old = state[i]
                total = old + n * wt
                rising = (wt > 0) & (old >= floor) & (total < th)
                falling = (wt < 0) & (old + wt < th)
                quiet = ordinary & (rising | falling)
                state[i] = max(total, floor) if quiet else old
                slow = (wt != 0) & (not quiet)
                slow_here[i] = slow
                any_slow |= slow
            if any_slow:
                for i in range(length):
                    if slow_here[i]:
                        state[i], spikes = update_repeated(state[i], taps[i], n, th, tl, rz,
                                                           fired_at, 0)
                        neuron = rel[i] + first
                        for j in range(spikes):
                            pair_r[pairs] = fired_at[j]
                            pair_j[pairs] = neuron
                            pairs += 1
        if pairs:
            out, n_out = _emit_by_repeat(pair_r, pair_j, pairs, n, start, out, n_out)
    return out, n_out


@njit(nogil=True)
def _short_runs_stride1(v, pixels, counts, flipped, decode, h, w, c_out, h_out, w_out, row_count,
                        row_tap, row_out, col_count, col_tap, col_out, th, tl, rz, out, n_out):
    """:func:`run_events` for runs shorter than BULK_RUN on a stride-1 (across) core:
    each event in turn, each covered kernel row as one contiguous run of updates."""
    k = row_tap.shape[1]
    plane = h_out * w_out
    footprint = k * k * c_out
    row_length = k * c_out
    fired_here = np.zeros(row_length, dtype=np.int64)
    rel = _row_neurons(k, c_out, plane)
    flat = flipped.reshape(-1)
    for e in range(pixels.shape[0]):
        ci, yi, first_col, length, offset = _event_columns(pixels[e], decode, col_out, col_count,
                                                           col_tap, c_out, k)
        rows = row_count[yi]
        out = _grow(out, n_out + footprint * counts[e])
        for _ in range(counts[e]):
            for a in range(rows):
                first = row_out[yi, a] * w_out + first_col
                state = v[first * c_out:first * c_out + length]
                t0 = (ci * k + row_tap[yi, a]) * row_length + offset
                taps = flat[t0:t0 + length]
                any_fired = 0
                for i in range(length):
                    wt = taps[i]
                    old = state[i]
                    new, fired = update(old, wt, th, tl, rz)
                    live = wt != 0                      # a zero weight is no synapse
                    state[i] = new if live else old
                    f = fired & live
                    fired_here[i] = f
                    any_fired |= f
                if any_fired:
                    n_out = _compact(fired_here, length, rel, first, out, n_out)
    return out, n_out


@njit(nogil=True)
def _run_general(v, pixels, counts, weight, flipped, decode, h, w, c_out, h_out, w_out,
                 row_count, row_tap, row_out, col_count, col_tap, col_out, unit_stride_x,
                 threshold_high, threshold_low, return_to_zero, out, n_out):
    """:func:`run_events` for any stride and run length (long runs in closed form)."""
    k = weight.shape[1]
    plane = h_out * w_out
    footprint = k * k * c_out
    th, tl, rz = threshold_high, threshold_low, return_to_zero
    fired_here = np.zeros(k * c_out, dtype=np.int64)
    rel = _row_neurons(k, c_out, plane)
    pair_r = np.empty(0, dtype=np.int64)
    pair_j = np.empty(0, dtype=np.int64)
    fired_at = np.empty(0, dtype=np.int64)
    start = np.zeros(0, dtype=np.int64)
    for e in range(pixels.shape[0]):
        p = pixels[e]
        n = counts[e]
        ci = decode[p, 0]
        yi = decode[p, 1]
        xi = decode[p, 2]
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
                        n_out = _compact(fired_here, length, rel, first, out, n_out)
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
            start = _grow(start, n + 1)
            out, n_out = _emit_by_repeat(pair_r, pair_j, pairs, n, start, out, n_out)
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


def pixel_decoder(c: int, h: int, w: int) -> np.ndarray:
    """(c*h*w, 3) table of each flat pixel's (channel, row, column): the engine looks
    events up here rather than dividing (three divisions cost more than a short row)."""
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return np.ascontiguousarray(np.stack([cc.ravel(), yy.ravel(), xx.ravel()], axis=1),
                                dtype=np.int64)


def pooling_map(c: int, h: int, w: int, pooling: int, h_dest: int, w_dest: int) -> np.ndarray:
    """Each (c, h, w) pixel's pixel on its pooled destination map, or -1 where dropped.

    (c, y, x) lands on (c, y // pooling, x // pooling), dropped beyond the
    destination's (h_dest, w_dest)."""
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h) // pooling, np.arange(w) // pooling,
                             indexing="ij")
    dest = (cc * h_dest + yy) * w_dest + xx
    return np.where((yy < h_dest) & (xx < w_dest), dest, -1).ravel().astype(np.int64)


@njit(nogil=True)
def pooled_runs(pixels, counts, dest):
    """Events as (pixel, count) runs on a destination map (``dest``: :func:`pooling_map`);
    dropped events vanish and consecutive events on one destination pixel merge."""
    out_pixels = np.empty(pixels.shape[0], dtype=np.int64)
    out_counts = np.empty(pixels.shape[0], dtype=np.int64)
    n = 0
    last = -1
    for i in range(pixels.shape[0]):
        q = dest[pixels[i]]
        if q < 0:
            continue
        if q == last:
            out_counts[n - 1] += counts[i]
        else:
            out_pixels[n] = q
            out_counts[n] = counts[i]
            n += 1
            last = q
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
