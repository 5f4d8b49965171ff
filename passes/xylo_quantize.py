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
neurons gain one step each, as in quantize). The state scale is sized by a float
run of the network on seeded random input (CALIBRATION), so the states that
run reaches fit Xylo's 16 bits.
"""

from __future__ import annotations

import numpy as np

from nirc.hwnet import HardwareNetwork
from nirc.passes.context import PassContext
from nirc.passes.quantize import added_latency

# Calibration input: Bernoulli spikes (the driver's calibration rate), seeded.
CALIBRATION = {"steps": 100, "samples": 4, "rate": 0.2, "seed": 0}


def float_state_peaks(net: HardwareNetwork) -> dict[str, dict[str, np.ndarray]]:
    """Per population and neuron, the largest |v| and |i| of the float network on calibration input."""
    from nirc import intref

    rng = np.random.default_rng(CALIBRATION["seed"])
    inputs = {name: (rng.random((CALIBRATION["steps"], CALIBRATION["samples"], *port.shape))
                     < CALIBRATION["rate"]).astype(np.float64) for name, port in net.inputs.items()}
    run = intref.run(net, inputs, batch=True, record=True)
    return {pop: {k: np.abs(trace).reshape(-1, net.populations[pop].size).max(axis=0) for k, trace in states.items()}
            for pop, states in run.states.items()}


def xylo_quantize(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    from nirc.targets.xylo.backend import device_for, quantized_network

    target = ctx.target or ctx.target_name or "xylo"
    quantized, report = quantized_network(net, device_for(target), ctx.granularity, ctx.file,
                                          state_peaks=float_state_peaks(net))
    report["calibration"] = dict(CALIBRATION)
    ctx.report["quantize"] = report
    # The driver's report and nirc verify read one row per population under "quantization".
    ctx.report["quantization"] = [
        {"population": row["population"], "scale": row["scale"],
         "weight_rel_error": max([v for k, v in row.items() if k.endswith("_relative_rms_error")], default=0.0),
         "threshold_rel_error": row["threshold_relative_error"], "tau_mem_rel_error": row["tau_mem_relative_error"]}
        for row in report["layers"]]
    ctx.report["latency_steps"] = added_latency(net, quantized)
    return quantized
