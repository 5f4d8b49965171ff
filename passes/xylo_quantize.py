"""xylo_quantize: a float hardware network -> Xylo's fixed fabric in integer xylo_lif units.

Requires: the output of unroll (float generic discrete neurons, float weight
tables) and a Xylo-class target (ctx.target_name or ctx.target).
Guarantees: the same populations and tables with per-neuron dash_mem,
dash_syn, dash_syn_2, threshold and bias (16-bit), 8-bit weights with the
matrix's global shift in ``kernel["weight_shift"]``, delays as Xylo has them
(0 from inputs, 1 between neurons); or a FitError naming the fabric limit the
network exceeds. ``ctx.report["quantize"]`` gets the scaling and per-layer
errors (see nirc.targets.xylo.quantize), ``ctx.report["latency_steps"]`` the
steps each population lags the float network (feed-forward tables between
neurons gain one step each, as in quantize).

Constant input currents (a Linear bias before a current-based neuron) become
synapses from one always-on hidden neuron (nirc.targets.xylo.bias) when the
fabric has room, rather than Xylo's membrane bias, which would reach their
steady state a time constant early; ``ctx.report["quantize"]["notes"]`` says
which was done.

Scales are chosen for fidelity, on calibration input (``ctx.calibration``: the
user's samples, else nirc.fidelity.DEFAULT's seeded spikes): the float network
is run once, its largest |v| and |i| size a first state scale (so they fit 16
bits), then each population's scale is multiplied by the factor in
SCALE_FACTORS or single_spike_factors (up to the largest that keeps its
thresholds in 16 bits; past the weights' 8-bit range the largest weights clip,
which can agree better than a smaller threshold, and the report counts them)
that maximises the network's agreement with the float run (per population the
mean of nirc.fidelity's count agreement and count correlation, objective_rows;
nirc.fidelity.score over the network), one population and knob after the other,
twice over (nirc.fidelity.search_factors, the search every quantizer uses). Why it matters: Xylo subtracts the threshold and fires up to 31 spikes
per step, so a threshold far below the 16-bit range lets a strongly driven
neuron burst where a one-spike model fires once; a threshold just above half
the range bounds the burst to one spike (the state saturates at about two
thresholds) but clips states the model carries further. Which costs less
depends on the network, so it is measured. A readout the model drives to
several spikes per step (Rockpool's LIFTorch) against Xylo's one may also get
its thresholds raised by a ``count_scale`` from COUNT_SCALES, so that each chip
spike stands for that many of the model's; the report rows give it, and
fidelity compares the chip's counts times it. Such an output layer is also tried on
hidden neurons, its counts read through relays (nirc.targets.xylo.relay: exact, one
step later); the readout that agrees more is kept, ``ctx.report["quantize"]["readout"]``
says which with both agreements, and ``latency_steps`` has the relay's. ``ctx.report["quantize"]
["search"]`` lists the factors tried and the agreement each gave. Two more knobs per
population start on and are kept unless calibration agrees more without them (both in
nirc.targets.xylo.quantize): ``fill`` raises its scale until its weights fill 8 bits under
the shifts the matrices need, ``rounding`` adds the bias that cancels the upward drift of
Xylo's flooring decays (on a chip with biases).
``ctx.report["quantization"]`` one row per population with its scale, scale
factor, count scale, calibration agreement and what limited it (limited_by).
"""

from __future__ import annotations

import numpy as np

from nirc import fidelity, intref
from nirc.hwnet import HardwareNetwork
from nirc.neuron_models.xylo_lif import MAX_HIDDEN_SPIKES, MAX_READOUT_SPIKES
from nirc.passes.context import PassContext
from nirc.passes.quantize import added_latency
from nirc.targets.xylo.layout import layout
from nirc.targets.xylo.relay import with_count_relay

RELAY_PACKING = (1, 2)    # output neurons per relay neuron, fewest first

# Scale multipliers tried per population (powers of sqrt(2), and the largest allowed).
SCALE_FACTORS = tuple(2.0 ** (k / 2) for k in range(-4, 15))
SEARCH_ROUNDS = 2
# A time constant whose bit shift is off by more than this also tries the other side of tau.
TAU_EXACT = 1e-3
# Time constant multipliers tried where a bit shift misses tau: the shift below, the nearest, above.
TAU_FACTORS = (0.5, 1.0, 2.0)
# Readout count scales tried (each chip spike standing for that many of the model's).
COUNT_SCALES = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)
# Thresholds just above half the 16-bit range bound bursts to one spike per step with the most
# room left for the state (higher ones clip it sooner and agree less).
SINGLE_SPIKE_SHARES = (0.5002,)


