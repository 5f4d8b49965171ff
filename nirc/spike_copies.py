"""Several spikes per step on a chip that fires one: a population fired by copies.

A network rewrite on the float hardware network, used by Loihi's model (LoihiCubaLIF.expand,
its ``spikes`` choice); it assumes what Lava's LIF offers, a state u that is never reset.

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
  DelayDense runs. D is the smallest with i_decay^D below TAIL (at most MAX_TAPS).

Synapse cost: each table into the population times c * D, out of it times c. The quantize
pass offers it (``spikes`` choice of LoihiCubaLIF) and keeps it only where calibration
agreement says it pays.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from nirc.hwnet import HardwareNetwork, Population, SynapseTable

TAIL = 0.01        # taps stop where the current's impulse response falls below this
MAX_TAPS = 16      # slower currents are not offered copies (the cost grows with D)
# Copies are not built past this many synapses in the whole network (the recurrent table of
# a population grows with c^2: Rockpool's digits model has 2.4M with 8 copies in its hidden
# layer and 16 in its readout, 8.5M with 16 in both).
MAX_SYNAPSES = 4_000_000


class TooCostly(ValueError):
    """Copies that would take the network past MAX_SYNAPSES."""


def taps(i_decay: float) -> int:
    """How many delayed copies of an input table stand for a current decaying by i_decay."""
    if i_decay <= 0:
        return 1
    if i_decay >= 1:
        return MAX_TAPS + 1
    return max(1, int(math.ceil(math.log(TAIL) / math.log(i_decay))))


def eligible(pop: Population, max_delay: int | None) -> str | None:
    """None when ``pop`` can fire several spikes per step as copies, else why not."""
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
        if np.any(np.asarray(p["i_bias"]) != 0):
            return "it has a constant input current"
        if np.ptp(i_decay) > 0:
            return "its current decays differ between neurons"
        d = taps(float(i_decay[0]))
        if d > MAX_TAPS or (max_delay is not None and d > max_delay):
            return f"its synaptic current needs {d} delayed taps"
    return None


def copy_name(net: HardwareNetwork, name: str, j: int) -> str:
    return net.free_name(f"{name}.spike{j}")


def _row_scaled(w: sp.csr_array, rows: np.ndarray) -> sp.csr_array:
    w = sp.csr_array(w, dtype=np.float64)
    return sp.csr_array((w.data * np.repeat(rows, np.diff(w.indptr)), w.indices.copy(),
                         w.indptr.copy()), shape=w.shape)


def synapse_count(net: HardwareNetwork, counts: Mapping[str, int]) -> int:
    """The synapses ``expand(net, counts)`` would hold, without building it."""
    def taps_into(name):
        if int(counts.get(name, 1)) <= 1:
            return 1
        p = net.populations[name].params
        return taps(float(np.ravel(np.asarray(p["i_decay"], np.float64))[0]))

    total = 0
    for t in net.tables:
        c_in, c_out = int(counts.get(t.target, 1)), int(counts.get(t.source, 1))
        total += t.nnz * max(c_out, 1) * max(c_in, 1) * taps_into(t.target)
    return total + sum(int(c) ** 2 * net.populations[n].size for n, c in counts.items()
                       if int(c) > 1)


def expand(net: HardwareNetwork, counts: Mapping[str, int], max_synapses: int | None = None
           ) -> tuple[HardwareNetwork, dict[str, list[str]]]:
    """``net`` with every population in ``counts`` (name -> c > 1) fired by c copies (module
    docstring); returns (network, {population: its copies' names, itself first}). Raises
    TooCostly when the result would hold more than ``max_synapses``."""
    if max_synapses is not None and any(int(c) > 1 for c in counts.values()):
        needed = synapse_count(net, counts)
        if needed > max_synapses:
            raise TooCostly(f"copies {dict(counts)} need {needed} synapses (above "
                            f"{max_synapses})")
    groups: dict[str, list[str]] = {}
    populations = dict(net.populations)
    for name, c in counts.items():
        if int(c) <= 1:
            continue
        pop = net.populations[name]
        why = eligible(pop, None)
        if why is not None:
            raise ValueError(f"population '{name}' cannot be fired by copies: {why}")
        groups[name] = [name] + [copy_name(net, name, j) for j in range(2, int(c) + 1)]
        p = pop.params
        zero = np.zeros(pop.size)
        for j, member in enumerate(groups[name], start=1):
            # (eligible() refuses a constant input into a synaptic current; without a current
            # it is a constant input to the membrane, which quantize feeds into u)
            params = {**p, "i_decay": zero, "v_direct": zero,
                      "threshold": np.broadcast_to(np.asarray(p["threshold"], np.float64),
                                                   (pop.size,)) * j}
            populations[member] = pop.with_(name=member, params=params)
    tables: list[SynapseTable] = []
    for t in net.tables:
        # Into a group: the current's impulse response as delayed taps, into every copy.
        into = [t]
        if t.target in groups:
            pop = net.populations[t.target]
            n = pop.size
            i_decay = float(np.broadcast_to(np.asarray(pop.params["i_decay"], np.float64),
                                            (n,))[0])
            direct = np.broadcast_to(np.asarray(pop.params.get("v_direct", 0.0), np.float64),
                                     (n,))
            d_max = taps(i_decay)
            into = []
            for d in range(d_max):
                gain = i_decay ** d if d < d_max - 1 or i_decay == 0 \
                    else i_decay ** d / (1.0 - i_decay)
                rows = np.full(n, gain) + (direct if d == 0 else 0.0)
                into.append(t.with_(weights=_row_scaled(t.weights, rows), delay=int(t.delay) + d,
                                    kernel={**(t.kernel or {}), "tap": d} if d else t.kernel))
            into = [x.with_(target=member) for x in into for member in groups[t.target]]
        # Out of a group: from every copy.
        for x in into:
            sources = groups.get(x.source, [x.source])
            tables.extend(x.with_(source=s) for s in sources)
    for name, members in groups.items():
        pop = net.populations[name]
        amount = np.broadcast_to(np.asarray(pop.params["threshold"], np.float64), (pop.size,)) \
            * np.broadcast_to(np.asarray(pop.params["v_decay"], np.float64), (pop.size,))
        reset = sp.csr_array(sp.diags(-amount).tocsr())
        for s in members:
            for m in members:
                tables.append(SynapseTable(source=s, target=m, weights=reset, delay=1,
                                           provenance=pop.provenance,
                                           kernel={"self_reset": True}))
    # An output read from a group counts the spikes of all its copies.
    outputs = {k: o.with_(copies=tuple(groups[o.source][1:]))
               if o.source in groups and o.quantity == "spikes" else o
               for k, o in net.outputs.items()}
    return net.with_(populations=populations, tables=tuple(tables), outputs=outputs), groups
