"""speck_quantize: float Speck hardware network -> 8-bit weights/biases, 16-bit thresholds.

Requires: the output of speck_lower (neuron_model "speck_iaf", float); for the fidelity
rule, ctx.calibration with the driver's run of the model as trained (without one the pass
keeps sinabs' rule and says why).
Guarantees: the same network with integer weights in [-128, 127], biases in the
8-bit range, thresholds and low thresholds (membrane floor: -2^15 by default,
outside the scale; -threshold under sinabs' convention) in 16 bits, one scale
per layer; ``ctx.report["quantization"]`` gets one error row per layer (keyed
"population", as the core quantize pass writes them) and
``ctx.report["speck_quantize"]`` the rule used and the search's trials; under the
fidelity rule also ``agreement_chip_rule_float``, the agreement of the chip's firing rule
run on the float network (no integers, chip_rule_in_float), and per layer
``calibration_chip_rule_float``: the loss that is the rule's, not the rounding's (a
threshold factor may offset part of it: examples/cnn.nir, 0.72 -> 0.92).

Two rules (the target's ``backend_options.quantization``, or the per-compile
option ``speck_quantization``):

- ``sinabs``: sinabs' discretize rule, integer for integer (the vendor's own
  reference; tests/test_speck_vs_sinabs.py).
- ``fidelity`` (default): start from sinabs' integers, then search per layer a
  threshold factor (THRESHOLD_FACTORS, within the 16-bit range) and a scale
  factor (SCALE_FACTORS; past 8 bits the largest weights clip) that maximise
  the network's agreement with the model as trained on the calibration input
  (``ctx.calibration``: the user's samples, else nirc.fidelity.DEFAULT's seeded
  spikes; nirc.fidelity.score of the Xylo search's objective_rows, count agreement
  and count correlation together, each candidate run by the Speck emulator).
  Why: the chip fires at most one spike per input event and tests the
  threshold after every event, where the trained model (e.g. Sinabs'
  MultiSpike) sums a step's input first; a threshold a little off the trained
  one can offset the early and lost spikes that follow. The network keeps
  sinabs' integers unless the search beats them by more than MIN_GAIN of
  calibration agreement, so the emitted config equals sinabs' whenever
  deviating does not measurably pay; the report says which rule each layer got.
"""

from __future__ import annotations

from nirc import fidelity
from nirc.hwnet import HardwareNetwork
from nirc.passes.context import PassContext

RULES = ("fidelity", "sinabs")
# Threshold factors tried per layer, coarse (quarter octaves, 0.71x to 2x) then fine
# (1/32 octave steps around the coarse choice); scale factors (weights clip past 8 bits).
THRESHOLD_FACTORS = tuple(2.0 ** (k / 4) for k in (-2, -1, 1, 2, 3, 4))
FINE_STEPS = tuple(2.0 ** (k / 32) for k in (-2, -1, 1, 2))
SCALE_FACTORS = (2.0 ** 0.5, 2.0)
SEARCH_ROUNDS = 1     # per stage; each pass over the layers costs one run per candidate
MIN_GAIN = 0.005      # calibration agreement a deviation from sinabs' integers must add


