"""xylo_quantize: a float hardware network -> Xylo's fixed fabric in integer xylo_lif units.

Requires: the output of unroll (float generic discrete neurons, float weight
tables) and a Xylo-class target (ctx.target_name or ctx.target).
Guarantees: the same populations and tables with per-neuron dash_mem,
dash_syn, dash_syn_2, threshold and bias (16-bit), 8-bit weights with the
matrix's global shift in ``kernel["weight_shift"]``, delays as Xylo has them
(0 from inputs, 1 between neurons); or a FitError naming the fabric limit the
network exceeds. ``ctx.report["quantize"]`` gets the scaling and per-layer
errors (see nirc.targets.xylo.quantize).
"""

from __future__ import annotations

from nirc.hwnet import HardwareNetwork
from nirc.passes.context import PassContext


def xylo_quantize(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    from nirc.targets.xylo.backend import device_for, quantized_network

    target = getattr(ctx, "target", None) or ctx.target_name or "xylo"
    quantized, report = quantized_network(net, device_for(target), ctx.granularity, ctx.file)
    ctx.report["quantize"] = report
    return quantized
