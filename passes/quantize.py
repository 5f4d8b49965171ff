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
per population with the error introduced and what was not exact.
"""

from __future__ import annotations

from nirc.hwnet import HardwareNetwork
from nirc.passes.context import PassContext


def quantize(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    """Quantize every population together with the tables into it."""
    model = ctx.model
    new_tables: dict[int, object] = {}
    populations = {}
    rows = []
    for name, pop in net.populations.items():
        index = [k for k, t in enumerate(net.tables) if t.target == name]
        new_pop, tables, row = model.quantize(pop, [net.tables[k] for k in index],
                                              ctx.formats, ctx.granularity)
        populations[name] = new_pop
        new_tables.update(zip(index, tables))
        rows.append(row)
    ctx.report["quantization"] = rows
    return net.with_(neuron_model=model.name, populations=populations,
                     tables=tuple(new_tables[k] for k in range(len(net.tables))),
                     quantized=True)
