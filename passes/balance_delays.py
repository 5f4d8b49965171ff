"""balance_delays: every merge point receives all its inputs with the same hardware latency.

On chips whose synapses buffer a step (Loihi, SpiNNaker run as loihi_cuba_lif),
every table adds a step the float network does not have. A population fed by
paths of different lengths (a residual or skip connection) then receives the
short path's spikes early: the float network adds x(t) + f(x)(t), the chip
x(t + 1) + f(x)(t) — bit-exact with its own reference, yet computing something
else. This pass gives each population one latency L (steps the hardware lags
the float network; the longest path from the inputs, as ``latency_steps``
reports it) and sets every table's delay to

    delay = float delay + L(target) - L(source)

so every input of a population arrives at the float network's step plus L.
Delays the chip holds in its synapses (up to ``formats.max_delay_steps``) are
used as they are; a longer delay goes through a chain of relay neurons (the
neuron model's :meth:`~nirc.neuron_models.base.NeuronModel.relay`: a neuron that
fires exactly when its one input spiked, shared by every table from the same
source), each hop at most the chip's longest delay.

Requires: a quantized hardware network from the ``quantize`` pass, whose
``ctx.report["table_delays"]`` gives each table's float delay.
Guarantees: every table's delay is >= the model's ``min_delay`` and <=
``formats.max_delay_steps`` (or the model's min_delay when the chip has no
programmable delay); every table whose target lies on a feed-forward path gets
exactly the delay above, so all of a population's feed-forward inputs share
its latency. A recurrent table closing a loop over several layers cannot arrive
earlier than the hardware allows: it is left at its delay and listed under
``unbalanced`` with the steps it arrives late. ``ctx.report["delay_balance"]``
lists every added delay and relay; ``table_delays`` and ``latency_steps`` are
updated to the result.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import scipy.sparse as sp

from nirc.errors import TargetError
from nirc.hwnet import HardwareNetwork, Population, SynapseTable
from nirc.passes.context import PassContext


def max_delay_of(ctx: PassContext) -> int:
    """The longest delay one table can have on the target (its min_delay without a delay field)."""
    limit = ctx.formats.get("max_delay_steps") if ctx.formats else None
    return max(int(limit), ctx.model.min_delay, 1) if limit else max(ctx.model.min_delay, 1)


def longest_tap_delay(ctx: PassContext) -> int | None:
    """The longest delay a neuron model's rewrite may give a table (a synaptic current held as
    delayed taps): the chip's own longest, or None (no limit of its own) where this pass runs
    later and the model has a relay neuron to carry a longer delay through."""
    passes = list(getattr(ctx.target, "passes", None) or ())
    runs_later = "balance_delays" in passes and "quantize" in passes \
        and passes.index("balance_delays") > passes.index("quantize")
    if runs_later and ctx.model.relay() is not None:
        return None
    return max_delay_of(ctx)


def latencies(net: HardwareNetwork, float_delays: list[int]) -> dict[str, int]:
    """Per input and population, the longest extra latency over same-step (float delay 0) paths."""
    g = nx.DiGraph()
    g.add_nodes_from([*net.inputs, *net.populations])
    for t, d0 in zip(net.tables, float_delays):
        if d0 == 0:
            extra = int(t.delay)
            if not g.has_edge(t.source, t.target) or g.edges[t.source, t.target]["extra"] < extra:
                g.add_edge(t.source, t.target, extra=extra)
    latency = {name: 0 for name in g.nodes}
    for name in nx.topological_sort(g):      # same-step tables form no cycle (fuse)
        for src, _, data in g.in_edges(name, data=True):
            latency[name] = max(latency[name], latency[src] + data["extra"])
    return latency


def _relay_name(net: HardwareNetwork, source: str, hop: int) -> str:
    return net.free_name(f"{source}.relay{hop}")


def balance_delays(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    """Equalise the hardware latency of every population's inputs (see the module docstring)."""
    rows = ctx.report.get("table_delays")
    if not net.quantized or rows is None or len(rows) != len(net.tables):
        raise TargetError("balance_delays runs after quantize (it needs each table's float "
                          "delay)", field="passes")
    model = ctx.model
    float_delays = [int(r["float_delay"]) for r in rows]
    latency = latencies(net, float_delays)
    longest = max_delay_of(ctx)
    relay_spec = None
    relays: dict[tuple[str, int], str] = {}      # (source, hops) -> relay population
    populations = dict(net.populations)
    new_tables: list[SynapseTable] = []
    relay_tables: list[SynapseTable] = []
    added, relay_rows, unbalanced = [], [], []

    def relay_of(source: str, hops: int) -> str:
        """The population that repeats ``source``'s spikes ``hops * longest`` steps later."""
        nonlocal relay_spec
        if (source, hops) in relays:
            return relays[(source, hops)]
        if relay_spec is None:
            relay_spec = model.relay()
            if relay_spec is None:
                raise TargetError(f"a table needs a delay above the chip's longest ({longest} "
                                  f"steps) and neuron model '{model.name}' has no relay neuron",
                                  field="formats.max_delay_steps")
        params, weight, attrs = relay_spec
        previous = source if hops == 1 else relay_of(source, hops - 1)
        name = _relay_name(net.with_(populations=populations), source, hops)
        size = net.size_of(source)
        populations[name] = Population(
            name=name, shape=(size,), spiking=True, provenance=("relay", source),
            params={k: np.full(size, v, dtype=np.int64) for k, v in params.items()})
        identity = sp.csr_array((np.full(size, weight, np.int64),
                                 (np.arange(size), np.arange(size))), shape=(size, size))
        relay_tables.append(SynapseTable(source=previous, target=name, weights=identity,
                                       delay=longest, provenance=("relay", source),
                                       kernel=dict(attrs)))
        relays[(source, hops)] = name
        # A relay fires when the spike it carries arrives: hops x longest after its source.
        latency[name] = latency[source] + hops * longest
        relay_rows.append({"population": name, "source": source, "neurons": size,
                           "delay_steps": hops * longest})
        return name

    for k, (t, d0) in enumerate(zip(net.tables, float_delays)):
        want = d0 + latency[t.target] - latency[t.source]
        if want < t.delay:
            unbalanced.append({"table": k, "source": t.source, "target": t.target,
                               "nodes": list(t.provenance), "late_steps": int(t.delay - want)})
            want = int(t.delay)
        if want > t.delay:
            added.append({"table": k, "source": t.source, "target": t.target,
                          "nodes": list(t.provenance), "float_delay": d0,
                          "delay_before": int(t.delay), "delay": int(want),
                          "added_steps": int(want - t.delay)})
        if want <= longest:
            new_tables.append(t.with_(delay=int(want)))
            continue
        hops = math.ceil(want / longest) - 1
        new_tables.append(t.with_(source=relay_of(t.source, hops),
                                  delay=int(want - hops * longest)))
        if added and added[-1]["table"] == k:
            added[-1]["via_relay"] = relays[(t.source, hops)]
    # relay_of refers to itself: without this its closure is a reference cycle that keeps
    # the input network's tables alive until a full collection (rare while passes run).
    del relay_of

    ctx.report["delay_balance"] = {
        "max_delay_steps": longest,
        "added_delays": added,
        "relays": relay_rows,
        "unbalanced": unbalanced,
    }
    # Relay tables go last, so table k of the input is still table k of the output.
    balanced = net.with_(populations=populations, tables=(*new_tables, *relay_tables))
    ctx.report["table_delays"] = [
        {"source": t.source, "target": t.target,
         "float_delay": float_delays[k] if k < len(float_delays) else None, "delay": int(t.delay)}
        for k, t in enumerate(balanced.tables)]
    ctx.report["latency_steps"] = {name: latency[name] for name in balanced.populations}
    return balanced


