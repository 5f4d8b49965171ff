"""split_signs: each mixed-sign table becomes an excitatory and an inhibitory table.

Loihi stores a mixed-sign table's weights as even values in [-256, 254] (Lava's
mixed sign mode spends a bit on the sign: 7 bits of magnitude), a one-signed
table as [0, 255] or [-255, 0] (8 bits). Splitting a table by the sign of its
weights, before quantization, gives each half its own full-precision mantissas
and its own exponent, for the same synapse count and memory: the weight
rounding error halves, which is what keeps deep and merging layers spiking
when the float model spikes. Each half is shifted by its own weight_exp, so
the two floor shifts replace one (at most one unit of a_in more per step).

Requires: an unrolled float hardware network (every table has weights),
before quantize.
Guarantees: the same network with every table holding weights of one sign;
a mixed table is replaced in place by its positive then its negative half
(same source, target, delay, provenance); ``ctx.report["split_signs"]``
lists the tables split.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nirc.hwnet import HardwareNetwork
from nirc.passes.context import PassContext


def split_signs(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    tables, split = [], []
    for k, t in enumerate(net.tables):
        w = sp.csr_array(t.weights)
        if w.nnz == 0 or w.data.min() >= 0 or w.data.max() <= 0:
            tables.append(t)
            continue
        halves = []
        for keep in (w.data > 0, w.data < 0):
            half = w.copy()
            half.data = np.where(keep, w.data, 0.0)
            half.eliminate_zeros()
            halves.append(t.with_(weights=half))
        tables.extend(halves)
        split.append({"table": k, "source": t.source, "target": t.target,
                      "nodes": list(t.provenance), "excitatory": int(halves[0].nnz),
                      "inhibitory": int(halves[1].nnz)})
    ctx.report["split_signs"] = split
    return net.with_(tables=tuple(tables))
