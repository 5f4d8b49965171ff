"""A subtracting reset, and several spikes per step, on a chip whose neuron resets v to zero:
a population whose membrane lives in u, fired by one copy or several.

A network rewrite on the float hardware network, used by Loihi's model (LoihiCubaLIF.expand,
its ``spikes`` choice, and its ``reset`` choice for a population with a synaptic current);
it assumes what Lava's LIF offers, a state u that is never reset.

With one copy (c = 1) it is the subtracting reset of a neuron with a synaptic current: u
holds the membrane (never reset), the current becomes the taps below, the self-reset table
subtracts the threshold. The reset may be late (snnTorch: the spike of step t subtracts theta
from the membrane of step t + 1, undecayed: ``late``) or in the step it fires (the table
subtracts theta * v_decay a step later, as u decays first).

Lava's LIF fires at most one spike per step and resets v to zero; a model trained to fire
n = floor(v / theta) spikes per step and subtract n * theta (Rockpool's LIFTorch, Sinabs'
MultiSpike) loses what the second and later spikes carried. ``expand`` rewrites one float
population into c populations that share one membrane and together fire min(n, c):

- copy j (j = 1..c) has threshold j * theta, so it fires exactly when the trained neuron
  fires j spikes or more; copy 1 keeps the population's name, the others are
  ``<name>.spike<j>``. Every table out of the population leaves from every copy with the
  same weights (each copy's spike is one of the model's spikes).
- the membrane lives in u, which Loihi never resets (the quantizer's subtracting reset,
  ``reset_tables="given"``): every copy's spike subtracts theta from every copy's
  membrane a step later (tables marked ``self_reset``, -theta * v_decay: u decays first),
  so all copies keep the trained membrane v - n * theta.
- a synaptic current cannot stay in u then: it becomes a finite impulse response on the
  inputs instead, each table repeated at delays d = 0..D-1 with weights w * i_decay^d
  (kernel ``tap`` = d; the last tap carries the tail i_decay^(D-1) / (1 - i_decay), so a
  constant input reaches the trained membrane) - Loihi 2's synaptic delays, which Lava's
  DelayDense runs. A constant input into the current ramps up as the current does: it
  arrives by the same taps from a neuron that fires in every step (a float population
  ``always_on``, v_bias 1 over threshold 0.5, added once). D is the smallest with
  i_decay^D below TAIL, at most the target's longest table delay (``max_taps``); the
  current's impulse response beyond the last tap, i_decay^D of its weight (``tail``),
  arrives at the last tap instead of later.

Levels: c copies may stand for more than c spikes. Copy j then stands for a level T_j of
spikes (T_1 = 1 < T_2 < ... < T_c, ``levels``): it carries m_j = T_j - T_(j-1) of the
model's spikes (every table out of it weighted m_j, its reset subtracting m_j * theta) and
fires from (T_j - (m_j - 1) / 2) * theta on, so the copies together send the level nearest
the trained count floor(v / theta) (the trained count itself where the levels are one spike
apart) and the membrane keeps what the level missed, positive or negative, for the next
step. Rockpool's hidden layer fires up to 31 spikes per step; 9 copies at levels 1, 2, 3, 4,
5, 7, 10, 14, 20 cost what 9 uniform copies cost (the recurrent table grows with c^2) and
keep the framework's winner on 95.7 % of the test digits in float, 8 uniform copies 86.1 %.
An output read from the population counts each copy's spikes times m_j (``copy_weights``
of the output in config.json).

Synapse cost: each table into the population times c * D, out of it times c. The quantize
pass offers it (``spikes`` choice of LoihiCubaLIF, and its ``reset`` choice for one copy)
and keeps it only where calibration
agreement says it pays.
"""

from __future__ import annotations

import math
from typing import Collection, Mapping

import numpy as np
import scipy.sparse as sp

from nirc.hwnet import HardwareNetwork, Population, SynapseTable

TAIL = 0.01        # taps stop where the current's impulse response falls below this
# Without a target's limit, taps stop here (Loihi's longest synaptic delay).
MAX_TAPS = 64
# A current whose taps, capped by the target's longest delay, move more than this share of
# its impulse response to the last tap is not offered the rewrite (snnTorch's alpha = 0.9 in
# SpiNNaker-2's 15 steps moves 21 %; see LoihiCubaLIF.choice_notes).
MAX_TAIL = 0.25
# Copies are not built past this many synapses in the whole network (the recurrent table of
# a population grows with c^2: Rockpool's digits model has 2.4M with 8 copies in its hidden
# layer and 16 in its readout, 8.5M with 16 in both).
MAX_SYNAPSES = 4_000_000


