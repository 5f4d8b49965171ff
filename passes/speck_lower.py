"""speck_lower: a NIR graph -> Speck layers as a float hardware network (one layer per core).

Requires: a normalized NIR graph (flat, validated) and a Speck-family target.
Guarantees: a HardwareNetwork with neuron_model "speck_iaf" (float values), one
population per Conv2d/Linear + IF/LIF layer and one table per (source, layer)
edge whose ``kernel`` holds the conv geometry and destination pooling; or a
TargetError naming the node Speck cannot run and why. The reset is the
chip's native subtraction when the model was trained with it (ctx.convention),
else the target's choice. The rules live in
nirc.targets.speck.lower; this pass only wires them into the pass pipeline.
"""

from __future__ import annotations

from nirc.hwnet import HardwareNetwork
from nirc.ir.nodes import NIRGraph
from nirc.passes.context import PassContext


def speck_lower(graph: NIRGraph, ctx: PassContext) -> HardwareNetwork:
    from nirc.targets.speck.chip import chip_for
    from nirc.targets.speck.lower import lower_to_speck
    from nirc.targets.speck.network import to_hwnet

    chip = chip_for(ctx)
    # The target's backend_options.neuron.{reset_mode,low_threshold}, unless the caller
    # overrides them; the reset follows the model's when it was trained with the chip's
    # native subtraction (Sinabs' default MembraneSubtract, snnTorch's default).
    convention = ctx.convention
    native = "subtract" if convention is not None and convention.reset == "subtract" else None
    reset = ctx.options.get("speck_reset", native or chip.reset_mode)
    low_threshold = ctx.options.get("speck_low_threshold", chip.low_threshold)
    net = lower_to_speck(graph, chip, dt=ctx.dt, method=ctx.method, reset=reset,
                         low_threshold=low_threshold, convention=ctx.convention)
    ctx.report["speck_lower"] = {
        "layers": [{"layer": l.name, "nodes": list(l.provenance),
                    "input_shape": list(l.input_shape), "output_shape": list(l.output_shape),
                    "kernel": l.kernel, "stride": list(l.stride), "padding": list(l.padding),
                    "sources": [{"source": s.name, "pooling": s.pooling} for s in l.sources],
                    "reset": "to_zero" if l.return_to_zero else "subtract",
                    "low_threshold": low_threshold}
                   for l in net.layers],
        "reset_chosen_by": ("option" if "speck_reset" in ctx.options else
                            "the model's convention (subtract, the chip's native rule)" if native
                            else "the target (backend_options.neuron.reset_mode)")}
    return to_hwnet(net)
