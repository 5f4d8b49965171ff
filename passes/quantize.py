"""quantize: float hardware network -> the target neuron model's integer formats.

Requires: an unrolled hardware network in the generic float model (every
table has weights; populations carry the float_reference parameters).
Guarantees: a network with ``neuron_model`` = the target's model and
``quantized`` = True; every population's params are exactly the model's
``param_names`` (integers for hardware models), every table holds the
model's stored weights, its per-table fields in ``kernel`` and a delay of at
least the model's minimum (one step on Loihi: its synapses buffer a step).
The model decides the scaling (per layer, or per channel with
``ctx.granularity = "channel"``); ``ctx.report["quantization"]`` gets one row
per population with the error introduced and what was not exact, and
``ctx.report["latency_steps"]`` the steps by which each population lags the
float network because of delays the hardware added (longest path from the
inputs through same-step tables), ``ctx.report["table_delays"]`` each table's
float and hardware delay (which balance_delays reads). A model may return
constant input currents as extra tables from ``nirc.hwnet.BIAS_SOURCE``: they
come from one added population, ``always_on`` (the model's
:meth:`~nirc.neuron_models.base.NeuronModel.always_on` neuron, one per network),
and are listed after the network's own tables with float delay 0. A model's
rewrite (a synaptic current as delayed taps) may give tables delays above the
chip's longest where balance_delays runs after this pass and the model has a
relay neuron (balance_delays.longest_tap_delay): that pass carries them.
"""

from __future__ import annotations

from typing import Mapping

import networkx as nx
import numpy as np

from nirc.errors import TargetError
from nirc.hwnet import HardwareNetwork, Population, SynapseTable
from nirc.passes.context import PassContext


def added_latency(before: HardwareNetwork, after: HardwareNetwork) -> dict[str, int]:
    """Per population, the most steps the quantized network adds on a path from the inputs
    through tables that were same-step (delay 0) in the float network."""
    g = nx.DiGraph()
    g.add_nodes_from([*before.inputs, *before.populations])
    for old, new in zip(before.tables, after.tables):
        if old.delay == 0:
            extra = new.delay - old.delay
            weight = max(extra, g.edges[old.source, old.target]["extra"]) \
                if g.has_edge(old.source, old.target) else extra
            g.add_edge(old.source, old.target, extra=weight)
    latency = {name: 0 for name in g.nodes}
    for name in nx.topological_sort(g):      # same-step tables form no cycle (fuse)
        for src, _, data in g.in_edges(name, data=True):
            latency[name] = max(latency[name], latency[src] + data["extra"])
    return {name: latency[name] for name in before.populations}


def table_delays(before: HardwareNetwork, after: HardwareNetwork) -> list[dict]:
    """Per table: its delay in the float network and on the hardware (steps)."""
    return [{"source": new.source, "target": new.target, "float_delay": int(old.delay),
             "delay": int(new.delay)} for old, new in zip(before.tables, after.tables)]


def _always_on_population(net: HardwareNetwork, model) -> Population:
    params = model.always_on()
    if params is None:
        raise TargetError(f"neuron model '{model.name}' returned constant-current tables but "
                          f"has no always-on neuron", field="neuron_model")
    name = net.free_name("always_on")
    return Population(name=name, shape=(1,), spiking=True, provenance=("always_on",),
                      params={k: np.full(1, v, dtype=np.int64) for k, v in params.items()})