ALWAYS_ON = "<always_on>"       # the source of ramps until the population is named


class TooCostly(ValueError):
    """Copies that would take the network past MAX_SYNAPSES."""


def levels(spec) -> tuple[int, ...]:
    """The spike levels of a copies spec: c (an int, or a string of one) is 1..c; "L/c" names
    c levels from 1 up to L in ``LEVELS``; a tuple is taken as given (T_1 = 1, increasing)."""
    if isinstance(spec, tuple):
        out = tuple(int(t) for t in spec)
    elif isinstance(spec, str) and "/" in spec:
        top, c = (int(x) for x in spec.split("/"))
        if (top, c) not in LEVELS:
            raise ValueError(f"no spike levels named {spec!r} (known: "
                             f"{', '.join(f'{t}/{n}' for t, n in LEVELS)})")
        out = LEVELS[(top, c)]
    else:
        out = tuple(range(1, int(spec) + 1))
    if not out or out[0] != 1 or any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"spike levels must start at 1 and increase: {spec!r}")
    return out


# Level sets offered by name ("top/copies"): one spike apart up to 5, then about sqrt(2)
# apart (20/9, 28/10), or up to 6 and then to the 31 Rockpool allows (31/11). Measured on
# Rockpool's digits model (float, hidden layer only, readout as trained; same winner with
# Rockpool on the 397 test digits): 8 uniform copies 86.1 %, 16: 94.7 %, 20/9 95.7 %,
# 28/10 97.2 %, 31/11 96.5 %; in the readout (hidden 20/9) 31/11 96.2 %, 31 uniform 95.7 %.
LEVELS = {(20, 9): (1, 2, 3, 4, 5, 7, 10, 14, 20),
          (28, 10): (1, 2, 3, 4, 5, 7, 10, 14, 20, 28),
          (31, 11): (1, 2, 3, 4, 5, 6, 8, 11, 15, 21, 31)}


def weights(spec) -> tuple[int, ...]:
    """The model's spikes each copy's spike stands for (m_j = T_j - T_(j-1); 1 for uniform
    copies), the population itself first."""
    t = levels(spec)
    return tuple(int(b - a) for a, b in zip((0, *t[:-1]), t))


def thresholds(spec) -> tuple[float, ...]:
    """Each copy's threshold in the population's thresholds: T_j - (m_j - 1) / 2, midway
    between the counts a step of m_j spans (T_j where m_j = 1)."""
    return tuple(t - (m - 1) / 2.0 for t, m in zip(levels(spec), weights(spec)))


def taps_needed(i_decay: float) -> int | None:
    """How many delayed copies of an input table bring a current decaying by i_decay below
    TAIL (None: it never decays)."""
    if i_decay <= 0:
        return 1
    if i_decay >= 1:
        return None
    return max(1, int(math.ceil(math.log(TAIL) / math.log(i_decay))))


def taps(i_decay: float, max_taps: int | None = None) -> int:
    """How many delayed copies of an input table stand for a current decaying by i_decay:
    enough for TAIL, at most ``max_taps`` (default MAX_TAPS)."""
    cap = MAX_TAPS if max_taps is None else max(int(max_taps), 1)
    needed = taps_needed(i_decay)
    return cap if needed is None else min(needed, cap)


def tail(i_decay: float, d: int) -> float:
    """The share of a current's impulse response that d taps move to their last one."""
    return float(i_decay) ** int(d) if i_decay > 0 else 0.0


def current_decay(pop: Population) -> float:
    """The population's one current decay (eligible() checks they are equal)."""
    return float(np.ravel(np.asarray(pop.params["i_decay"], np.float64))[0])


def eligible(pop: Population, max_delay: int | None) -> str | None:
    """None when ``pop`` can hold its membrane in u (fired by one copy or several, its current
    as at most ``max_delay`` taps, default MAX_TAPS), else why not."""
    p = pop.params
    n = pop.size
    if not pop.spiking:
        return "it does not spike"
    if np.any(np.asarray(p.get("v_direct", 0.0)) != 0) or np.any(np.asarray(p["v_reset"]) != 0):
        return "its reset voltage is not 0"
    if np.any(np.asarray(p["v_decay"]) <= 0):
        return "its voltage does not persist from one step to the next"
    i_decay = np.broadcast_to(np.asarray(p["i_decay"], np.float64), (n,))
    if np.any(i_decay != 0):
        if np.ptp(i_decay) > 0:
            return "its current decays differ between neurons"
        a = float(i_decay[0])
        if a >= 1:
            return "its synaptic current never decays"
        d = taps(a, max_delay)
        if tail(a, d) > MAX_TAIL:
            return (f"its synaptic current needs {taps_needed(a)} delayed taps for a "
                    f"{TAIL:.0%} tail; the target's delays hold {d}, which leave "
                    f"{tail(a, d):.0%} of it to the last tap (above {MAX_TAIL:.0%})")
    return None