def misaligned_inputs(pass_reports: dict) -> list[str]:
    """One line per population whose inputs reach it with different hardware latencies, read
    from a compile report's ``pass_reports`` (``table_delays``, ``latency_steps``): what a
    build without balance_delays (or with loops it could not balance) computes differently
    from the float model, however bit-exact it is."""
    rows = pass_reports.get("table_delays") or []
    latency = pass_reports.get("latency_steps") or {}
    arrivals: dict[str, dict[int, set]] = {}
    for r in rows:
        if r.get("float_delay") is None or r["target"] not in latency:
            continue
        at = latency.get(r["source"], 0) + r["delay"] - r["float_delay"]
        arrivals.setdefault(r["target"], {}).setdefault(at, set()).add(r["source"])
    lines = []
    for target, by_latency in arrivals.items():
        if len(by_latency) < 2:
            continue
        want = latency[target]
        off = sorted((at - want, sorted(src)) for at, src in by_latency.items() if at != want)
        said = "; ".join(f"from {', '.join(src)} {abs(d)} step{'s' if abs(d) != 1 else ''} "
                         f"{'early' if d < 0 else 'late'}" for d, src in off)
        lines.append(f"'{target}' receives its inputs with different latencies ({said}) and "
                     f"computes something the float model does not")
    return lines