def objective_rows(rows: dict) -> dict:
    """What the search maximises per population: the mean of its count agreement (spike
    totals per neuron and sample match) and its count correlation (the same neurons are the
    most active; floored at 0). Agreement alone prefers a layer that fires as rarely as the
    model, even in the wrong neurons, over one that fires in the right ones more often."""
    out = {}
    for name, row in rows.items():
        corr = row.get("count_correlation", row.get("voltage_correlation"))
        value = row["agreement"] if corr is None else 0.5 * (row["agreement"] + max(0.0, corr))
        out[name] = {**row, "agreement": value}
    return out


def single_spike_factors(room: float | None) -> tuple[float, ...]:
    """Scale factors that put a population's thresholds above half the 16-bit range (``room``:
    the factor that puts them at its top). There a state, which saturates at 32767, never
    holds two thresholds: Xylo's neuron fires at most one spike per step, as a model trained
    with one spike per step does, at the price of states clipped at about two thresholds."""
    if room is None or not np.isfinite(room):
        return ()
    return tuple(room * share for share in SINGLE_SPIKE_SHARES)


def state_peaks(net: HardwareNetwork, run) -> dict[str, dict[str, np.ndarray]]:
    """Per population and neuron, the largest |v| and |i| of a recorded float run."""
    return {pop: {k: np.abs(trace).reshape(-1, net.populations[pop].size).max(axis=0)
                  for k, trace in states.items() if k in ("v", "i")}
            for pop, states in run.states.items() if pop in net.populations}


def calibration_of(net: HardwareNetwork, ctx: PassContext) -> fidelity.Calibration:
    given = ctx.calibration
    if isinstance(given, fidelity.Calibration):
        return given
    return fidelity.calibration({k: p.shape for k, p in net.inputs.items()}, given)


def bias_currents(net: HardwareNetwork, device, file: str | None) -> tuple[HardwareNetwork, str | None]:
    """``net`` with its constant input currents carried by an always-on hidden neuron
    (nirc.targets.xylo.bias) when the fabric has a free neuron and biases, and a note on what
    was done; else ``net`` and why not (Xylo's v bias then carries them)."""
    from nirc.targets.xylo.bias import current_biased, with_bias_source

    targets = current_biased(net)
    if not targets:
        return net, None
    which = ", ".join(f"'{t}'" for t in targets)
    if not device.has_bias:
        return net, None        # quantize refuses biases on a chip without them, naming them
    augmented = with_bias_source(net)
    unfit = relay_fit(augmented, device, file)
    if unfit is not None and all(relay_fit(with_count_relay(augmented, pack)[0], device, file)
                                 for pack in RELAY_PACKING):
        return net, (f"the constant input currents of {which} go to Xylo's membrane bias (their "
                      f"steady state, reached sooner than in the model): no room for the "
                      f"always-on neuron that would carry them as currents ({unfit})")
    return augmented, (f"the constant input currents of {which} (a Linear bias before a "
                       f"current-based neuron) arrive as synapses from one always-on hidden "
                       f"neuron, as in the model (Xylo's bias adds to v, which would reach "
                       f"their steady state sooner); hidden neurons receive them from step 1")