def quantize(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    """Quantize every population together with the tables into it; where the neuron model
    offers per-population ``choices``, choose them by calibration agreement (fidelity_search)."""
    if getattr(ctx.model, "choices", None):
        return fidelity_search(net, ctx)
    quantized, rows, _ = quantize_with(net, ctx, {})
    ctx.report["quantization"] = rows
    return quantized


def quantize_with(net: HardwareNetwork, ctx: PassContext, choices: Mapping[str, Mapping]
                  ) -> tuple[HardwareNetwork, list[dict], dict[str, int]]:
    """The network quantized with the model's ``choices`` per population (default: none);
    (network, report rows, latency_steps). Sets ctx.report's table_delays and latency_steps."""
    model = ctx.model
    groups: dict[str, list[str]] = {}
    if hasattr(model, "expand"):
        # Choices that change the network's shape (Loihi's spike copies) rewrite it first;
        # everything below, the latency included, sees the rewritten network.
        from nirc.passes.balance_delays import longest_tap_delay

        net, choices, groups = model.expand(net, choices, max_delay=longest_tap_delay(ctx))
    new_tables: dict[int, object] = {}
    bias_tables: list[SynapseTable] = []
    refinements: list[tuple[int, SynapseTable]] = []
    resets: list[SynapseTable] = []
    populations = {}
    rows = []
    into: dict[str, list[int]] = {}
    for k, t in enumerate(net.tables):
        into.setdefault(t.target, []).append(k)
    for name, pop in net.populations.items():
        index = into.get(name, [])
        choice = choices.get(name)
        new_pop, tables, row = model.quantize(pop, [net.tables[k] for k in index],
                                              ctx.formats, ctx.granularity,
                                              **({"choice": choice} if choice else {}))
        populations[name] = new_pop
        new_tables.update(zip(index, tables[:len(index)]))
        for t in tables[len(index):]:
            refines = (t.kernel or {}).get("refines")
            if (t.kernel or {}).get("self_reset"):
                resets.append(t.with_(kernel={k: v for k, v in t.kernel.items()
                                              if k != "self_reset"}))
            elif refines is None:
                bias_tables.append(t)
            else:
                kernel = {k: v for k, v in t.kernel.items() if k != "refines"}
                refinements.append((index[refines], t.with_(kernel=kernel)))
        if choice:
            row = {**row, "choice": {k: v for k, v in choice.items()
                                     if k not in ("reset_tables", "copy", "current_taps",
                                                  "membrane_peak", "copy_weight",
                                                  "threshold_factor", "threshold_factor_top")}}
        if name in groups:
            row = {**row, "spike_copies": list(groups[name][1:])}
            weighed = [choices.get(c, {}).get("copy_weight", 1) for c in groups[name][1:]]
            if any(m != 1 for m in weighed):
                # (the model's spikes each copy's spike stands for: Loihi's spike levels)
                row["spike_copy_weights"] = weighed
        rows.append(row)
    # Refinement tables follow the network's own tables (table k of the input is still table
    # k of the output), each with its table's float delay; constant-current tables go last.
    # Then the tables that subtract a threshold (a population onto itself, a step later).
    given = tuple(t.with_(delay=1) if (t.kernel or {}).get("self_reset") else t
                  for t in net.tables)
    before = net.with_(tables=(*given, *(net.tables[k] for k, _ in refinements),
                               *(t.with_(delay=1) for t in resets)))
    own = (*(new_tables[k] for k in range(len(net.tables))), *(t for _, t in refinements),
           *resets)
    if bias_tables:
        # Constant input currents: one always-on neuron feeds them all. Its tables go last
        # (table k of the input is still table k of the output); in the float network they
        # are same-step inputs (float delay 0), from a source of latency 0.
        source = _always_on_population(net, model)
        populations[source.name] = source
        bias_tables = [t.with_(source=source.name) for t in bias_tables]
        before = before.with_(populations={**net.populations, source.name: source},
                              tables=(*before.tables, *(t.with_(delay=0) for t in bias_tables)))
    quantized = net.with_(neuron_model=model.name, populations=populations,
                          tables=(*own, *bias_tables), quantized=True)
    latency = added_latency(before, quantized)
    ctx.report["latency_steps"] = latency
    ctx.report["table_delays"] = table_delays(before, quantized)
    return quantized, rows, latency


# The search runs where one quantize-and-run of the calibration input is cheap enough to
# repeat: at most this many synapses (beyond, the model's default choices, and the report
# says why).
SEARCH_MAX_SYNAPSES = 2_000_000
# Every trial runs the whole network, so a first round costs (trials x populations)
# population-runs: quadratic in depth. Beyond this many the defaults stand (a 200-layer
# chain would need 39,000, about six minutes).
SEARCH_MAX_POPULATION_RUNS = 4_000
SEARCH_ROUNDS = 2
# Defaults that already agree this well with the source model are kept without a search; a
# choice replaces the default only when it raises the agreement by more than SEARCH_MARGIN
# (smaller differences are noise of a finite calibration set).
GOOD_ENOUGH = 0.999
SEARCH_MARGIN = 0.005


def membrane_peaks(net: HardwareNetwork, float_run) -> dict[str, float]:
    """Per spiking population whose membrane ``float_run`` recorded (states "v"), its largest
    magnitude over the population's threshold (the threshold above its reset)."""
    peaks = {}
    states = getattr(float_run, "states", None) or {}
    for name, pop in net.populations.items():
        v = (states.get(name) or {}).get("v") if pop.spiking else None
        if v is None or np.size(v) == 0:
            continue
        theta = np.broadcast_to(np.asarray(pop.params["threshold"], np.float64)
                                - np.asarray(pop.params["v_reset"], np.float64), (pop.size,))
        v = np.asarray(v, np.float64).reshape(*np.shape(v)[:-len(pop.shape)], pop.size)
        peak = float(np.max(np.abs(v) / np.where(theta > 0, theta, np.inf)))
        if np.isfinite(peak) and peak > 0:
            peaks[name] = round(peak, 6)
    return peaks


def fidelity_search(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    """Quantize with the neuron model's per-population ``choices`` that agree best with the
    source model on calibration input (nirc.fidelity.search_factors, the search every
    quantizer tunes with): each trial quantizes the network, runs the passes the target applies after this
    one (delay balancing, profiles: the network as deployed), runs it on the calibration
    input and scores it against the source model's run (nirc.fidelity.score).
    ``ctx.report["quantization_search"]`` gives the defaults' agreement, the chosen one and
    every trial; each report row its ``choice``."""
    from nirc import fidelity, intref
    from nirc.passes.balance_delays import longest_tap_delay
    from nirc.passes.registry import get_pass

    read_out = [o.source for o in net.outputs.values()]
    # (the longest delay a current's taps may have: longer ones go through relay neurons)
    max_delay = longest_tap_delay(ctx)

    def offered(pop):
        if hasattr(ctx.model, "choice_options"):
            return ctx.model.choice_options(pop, ctx.convention, max_delay=max_delay,
                                            readout=pop.name in read_out)
        return ctx.model.choices

    options = {name: {key: list(values) for key, values in offered(pop).items()}
               for name, pop in net.populations.items()}
    # (a model may say why a choice the trained model needs is not offered: the rows' notes)
    withheld = {name: ctx.model.choice_notes(pop, ctx.convention, max_delay=max_delay)
                for name, pop in net.populations.items()} \
        if hasattr(ctx.model, "choice_notes") else {}
    withheld = {name: notes for name, notes in withheld.items() if notes}
    # (per population where the model prices a knob by the population: {(name, knob): margin})
    margins = dict(getattr(ctx.model, "choice_margins", None) or {})
    if hasattr(ctx.model, "choice_margins_of"):
        margins.update({(name, knob): m for name, pop in net.populations.items()
                        for knob, m in ctx.model.choice_margins_of(pop, options[name]).items()})
    after = []
    if ctx.target is not None and "quantize" in ctx.target.passes:
        after = list(ctx.target.passes)[list(ctx.target.passes).index("quantize") + 1:]
    trials = 1 + sum(len(values) - 1 for keys in options.values() for values in keys.values())
    population_runs = trials * len(net.populations)
    too_big = None
    if net.synapse_count > SEARCH_MAX_SYNAPSES:
        too_big = f"{net.synapse_count} synapses (above {SEARCH_MAX_SYNAPSES})"
    elif population_runs > SEARCH_MAX_POPULATION_RUNS:
        too_big = (f"{trials} trials x {len(net.populations)} populations = {population_runs} "
                   f"population runs (above {SEARCH_MAX_POPULATION_RUNS})")
    if too_big:
        # (the model's own defaults: on Loihi one table per weight table, no refinements)
        quantized, rows, _ = quantize_with(net, ctx, {})
        ctx.report["quantization"] = rows
        ctx.report["quantization_search"] = {
            "skipped": f"{too_big}: the model's default choices, not searched"}
        return quantized
    cal = fidelity.calibration_of(net, ctx.calibration)
    float_run = cal.reference if cal.reference is not None else \
        intref.run(net, cal.inputs, batch=True, record=True)
    voltages = {o.source: float_run.outputs[k] for k, o in net.outputs.items()
                if o.quantity != "spikes" and k in float_run.outputs}
    saved = dict(ctx.report)
    # The largest membrane each spiking population reached in the source model, in its
    # thresholds: a model that holds a membrane where the chip's neuron holds a bounded state
    # (Loihi's u) sizes it by this (``membrane_peak``, passed with every choice).
    peaks = membrane_peaks(net, float_run)

    def with_peaks(choice):
        return {name: {**c, "membrane_peak": peaks[name]}
                if name in peaks and "u_range" in options.get(name, {}) else c
                for name, c in choice.items()}

    def evaluate(choice):
        ctx.report.clear()
        ctx.report.update(saved)
        try:
            quantized, rows, _ = quantize_with(net, ctx, with_peaks(choice))
        except getattr(ctx.model, "TooCostly", ()):
            return -1.0, None       # a choice the model will not build (listed as -1)
        deployed = quantized
        for name in after:
            deployed = get_pass(name)(deployed, ctx)
        if any(r.get("spike_copies") or r.get("current_taps") for r in rows) \
                and not holds(deployed):
            return -1.0, None       # rewritten past what the target holds (listed as -1)
        chip = intref.run(deployed, cal.inputs, batch=True)
        agreement = fidelity.compare(deployed, chip, float_run,
                                     ctx.report.get("latency_steps", {}), voltages,
                                     copies=fidelity.copies_of(rows),
                                     copy_weights=fidelity.copy_weights_of(rows))
        return fidelity.score(fidelity.timed(agreement), read_out), (quantized, rows,
                                                                     dict(ctx.report),
                                                     agreement)

    def holds(deployed) -> bool:
        """Whether a network a choice rewrote (copies, taps: many more synapses) still fits
        the target, by the partitioner's greedy fill (a fill it finds, the compile's search
        starts from; rarely a network it cannot fill would have fitted)."""
        if ctx.target is None or getattr(ctx.target, "system", None) is not None:
            return True     # (a system of chips spreads what one chip cannot hold)
        from nirc.errors import FitError
        from nirc.partition import partition

        try:
            partition(deployed, ctx.target, method="sequential")
        except FitError:
            return False
        return True

    defaults = {name: {key: values[0] for key, values in keys.items()}
                for name, keys in options.items()}
    first = evaluate(defaults)
    if first[0] >= GOOD_ENOUGH:
        found = fidelity.Search(defaults, first[0], first[1], first[0], first[1], [])
    else:
        found = fidelity.search_factors(
            lambda c: first if c == defaults else evaluate(c), options, SEARCH_ROUNDS,
            defaults=defaults, margin=SEARCH_MARGIN,
            knob_margins=margins)
    choice, score, best, start, tried = (found.factors, found.score, found.result,
                                         found.baseline, found.tried)
    agreement = best[3]
    # The passes after this one run again in the driver: the report holds quantize's own.
    ctx.report.clear()
    ctx.report.update(saved)
    quantized, rows, _ = quantize_with(net, ctx, with_peaks(choice))
    for row in rows:
        name = row["population"]
        if name in withheld:
            row["notes"] = [*row.get("notes", []), *withheld[name]]
        offered_resets = options.get(name, {}).get("reset", [])
        if choice.get(name, {}).get("reset") == "zero" and len(offered_resets) > 1:
            # A subtraction the model was trained with, offered and not kept: what it scored.
            scores = {t["factor"]: t["agreement"] for t in tried
                      if t["population"] == name and t["knob"] == "reset"
                      and t["factor"] != "zero"}
            if scores:
                value, best_other = max(scores.items(), key=lambda kv: kv[1])
                cost = ctx.model.subtract_cost(net.populations[name], max_delay) \
                    if hasattr(ctx.model, "subtract_cost") else ""
                row["notes"] = [*row.get("notes", []), (
                    f"the reset stays zero: with '{value}' (the trained rule{cost}) the "
                    f"network's calibration agreement was {best_other:.3f}, as chosen "
                    f"{score:.3f}")]
        measured = agreement.get(row["population"])
        if measured is not None:
            row["calibration_agreement"] = round(float(measured["agreement"]), 6)
    ctx.report["quantization"] = rows
    ctx.report["quantization_search"] = {
        "objective": "calibration agreement with the source model (nirc.fidelity.score of "
                     "nirc.fidelity.timed: per population the mean of count agreement and step "
                     f"Jaccard; mean over populations, {fidelity.OUTPUT_WEIGHT:.0%} of it on "
                     "those read as outputs), on the network as deployed",
        "calibration": cal.describe(),
        "choices": {name: {k: list(v) for k, v in keys.items()} for name, keys in options.items()},
        "agreement_default": round(start, 6), "agreement": round(score, 6),
        "chosen": {name: c for name, c in choice.items() if c != defaults[name]},
        "tried": tried}
    return quantized
