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
nirc.fidelity.score over the network), one population after the other, twice
over. Why it matters: Xylo subtracts the threshold and fires up to 31 spikes
per step, so a threshold far below the 16-bit range lets a strongly driven
neuron burst where a one-spike model fires once; a threshold just above half
the range bounds the burst to one spike (the state saturates at about two
thresholds) but clips states the model carries further. Which costs less
depends on the network, so it is measured. A readout the model drives to
several spikes per step (Rockpool's LIFTorch) against Xylo's one may also get
its thresholds raised by a ``count_scale`` from COUNT_SCALES, so that each chip
spike stands for that many of the model's; the report rows give it, and
fidelity compares the chip's counts times it. ``ctx.report["quantize"]
["search"]`` lists the factors tried and the agreement each gave;
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

# Scale multipliers tried per population (powers of sqrt(2), and the largest allowed).
SCALE_FACTORS = tuple(2.0 ** (k / 2) for k in range(-4, 15))
SEARCH_ROUNDS = 2
# A time constant whose bit shift is off by more than this also tries the other side of tau.
TAU_EXACT = 1e-3
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
    from nirc.errors import FitError
    from nirc.targets.xylo.bias import current_biased, with_bias_source
    from nirc.targets.xylo.layout import layout

    targets = current_biased(net)
    if not targets:
        return net, None
    which = ", ".join(f"'{t}'" for t in targets)
    if not device.has_bias:
        return net, None        # quantize refuses biases on a chip without them, naming them
    augmented = with_bias_source(net)
    try:
        layout(augmented, device, file)
    except FitError as err:
        return net, (f"the constant input currents of {which} go to Xylo's membrane bias (their "
                      f"steady state, reached sooner than in the model): no room for the "
                      f"always-on neuron that would carry them as currents ({err})")
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

    def evaluate(factors, scales, dashes):
        quantized, report = quantized_network(lowered, device, ctx.granularity, ctx.file,
                                              state_peaks=peaks, scale_factors=factors,
                                              count_scales=scales, dash_steps=dashes)
        latency = added_latency(net, quantized)
        chip = reference(quantized, cal.inputs, batch=True)
        rows = fidelity.compare(quantized, chip, float_run, latency, voltages, scales)
        return fidelity.score(objective_rows(rows), read_out), rows, quantized, report

    factors = {name: 1.0 for name in net.populations}
    dashes: dict[str, tuple[int, int]] = {}
    best_score, best_rows, best_net, best_report = evaluate(factors, counts, dashes)
    unscaled = best_score
    room = {row["population"]: row["max_scale_factor"] for row in best_report["layers"]}
    # Time constants Xylo's bit shifts miss: the other side of tau is tried too.
    inexact = {row["population"]: (row["tau_mem_relative_error"] > TAU_EXACT,
                                   row["tau_syn_relative_error"] > TAU_EXACT)
               for row in best_report["layers"]}
    tried = []

    def key_of(f, c, d):
        return tuple(sorted(f.items())), tuple(sorted(c.items())), tuple(sorted(d.items()))

    seen = {key_of(factors, counts, dashes)}
    order = [name for name in net.populations if name in room]
    for _ in range(SEARCH_ROUNDS):
        improved = False
        trials = []
        for name in order:
            limit = room[name] if room[name] is not None else max(SCALE_FACTORS)
            candidates = sorted({f for f in SCALE_FACTORS if f <= limit} | {max(min(limit, max(SCALE_FACTORS)),
                                                                                 min(SCALE_FACTORS))}
                                | set(single_spike_factors(room[name])))
            trials += [(name, "scale_factor", f) for f in candidates]
            mem, syn = inexact.get(name, (False, False))
            trials += [(name, "dash_steps", (m, k)) for m in ((-1, 0, 1) if mem else (0,))
                       for k in ((-1, 0, 1) if syn else (0,))]
        for name in counts:
            trials += [(name, "count_scale", k) for k in COUNT_SCALES]
        for name, kind, value in trials:
            trial_factors = {**factors, name: value} if kind == "scale_factor" else factors
            trial_counts = {**counts, name: value} if kind == "count_scale" else counts
            trial_dashes = {**dashes, name: value} if kind == "dash_steps" else dashes
            if kind == "count_scale" and room[name] is not None and \
                    value * trial_factors[name] > room[name] * 1.0001:
                continue            # the raised threshold would not fit 16 bits
            key = key_of(trial_factors, trial_counts, trial_dashes)
            if key in seen:
                continue
            seen.add(key)
            score, rows, quantized, report = evaluate(trial_factors, trial_counts, trial_dashes)
            tried.append({"population": name, kind: list(value) if isinstance(value, tuple) else value,
                          "agreement": round(score, 6)})
            if score > best_score + 1e-9:
                best_score, best_rows, best_net, best_report = score, rows, quantized, report
                factors, counts, dashes, improved = trial_factors, trial_counts, trial_dashes, True
        if not improved:
            break
    quantized, report = best_net, best_report
    if bias_note:
        report["notes"].append(bias_note)
        quantized = quantized.with_(notes=(*quantized.notes, bias_note))
    report["calibration"] = cal.describe()
    report["search"] = {"objective": "per population the mean of its calibration agreement with the "
                                     "float model (nirc.fidelity.layer_agreement) and its count "
                                     "correlation, mean over populations, "
                                     f"{fidelity.OUTPUT_WEIGHT:.0%} of it on those read as outputs",
                        "agreement_unscaled": round(unscaled, 6),
                        "agreement": round(best_score, 6), "tried": tried}
    ctx.report["quantize"] = report
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
                                  MAX_READOUT_SPIKES if row["population"] in read_out else MAX_HIDDEN_SPIKES)}
        for row in report["layers"]]
    ctx.report["latency_steps"] = added_latency(net, quantized)
    return quantized


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
    if room is not None and row["scale_factor"] >= room * 0.999:
        parts.append("range: its thresholds are at the top of the 16-bit range; states beyond it saturate")
    elif room is not None and row["scale_factor"] >= room * 0.5 and chip_max_spikes > 1:
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