def speck_quantize(hw: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    from nirc.errors import NircError
    from nirc.targets.speck.chip import chip_for
    from nirc.targets.speck.network import from_hwnet, to_hwnet
    from nirc.targets.speck.quantize import quantize_network

    chip = chip_for(ctx)
    rule = ctx.options.get("speck_quantization", chip.quantization)
    if rule not in RULES:
        raise NircError(f"speck_quantization must be one of {', '.join(RULES)}, got {rule!r}",
                        field="speck_quantization")
    net = from_hwnet(hw)
    sinabs_rule = ("sinabs discretize: one scale per layer (min over 8-bit weights, 8-bit "
                   "biases, 16-bit thresholds), round half to even, no clipping")
    cal = ctx.calibration
    unmeasured = None
    if not isinstance(cal, fidelity.Calibration) or cal.reference is None:
        unmeasured = "no run of the model as trained to compare with (the pass ran outside " \
                     "nirc's driver)"
    elif len(net.layers) > len(chip.cores):
        unmeasured = f"{len(net.layers)} layers cannot run on {len(chip.cores)} cores"
    if rule == "sinabs" or unmeasured:
        quantized, rows = quantize_network(net, chip.weight_bits, chip.state_bits)
        ctx.report["quantization"] = [{"population": row.pop("layer"), **row} for row in rows]
        ctx.report["speck_quantize"] = {"rule": sinabs_rule, "equals_sinabs": True}
        if rule != "sinabs":
            ctx.report["speck_quantize"]["kept_sinabs_because"] = unmeasured
        return to_hwnet(quantized)

    search, best_found = fidelity_search(hw, ctx, chip)
    quantized, rows, by_layer = search.result
    rule_score, by_layer_rule = chip_rule_in_float(hw, cal)
    report_rows = []
    for row in rows:
        name = row.pop("layer")
        factors = search.factors[name]
        row.setdefault("scale_factor", factors.get("scale", 1.0))
        row.setdefault("threshold_factor", factors.get("threshold", 1.0))
        row["rule"] = "sinabs" if factors == {"scale": 1.0, "threshold": 1.0} else \
            "fidelity search"
        row["calibration"] = by_layer.get(name)
        row["calibration_chip_rule_float"] = by_layer_rule.get(name)
        row["limited_by"] = _limited_by(row, by_layer.get(name), by_layer_rule.get(name))
        report_rows.append({"population": name, **row})
    ctx.report["quantization"] = report_rows
    deviates = any(r["rule"] != "sinabs" for r in report_rows)
    ctx.report["speck_quantize"] = {
        "rule": ("fidelity search from sinabs' integers: per layer a threshold factor and a "
                 "scale factor maximising calibration agreement with the model as trained"),
        "equals_sinabs": not deviates,
        "calibration": cal.describe(),
        "agreement_sinabs": round(search.baseline, 6), "agreement": round(search.score, 6),
        "min_gain": MIN_GAIN,
        "agreement_best_found": round(best_found, 6),
        # The chip's firing rule alone, on the model's own weights and thresholds: the loss
        # that is the rule's; the search's thresholds may offset part of it.
        "agreement_chip_rule_float": round(rule_score, 6),
        "kept_sinabs_because": None if deviates else
        (f"no factor beat sinabs' integers by more than {MIN_GAIN} calibration agreement "
         f"(best found {best_found:.4f} against {search.baseline:.4f})"),
        "tried": search.tried}
    return to_hwnet(quantized)


def fidelity_search(hw: HardwareNetwork, ctx: PassContext, chip):
    """(nirc.fidelity.Search over per-layer factors, the best agreement it found); the
    search's result is (quantized SpeckNetwork, report rows, per-layer calibration
    agreement). Its factors are all 1 (sinabs' integers) unless the best found beats them
    by more than MIN_GAIN."""
    from nirc.passes.xylo_quantize import objective_rows
    from nirc.targets.speck.network import from_hwnet, to_hwnet
    from nirc.targets.speck.quantize import layer_scale, quantize_network, threshold_room

    net = from_hwnet(hw)
    cal = ctx.calibration
    float_run = cal.reference
    read_out = [o.source for o in hw.outputs.values()]

    def evaluate(factors):
        quantized, rows = quantize_network(net, chip.weight_bits, chip.state_bits, factors)
        qhw = to_hwnet(quantized, unrolled=False)     # the emulator reads only kernels
        run = emulate(qhw, chip, cal.inputs)
        measured = fidelity.compare(qhw, run, float_run)
        return fidelity.score(objective_rows(measured), read_out), (quantized, rows, measured)

    candidates, rooms = {}, {}
    for layer in net.layers:
        s = float(layer_scale(layer, chip.weight_bits, chip.state_bits))
        rooms[layer.name] = room = threshold_room(layer, s, chip.state_bits)
        # Scale and threshold factors multiply; each alone must leave the other some room.
        candidates[layer.name] = {
            "threshold": [f for f in THRESHOLD_FACTORS if f <= room / max(SCALE_FACTORS)],
            "scale": [f for f in SCALE_FACTORS if f <= room / max(THRESHOLD_FACTORS)]}
    coarse = fidelity.search_factors(evaluate, candidates, SEARCH_ROUNDS)
    fine = {name: {"threshold": [coarse.factors[name]["threshold"] * f for f in FINE_STEPS
                                 if coarse.factors[name]["threshold"] * f
                                 * coarse.factors[name]["scale"] <= rooms[name]]}
            for name in candidates}
    search = fidelity.search_factors(evaluate, fine, SEARCH_ROUNDS, start=coarse)
    best_found = search.score
    if best_found - search.baseline <= MIN_GAIN:
        # Not worth departing from the vendor's integers: keep sinabs'.
        unchanged = {name: {"threshold": 1.0, "scale": 1.0} for name in candidates}
        search = fidelity.Search(unchanged, search.baseline, search.baseline_result,
                                 search.baseline, search.baseline_result, search.tried)
    return search, best_found


def chip_rule_in_float(hw: HardwareNetwork, cal) -> tuple[float, dict]:
    """(score, per-layer agreement) of the float network run by the chip's rule at infinite
    precision (nirc.targets.speck.network.run_chip_rule_float) against the model as trained,
    on the calibration input, with the search's objective: the part of the agreement that
    the firing rule costs, apart from the integers."""
    from nirc.passes.xylo_quantize import objective_rows
    from nirc.targets.speck.backend import run_batched
    from nirc.targets.speck.network import run_chip_rule_float

    shapes = {name: pop.shape for name, pop in hw.populations.items()}
    run = run_batched(lambda one: run_chip_rule_float(hw, one), cal.inputs, True, shapes,
                      record=False)
    measured = fidelity.compare(hw, run, cal.reference)
    read_out = [o.source for o in hw.outputs.values()]
    return fidelity.score(objective_rows(measured), read_out), measured


def _limited_by(row: dict, agreement: dict | None, rule_alone: dict | None = None) -> str:
    """What kept one layer's calibration agreement from 1, in words; ``rule_alone``: the
    layer's agreement when the chip's rule runs the float network (chip_rule_in_float)."""
    parts = []
    if row.get("weights_clipped"):
        parts.append(f"weights: {row['weights_clipped']} clipped at 8 bits (a larger scale "
                     f"agreed better than exact large weights)")
    if row.get("weights_zeroed"):
        parts.append(f"weights: {row['weights_zeroed']} round to zero at 8 bits")
    if agreement and agreement.get("burst_share", 0) > 0.05:
        parts.append(f"firing rules: {100 * agreement['burst_share']:.0f}% of its spikes are a "
                     f"second or later spike in one step (one per input event on the chip)")
    # The rule's share is named beside zeroed weights when the float run shows it costs.
    rule_costs = bool(rule_alone) and rule_alone.get("agreement", 1) < 0.999
    if agreement and agreement.get("agreement", 1) < 0.999 and (
            not parts or rule_costs and not any(p.startswith("firing") for p in parts)):
        if _weights_below_threshold(row):
            # No event can carry a neuron past two thresholds: the one-spike-per-event limit
            # never binds, so what remains is the order of a step's inputs (docs/fidelity.md).
            parts.append("firing rules: every weight is below the threshold, so the chip's "
                         "test after each input event owes no second spike, but it fires on "
                         "rises within a step that the step's later negative inputs cancel in "
                         "the model (the order of events, not the integers)")
            if rule_alone and rule_alone.get("agreement") is not None:
                parts[-1] += (f"; the chip's rule on the float weights agrees "
                              f"{rule_alone['agreement']:.3f}, the integers "
                              f"{agreement['agreement']:.3f}")
        else:
            parts.append("firing rules: the chip tests the threshold after every input event "
                         "(at most one spike per event), the trained model once per step")
    return "; ".join(parts) if parts else "nothing measurable"


def _weights_below_threshold(row: dict) -> bool:
    """Whether every positive integer weight (and bias) of the layer is below its threshold,
    so one event never lifts a neuron from below the threshold past it twice."""
    largest = max(row.get("weight_range", (0, 0))[1], row.get("bias_range", (0, 0))[1])
    return row.get("threshold_high") is not None and largest < row["threshold_high"]


def emulate(qhw: HardwareNetwork, chip, inputs):
    """The chip's run of a quantized network on batched inputs (nirc.intref.RunResult): its
    config emitted with one core per layer in network order and run by the Speck emulator,
    whose compiled event engine is many times faster than the integer reference (they are
    equal bit for bit, tests/test_speck_emulator.py)."""
    from nirc.targets.speck.assign import CoreAssignment
    from nirc.targets.speck.backend import SpeckBuild
    from nirc.targets.speck.config import build_config
    from nirc.targets.speck.emulate import SpeckEmulator

    cores = CoreAssignment(core_of={name: i for i, name in enumerate(qhw.populations)},
                           utilisation={}, objective=0, optimal=True)
    build = SpeckBuild(SpeckEmulator(build_config(qhw, cores, chip)))
    return build.run(inputs, batch=True)
