"""speck_quantize: float Speck hardware network -> 8-bit weights/biases, 16-bit thresholds.

Requires: the output of speck_lower (neuron_model "speck_iaf", float).
Guarantees: the same network with integer weights in [-128, 127], biases in the
8-bit range, thresholds and low thresholds (membrane floor: -2^15 by default,
outside the scale; -threshold under sinabs' convention) in 16 bits, one scale
per layer chosen by sinabs' discretize rule; ``ctx.report["quantization"]`` gets one error row per layer
(keyed "population", as the core quantize pass writes them).
"""

from __future__ import annotations

from nirc.hwnet import HardwareNetwork
from nirc.passes.context import PassContext


def speck_quantize(hw: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    from nirc.targets.speck.chip import chip_for
    from nirc.targets.speck.network import from_hwnet, to_hwnet
    from nirc.targets.speck.quantize import quantize_network

    chip = chip_for(ctx)
    net, rows = quantize_network(from_hwnet(hw), chip.weight_bits, chip.state_bits)
    ctx.report["quantization"] = [{"population": row.pop("layer"), **row} for row in rows]
    ctx.report["speck_quantize"] = {"rule": "sinabs discretize: one scale per layer "
                                            "(min over 8-bit weights, 8-bit biases, 16-bit "
                                            "thresholds), round half to even, no clipping"}
    return to_hwnet(net)