def copy_name(net: HardwareNetwork, name: str, j: int) -> str:
    return net.free_name(f"{name}.spike{j}")


def _row_scaled(w: sp.csr_array, rows: np.ndarray) -> sp.csr_array:
    w = sp.csr_array(w, dtype=np.float64)
    return sp.csr_array((w.data * np.repeat(rows, np.diff(w.indptr)), w.indices.copy(),
                         w.indptr.copy()), shape=w.shape)


def synapse_count(net: HardwareNetwork, counts: Mapping[str, int],
                  max_taps: int | None = None) -> int:
    """The synapses ``expand(net, counts, max_taps=max_taps)`` would hold, without building it."""
    def taps_into(name):
        if int(counts.get(name, 0)) < 1:
            return 1
        return taps(current_decay(net.populations[name]), max_taps)

    counts = {k: len(levels(v)) if _copies(v) else 0 for k, v in counts.items()}
    total = 0
    for t in net.tables:
        c_in, c_out = int(counts.get(t.target, 1)), int(counts.get(t.source, 1))
        total += t.nnz * max(c_out, 1) * max(c_in, 1) * taps_into(t.target)
    for name, c in counts.items():
        if int(c) >= 1 and current_decay(net.populations[name]) != 0:
            bias = np.broadcast_to(np.asarray(net.populations[name].params["i_bias"]),
                                   (net.populations[name].size,))
            total += int(np.count_nonzero(bias)) * int(c) * taps_into(name)
    return total + sum(int(c) ** 2 * net.populations[n].size for n, c in counts.items()
                       if int(c) >= 1)


def _copies(spec) -> bool:
    """Whether a counts value asks for copies (not 0 or below)."""
    return isinstance(spec, tuple) or (isinstance(spec, str) and "/" in spec) or int(spec) >= 1