def xylo_quantize(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    from nirc.targets.xylo.backend import device_for, quantized_network, reference

    target = ctx.target or ctx.target_name or "xylo"
    device = device_for(target)
    lowered, bias_note = bias_currents(net, device, ctx.file)
    cal = calibration_of(net, ctx)
    # The source model (the driver's reference run, under the file's convention), else the
    # float network (NIR semantics).
    float_run = cal.reference if cal.reference is not None else \
        intref.run(net, cal.inputs, batch=True, record=True)
    peaks = state_peaks(net, float_run)
    voltages = {o.source: float_run.outputs[k] for k, o in net.outputs.items() if o.quantity != "spikes"}

    read_out = [o.source for o in net.outputs.values()]

    # Readouts the model drives to more spikes per step than Xylo's readout fires (one): their
    # thresholds may be raised so that each chip spike stands for ``count_scale`` of the model's.
    counts = {name: 1.0 for name in read_out if name in net.populations and net.populations[name].spiking
              and name in getattr(float_run, "spikes", {})
              and float(np.max(float_run.spikes[name], initial=0)) > MAX_READOUT_SPIKES}

    def settings(factors):
        """quantized_network's keyword arguments for search factors {population: {knob: f}}:
        "scale" multiplies the state scale, "count" a readout's thresholds, "tau_mem" and
        "tau_syn" the time constant whose nearest bit shift is taken (0.5, 1, 2: a shift
        below, the nearest, a shift above), "fill" and "rounding" (1 on, 0 off) the weights
        filling 8 bits and the decay-rounding bias."""
        return {"scale_factors": {n: k["scale"] for n, k in factors.items() if "scale" in k},
                "count_scales": {n: k["count"] for n, k in factors.items() if "count" in k},
                "dash_steps": {n: (int(round(np.log2(k.get("tau_mem", 1.0)))),
                                   int(round(np.log2(k.get("tau_syn", 1.0)))))
                               for n, k in factors.items() if "tau_mem" in k or "tau_syn" in k},
                "rounding_bias": {n: k["rounding"] for n, k in factors.items() if "rounding" in k},
                "fill": {n: k["fill"] for n, k in factors.items() if "fill" in k}}

    def tune(base: HardwareNetwork, counts: dict[str, float]):
        """The factor search (module docstring) for one lowering of the network, and per
        population the largest scale factor its thresholds allow."""
        def evaluate(factors):
            quantized, report = quantized_network(base, device, ctx.granularity, ctx.file,
                                                  state_peaks=peaks, **settings(factors))
            latency = added_latency(net, quantized)
            chip = reference(quantized, cal.inputs, batch=True)
            # The count scales as applied (capped where the raised thresholds would not fit 16 bits).
            applied = {r["population"]: r["count_scale"] for r in report["layers"] if r["count_scale"] != 1}
            rows = fidelity.compare(quantized, chip, float_run, latency, voltages, applied)
            return fidelity.score(objective_rows(rows), read_out), (rows, quantized, report)

        _, (_, _, first) = evaluate({})
        room = {row["population"]: row["max_scale_factor"] for row in first["layers"]}
        candidates: dict[str, dict[str, list[float]]] = {}
        for row in first["layers"]:
            name = row["population"]
            if name not in net.populations:
                continue            # the always-on neuron, a count relay: nothing to tune
            limit = room[name] if room[name] is not None else max(SCALE_FACTORS)
            knobs = {"scale": sorted({f for f in SCALE_FACTORS if f <= limit}
                                     | {max(min(limit, max(SCALE_FACTORS)), min(SCALE_FACTORS))}
                                     | set(single_spike_factors(room[name])))}
            # Time constants Xylo's bit shifts miss: the other side of tau is tried too.
            if row["tau_mem_relative_error"] > TAU_EXACT:
                knobs["tau_mem"] = list(TAU_FACTORS)
            if row["tau_syn_relative_error"] > TAU_EXACT:
                knobs["tau_syn"] = list(TAU_FACTORS)
            if name in counts:
                knobs["count"] = list(COUNT_SCALES)
            # Weights filling 8 bits under the shifts, and the bias that cancels the flooring
            # decays' drift (nirc.targets.xylo.quantize): on unless calibration agrees more without.
            knobs["fill"] = [0.0]
            if device.has_bias:
                knobs["rounding"] = [0.0]
            candidates[name] = knobs
        return fidelity.search_factors(evaluate, candidates, rounds=SEARCH_ROUNDS), room

    # Xylo's readout fires at most once per step. Where the model drives an output layer to
    # more, it is read either from readout neurons (with count scales), or kept on hidden
    # neurons and counted through relays (nirc.targets.xylo.relay): whichever agrees more on
    # calibration. (Where the model fires once per step, the readout fires as it does.) Where
    # the outputs outnumber the readout neurons, relays counting two outputs each hold them.
    spikes_unfit = relay_fit(lowered, device, ctx.file)
    relayed_net, relays, pack = lowered, {}, 1
    if counts or spikes_unfit is not None:
        for pack in RELAY_PACKING:
            relayed_net, relays = with_count_relay(lowered, pack)
            if relays and relay_fit(relayed_net, device, ctx.file) is None:
                break
    counted_unfit = relay_fit(relayed_net, device, ctx.file) if relays else None
    if spikes_unfit is not None and (not relays or counted_unfit is not None):
        layout(lowered, device, ctx.file)           # the spike readout's FitError
    readout_mode: dict = {"mode": "spikes"}
    found = room = None
    if spikes_unfit is None:
        found, room = tune(lowered, counts)
        readout_mode["agreement"] = round(found.score, 6)
    else:
        readout_mode = {"mode": "counts", "spikes": {"fits": False, "why": spikes_unfit}}
    if relays:
        if counted_unfit is not None:
            readout_mode["counts"] = {"fits": False, "why": counted_unfit}
        else:
            counted, counted_room = tune(relayed_net, {})
            readout_mode["counts"] = {"fits": True, "agreement": round(counted.score, 6),
                                      "outputs_per_readout_neuron": pack}
            if found is None or counted.score > found.score:
                found, room, counts = counted, counted_room, {}
                readout_mode["mode"] = "counts"
    best_score, unscaled, tried = found.score, found.baseline, found.tried
    best_rows, best_net, best_report = found.result
    quantized, report = best_net, best_report
    counts = {r["population"]: r["count_scale"] for r in report["layers"] if r["population"] in counts}
    notes = [bias_note] if bias_note else []
    notes += [f"readout '{name}': thresholds raised {k:g}x, so each of its spikes stands for {k:g} of "
              f"the model's (the model fires up to "
              f"{float(np.max(float_run.spikes[name])):.0f} per step here, Xylo's readout one): "
              f"multiply its spike counts by {k:g} to compare them with the model's"
              for name, k in counts.items() if k != 1]
    if readout_mode["mode"] == "counts":
        other = (f"read as readout spikes {readout_mode['agreement']:.3f}"
                 if "agreement" in readout_mode else
                 f"read as readout spikes it does not fit: {readout_mode['spikes']['why']}")
        notes += [f"output '{k}': layer '{relays[o.source]}' runs on hidden neurons (up to "
                  f"{MAX_HIDDEN_SPIKES} spikes per step) and its spike counts are read from the "
                  f"synaptic current of readout '{o.source}' ({pack} output neuron"
                  f"{'s' if pack > 1 else ''} per readout neuron), one step later (config.json's "
                  f"decode; it agreed {readout_mode['counts']['agreement']:.3f} on calibration, "
                  f"{other})"
                  for k, o in quantized.outputs.items() if o.source in relays]
    if notes:
        report["notes"].extend(notes)
        quantized = quantized.with_(notes=(*quantized.notes, *notes))
    report["calibration"] = cal.describe()
    report["search"] = {"objective": "per population the mean of its calibration agreement with the "
                                     "float model (nirc.fidelity.layer_agreement) and its count "
                                     "correlation, mean over populations, "
                                     f"{fidelity.OUTPUT_WEIGHT:.0%} of it on those read as outputs",
                        "agreement_unscaled": round(unscaled, 6),
                        "agreement": round(best_score, 6), "tried": tried}
    report["readout"] = readout_mode
    ctx.report["quantize"] = report
    readouts = {o.source for o in quantized.outputs.values()}
    # The driver's report and nirc verify read one row per population under "quantization".
    ctx.report["quantization"] = [
        {"population": row["population"], "scale": row["scale"], "scale_factor": row["scale_factor"],
         "count_scale": row["count_scale"],
         "weight_rel_error": max([v for k, v in row.items() if k.endswith("_relative_rms_error")], default=0.0),
         "threshold_rel_error": row["threshold_relative_error"], "tau_mem_rel_error": row["tau_mem_relative_error"],
         "weights_zeroed": sum(v for k, v in row.items() if k.endswith("_zeroed")),
         "weights_clipped": sum(v for k, v in row.items() if k.endswith("_clipped")),
         "calibration": best_rows.get(row["population"]),
         "limited_by": limited_by(row, best_rows.get(row["population"]), room.get(row["population"]),
                                  {t.source: best_rows[t.source]["agreement"] for t in net.tables
                                   if t.target == row["population"] and t.source != row["population"]
                                   and t.source in best_rows},
                                  model_reach(net, row["population"], float_run, peaks),
                                  MAX_READOUT_SPIKES if row["population"] in readouts else MAX_HIDDEN_SPIKES)}
        for row in report["layers"]]
    latency = added_latency(net, quantized)
    for relay, layer in relays.items():
        if relay in quantized.populations:
            latency[relay] = latency[layer] + 1
    ctx.report["latency_steps"] = latency
    return quantized


def relay_fit(net: HardwareNetwork, device, file: str | None) -> str | None:
    """None when ``net`` fits the fabric, else why not."""
    from nirc.errors import FitError

    try:
        layout(net, device, file)
    except FitError as err:
        return str(err)
    return None


def model_reach(net: HardwareNetwork, name: str, float_run, peaks: dict) -> dict[str, float]:
    """How far the model goes in population ``name`` on the calibration input: its most spikes
    per neuron and step, and its largest |v| in thresholds."""
    out: dict[str, float] = {}
    spikes = getattr(float_run, "spikes", {}).get(name)
    if spikes is not None and np.size(spikes):
        out["spikes_per_step"] = float(np.max(spikes))
    pop = net.populations.get(name)
    if pop is not None and name in peaks and "v" in peaks[name]:
        th = np.broadcast_to(np.asarray(pop.params.get("threshold", np.inf), np.float64), (pop.size,))
        finite = np.isfinite(th) & (th > 0)
        if np.any(finite):
            out["v_thresholds"] = float(np.max(np.asarray(peaks[name]["v"])[finite] / th[finite]))
    return out


def limited_by(row: dict, agreement: dict | None, room: float | None,
               sources: dict[str, float] | None = None, reach: dict[str, float] | None = None,
               chip_max_spikes: int = MAX_HIDDEN_SPIKES) -> str:
    """What kept this population's calibration agreement from 1, in words (``sources``: the
    agreement of the populations feeding it; ``reach``: model_reach; ``chip_max_spikes``: the
    most spikes per step Xylo lets this population fire)."""
    reach = reach or {}
    parts = []
    for source, value in sorted((sources or {}).items()):
        if value < 0.9:
            parts.append(f"inputs: population '{source}' feeding it agrees {value:.2f} with the float model")
    model_spikes = reach.get("spikes_per_step")
    if model_spikes is not None and model_spikes > chip_max_spikes:
        scale = row.get("count_scale", 1.0)
        parts.append(f"spikes: the model fires up to {model_spikes:.0f} spikes per step here, Xylo's "
                     f"{'readout' if chip_max_spikes == MAX_READOUT_SPIKES else 'hidden'} neurons at "
                     f"most {chip_max_spikes}" + (
                         f" (thresholds raised {scale:g}x: one chip spike stands for {scale:g} of the "
                         f"model's)" if scale != 1 else ""))
    if agreement and agreement.get("burst_share", 0) > 0.05 and (model_spikes or 0) <= 1:
        parts.append(f"bursts: {100 * agreement['burst_share']:.0f}% of its spikes are a second or later "
                     f"spike in one step (Xylo subtracts the threshold and fires up to 31 per step; the "
                     f"float neuron fires once)")
    factor = row["scale_factor"] * row.get("fill_factor", 1.0)
    if room is not None and factor >= room * 0.999:
        parts.append("range: its thresholds are at the top of the 16-bit range; states beyond it saturate")
    elif room is not None and factor >= room * 0.5 and chip_max_spikes > 1:
        reached = reach.get("v_thresholds")
        parts.append("range: thresholds above half the 16-bit range bound it to one spike per step "
                     "as the model fires, and its states saturate at about two thresholds"
                     + (f" (the model's reach {reached:.0f})" if reached is not None else ""))
    clipped = sum(v for k, v in row.items() if k.endswith("_clipped"))
    if clipped:
        parts.append(f"weights: {clipped} clipped at 8 bits under the 3-bit shift (a larger threshold "
                     f"agreed better than exact large weights)")
    if row.get("tau_mem_relative_error", 0) > 0.1 or row.get("tau_syn_relative_error", 0) > 0.1:
        moved = any(row.get("dash_steps", (0, 0)))
        parts.append(f"{'also ' if parts else ''}time constants: Xylo's bit-shift decays are powers of "
                     f"two (tau_mem off by {100 * row['tau_mem_relative_error']:.0f}%, tau_syn by "
                     f"{100 * row.get('tau_syn_relative_error', 0):.0f}%"
                     + ("; the shifts beside the nearest agreed better" if moved else "") + ")")
    if agreement and agreement.get("agreement", 1) < 0.999 and not parts:
        parts.append("rounding and saturation of 16-bit states and 8-bit weights (no single cause "
                     "above 5%)")
    return "; ".join(parts) if parts else "nothing measurable"
