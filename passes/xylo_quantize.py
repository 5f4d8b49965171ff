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

Scales are chosen for fidelity, on calibration input (``ctx.calibration``: the
user's samples, else nirc.fidelity.DEFAULT's seeded spikes): the float network
is run once, its largest |v| and |i| size a first state scale (so they fit 16
bits), then each population's scale is multiplied by the factor in
SCALE_FACTORS (up to the largest that keeps its thresholds in 16 bits; past
the weights' 8-bit range the largest weights clip, which can agree better
than a smaller threshold, and the report counts them) that maximises the network's agreement with the float run
(nirc.fidelity.score), one population after the other, twice over. Why it
matters: Xylo subtracts the threshold and fires up to 31 spikes per step, so a
threshold far below the 16-bit range lets a strongly driven neuron burst where
the float neuron fires once; a threshold near the top bounds the burst (the
state saturates) but clips negative states and large currents. Which costs
less depends on the network, so it is measured. ``ctx.report["quantize"]
["search"]`` lists the factors tried and the agreement each gave.
"""

from __future__ import annotations

import numpy as np

from nirc import fidelity, intref
from nirc.hwnet import HardwareNetwork
from nirc.passes.context import PassContext
from nirc.passes.quantize import added_latency

# Scale multipliers tried per population (powers of sqrt(2), and the largest allowed).
SCALE_FACTORS = tuple(2.0 ** (k / 2) for k in range(-4, 15))
SEARCH_ROUNDS = 2


def state_peaks(net: HardwareNetwork, run) -> dict[str, dict[str, np.ndarray]]:
    """Per population and neuron, the largest |v| and |i| of a recorded float run."""
    return {pop: {k: np.abs(trace).reshape(-1, net.populations[pop].size).max(axis=0)
                  for k, trace in states.items() if k in ("v", "i")}
            for pop, states in run.states.items() if pop in net.populations}


def calibration_of(net: HardwareNetwork, ctx: PassContext) -> fidelity.Calibration:
    return fidelity.calibration_of(net, ctx.calibration)


def xylo_quantize(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    from nirc.targets.xylo.backend import device_for, quantized_network, reference

    target = ctx.target or ctx.target_name or "xylo"
    device = device_for(target)
    cal = calibration_of(net, ctx)
    # The source model (the driver's reference run, under the file's convention), else the
    # float network (NIR semantics).
    float_run = cal.reference if cal.reference is not None else \
        intref.run(net, cal.inputs, batch=True, record=True)
    peaks = state_peaks(net, float_run)
    voltages = {o.source: float_run.outputs[k] for k, o in net.outputs.items() if o.quantity != "spikes"}

    read_out = [o.source for o in net.outputs.values()]

    def evaluate(factors):
        quantized, report = quantized_network(net, device, ctx.granularity, ctx.file,
                                              state_peaks=peaks, scale_factors=factors)
        latency = added_latency(net, quantized)
        chip = reference(quantized, cal.inputs, batch=True)
        rows = fidelity.compare(quantized, chip, float_run, latency, voltages)
        return fidelity.score(rows, read_out), rows, quantized, report

    factors = {name: 1.0 for name in net.populations}
    first = evaluate(factors)
    report = first[3]
    room = {row["population"]: row["max_scale_factor"] for row in report["layers"]}
    options = {}
    for name in (name for name in net.populations if name in room):
        limit = room[name] if room[name] is not None else max(SCALE_FACTORS)
        options[name] = {"scale_factor": [1.0, *sorted(
            {f for f in SCALE_FACTORS if f <= limit}
            | {max(min(limit, max(SCALE_FACTORS)), min(SCALE_FACTORS))})]}

    def scored(choice):
        trial = {**factors, **{n: c["scale_factor"] for n, c in choice.items()}}
        score, *result = first if trial == factors else evaluate(trial)
        return score, result

    _, best_score, (best_rows, best_net, best_report), unscaled, tried = fidelity.search(
        scored, options, SEARCH_ROUNDS)
    quantized, report = best_net, best_report
    report["calibration"] = cal.describe()
    report["search"] = {"objective": "calibration agreement with the float model (nirc.fidelity."
                                     "layer_agreement), mean over populations, "
                                     f"{fidelity.OUTPUT_WEIGHT:.0%} of it on those read as outputs",
                        "agreement_unscaled": round(unscaled, 6),
                        "agreement": round(best_score, 6), "tried": tried}
    ctx.report["quantize"] = report
    # The driver's report and nirc verify read one row per population under "quantization".
    ctx.report["quantization"] = [
        {"population": row["population"], "scale": row["scale"], "scale_factor": row["scale_factor"],
         "weight_rel_error": max([v for k, v in row.items() if k.endswith("_relative_rms_error")], default=0.0),
         "threshold_rel_error": row["threshold_relative_error"], "tau_mem_rel_error": row["tau_mem_relative_error"],
         "weights_zeroed": sum(v for k, v in row.items() if k.endswith("_zeroed")),
         "weights_clipped": sum(v for k, v in row.items() if k.endswith("_clipped")),
         "calibration": best_rows.get(row["population"]),
         "limited_by": limited_by(row, best_rows.get(row["population"]), room.get(row["population"]),
                                  {t.source: best_rows[t.source]["agreement"] for t in net.tables
                                   if t.target == row["population"] and t.source != row["population"]
                                   and t.source in best_rows})}
        for row in report["layers"]]
    ctx.report["latency_steps"] = added_latency(net, quantized)
    return quantized


def limited_by(row: dict, agreement: dict | None, room: float | None,
               sources: dict[str, float] | None = None) -> str:
    """What kept this population's calibration agreement from 1, in words (``sources``: the
    agreement of the populations feeding it)."""
    parts = []
    for source, value in sorted((sources or {}).items()):
        if value < 0.9:
            parts.append(f"inputs: population '{source}' feeding it agrees {value:.2f} with the float model")
    if agreement and agreement.get("burst_share", 0) > 0.05:
        parts.append(f"bursts: {100 * agreement['burst_share']:.0f}% of its spikes are a second or later "
                     f"spike in one step (Xylo subtracts the threshold and fires up to 31 per step; the "
                     f"float neuron fires once)")
    if room is not None and row["scale_factor"] >= room * 0.999:
        parts.append("range: its thresholds are at the top of the 16-bit range; states beyond it saturate")
    clipped = sum(v for k, v in row.items() if k.endswith("_clipped"))
    if clipped:
        parts.append(f"weights: {clipped} clipped at 8 bits under the 3-bit shift (a larger threshold "
                     f"agreed better than exact large weights)")
    if row.get("tau_mem_relative_error", 0) > 0.1:
        parts.append(f"{'also ' if parts else ''}time constants: Xylo's bit-shift decays are powers of "
                     f"two (tau_mem off by {100 * row['tau_mem_relative_error']:.0f}%)")
    if agreement and agreement.get("agreement", 1) < 0.999 and not parts:
        parts.append("rounding and saturation of 16-bit states and 8-bit weights (no single cause "
                     "above 5%)")
    return "; ".join(parts) if parts else "nothing measurable"