def expand(net: HardwareNetwork, counts: Mapping[str, int], max_synapses: int | None = None,
           *, late: Collection[str] = (), max_taps: int | None = None
           ) -> tuple[HardwareNetwork, dict[str, list[str]]]:
    """``net`` with every population in ``counts`` (name -> c >= 1, or levels: ``levels``)
    holding its membrane in u, fired by c copies (module docstring), its current as at most
    ``max_taps`` taps; those in ``late`` subtract their threshold a step late (snnTorch).
    Returns (network, {population: its copies' names, itself first}). Raises TooCostly when
    the result would hold more than ``max_synapses``."""
    counts = {k: v for k, v in counts.items() if _copies(v)}
    if max_synapses is not None and counts:
        needed = synapse_count(net, counts, max_taps)
        if needed > max_synapses:
            raise TooCostly(f"copies {dict(counts)} need {needed} synapses (above "
                            f"{max_synapses})")
    groups: dict[str, list[str]] = {}
    populations = dict(net.populations)
    ramps: list[SynapseTable] = []      # constant inputs into a current (module docstring)
    for name, spec in counts.items():
        c = len(levels(spec))
        pop = net.populations[name]
        why = eligible(pop, max_taps)
        if why is not None:
            raise ValueError(f"population '{name}' cannot be fired by copies: {why}")
        groups[name] = [name] + [copy_name(net, name, j) for j in range(2, c + 1)]
        at = thresholds(spec)
        p = pop.params
        zero = np.zeros(pop.size)
        i_bias = np.broadcast_to(np.asarray(p["i_bias"], np.float64), (pop.size,))
        ramp = current_decay(pop) != 0 and np.any(i_bias != 0)
        if ramp:
            rows = np.flatnonzero(i_bias)
            ramps.append(SynapseTable(
                source=ALWAYS_ON, target=name, delay=0, provenance=pop.provenance,
                weights=sp.csr_array((i_bias[rows], (rows, np.zeros(rows.size, np.int64))),
                                     shape=(pop.size, 1))))
        for j, member in enumerate(groups[name], start=1):
            # (a constant input into the current arrives by taps (ramps); without a current
            # it is a constant input to the membrane, which quantize feeds into u)
            params = {**p, "i_decay": zero, "v_direct": zero,
                      **({"i_bias": zero} if ramp else {}),
                      "threshold": np.broadcast_to(np.asarray(p["threshold"], np.float64),
                                                   (pop.size,)) * at[j - 1]}
            populations[member] = pop.with_(name=member, params=params)
    if ramps:
        source = net.free_name("always_on")
        one = np.ones(1)
        populations[source] = Population(
            name=source, shape=(1,), spiking=True, provenance=("always_on",),
            params={"i_decay": 0 * one, "v_decay": 0 * one, "v_direct": 0 * one,
                    "i_bias": 0 * one, "v_bias": one, "threshold": 0.5 * one,
                    "v_reset": 0 * one})
        ramps = [t.with_(source=source) for t in ramps]
    tables: list[SynapseTable] = []
    for t in (*net.tables, *ramps):
        # Into a group: the current's impulse response as delayed taps, into every copy.
        into = [t]
        if t.target in groups:
            pop = net.populations[t.target]
            n = pop.size
            i_decay = float(np.broadcast_to(np.asarray(pop.params["i_decay"], np.float64),
                                            (n,))[0])
            direct = np.broadcast_to(np.asarray(pop.params.get("v_direct", 0.0), np.float64),
                                     (n,))
            d_max = taps(i_decay, max_taps)
            into = []
            for d in range(d_max):
                gain = i_decay ** d if d < d_max - 1 or i_decay == 0 \
                    else i_decay ** d / (1.0 - i_decay)
                rows = np.full(n, gain) + (direct if d == 0 else 0.0)
                into.append(t.with_(weights=_row_scaled(t.weights, rows), delay=int(t.delay) + d,
                                    kernel={**(t.kernel or {}), "tap": d} if d else t.kernel))
            into = [x.with_(target=member) for x in into for member in groups[t.target]]
        # Out of a group: from every copy, weighted by the spikes it stands for.
        for x in into:
            if x.source not in groups:
                tables.append(x)
                continue
            for s, m in zip(groups[x.source], weights(counts[x.source])):
                tables.append(x.with_(source=s) if m == 1 else
                              x.with_(source=s, weights=sp.csr_array(x.weights * float(m))))
    for name, members in groups.items():
        pop = net.populations[name]
        # (late: the membrane a spike was read from is not reset, the next one is, by theta;
        # in the step: theta off this membrane, which u decays before the next step)
        amount = np.broadcast_to(np.asarray(pop.params["threshold"], np.float64), (pop.size,)) \
            * (1.0 if name in late else
               np.broadcast_to(np.asarray(pop.params["v_decay"], np.float64), (pop.size,)))
        for s, share in zip(members, weights(counts[name])):
            reset = sp.csr_array(sp.diags(-amount * share).tocsr())
            for m in members:
                tables.append(SynapseTable(source=s, target=m, weights=reset, delay=1,
                                           provenance=pop.provenance,
                                           kernel={"self_reset": True}))
    # An output read from a group counts the spikes of all its copies (levels: each times
    # the spikes it stands for).
    outputs = {k: o.with_(copies=tuple(groups[o.source][1:]),
                          copy_weights=tuple(weights(counts[o.source])[1:])
                          if any(m != 1 for m in weights(counts[o.source])) else ())
               if o.source in groups and o.quantity == "spikes" else o
               for k, o in net.outputs.items()}
    return net.with_(populations=populations, tables=tuple(tables), outputs=outputs), groups


def membrane_as_current(net: HardwareNetwork, groups: Mapping[str, list[str]]
                        ) -> HardwareNetwork:
    """The float network ``expand`` returned, computing what the chip computes: every copy's
    membrane held as the current, which no reset touches (i_decay = v_decay, v_decay = 0, so
    v = i; constant inputs into it), as quantize lowers it into Loihi's u. Run by the float
    reference, it is the rewrite's own semantics (tests compare it with the trained rule)."""
    populations = dict(net.populations)
    for members in groups.values():
        for name in members:
            p = populations[name].params
            populations[name] = populations[name].with_(params={
                **p, "i_decay": np.asarray(p["v_decay"], np.float64),
                "v_decay": 0.0 * np.asarray(p["v_decay"], np.float64),
                "i_bias": np.asarray(p["i_bias"], np.float64) + np.asarray(p["v_bias"],
                                                                          np.float64),
                "v_bias": 0.0 * np.asarray(p["v_bias"], np.float64)})
    return net.with_(populations=populations)
