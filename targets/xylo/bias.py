"""Constant input currents on Xylo: synapses from one always-on hidden neuron.

A Linear layer's bias in front of a current-based neuron (snnTorch's Synaptic and
RSynaptic, Norse's LIF, NIR's CubaLIF after an Affine) is a constant *current*: the
float neuron adds it to its synaptic current every step, so its effect on v builds
up over both time constants (``i_bias`` of the generic discrete neuron). Xylo has
no current bias, only a bias added to v every step; putting ``i_bias / (1 -
i_decay)`` there gives the same steady state but reaches it one time constant
sooner, and on a 24-step digit that transient is most of the sample (snnTorch's
RSynaptic digits model: 60.7 % in float, 19.6 % with its biases moved to v).

Xylo can carry the current exactly as synapses: one hidden neuron with no inputs,
no memory (dash_mem 0) and bias above its threshold fires once in every step; its
recurrent (or readout) weight into each neuron is that neuron's ``i_bias``. The
readout receives it as it receives the hidden layer, one step later, so relative
to its own latency it is exact; hidden neurons get it one step late (from step 1,
not step 0), which the report says.

Requires: a float hardware network (generic discrete neurons). Guarantees:
``with_bias_source`` returns the same network plus, when some current-based
population has a non-zero ``i_bias``, one population ``always_on`` (float
parameters that fire once per step in the float model and on Xylo) placed after
every other population, its tables (delay 0, listed after the network's own) and
those populations' ``i_bias`` set to zero; else the network unchanged.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nirc.hwnet import HardwareNetwork, Population, SynapseTable

# Float always-on neuron: no decay, bias 1 above threshold 3/4. On Xylo (dash_mem 0: v is
# cleared before the bias is added) v = bias >= threshold fires once and leaves
# bias - threshold < threshold, so exactly one spike per step at any state scale.
ALWAYS_ON = {"i_decay": 0.0, "v_decay": 0.0, "v_direct": 0.0, "i_bias": 0.0, "v_bias": 1.0,
             "threshold": 0.75, "v_reset": 0.0}
PROVENANCE = "always_on"


def current_biased(net: HardwareNetwork) -> list[str]:
    """Populations with a synaptic current (i_decay > 0) and a non-zero constant current."""
    out = []
    for name, pop in net.populations.items():
        bias = np.broadcast_to(np.asarray(pop.params.get("i_bias", 0.0), np.float64), (pop.size,))
        decay = np.broadcast_to(np.asarray(pop.params.get("i_decay", 0.0), np.float64), (pop.size,))
        if np.any((bias != 0) & (decay > 0)):
            out.append(name)
    return out


def is_bias_source(pop: Population) -> bool:
    return tuple(pop.provenance) == (PROVENANCE,)


def with_bias_source(net: HardwareNetwork) -> HardwareNetwork:
    """``net`` with the constant currents of current-based populations as synapses from one
    always-on neuron (see the module docstring); ``net`` itself when there are none."""
    targets = current_biased(net)
    if not targets:
        return net
    name = net.free_name("always_on")
    source = Population(name=name, shape=(1,), spiking=True, provenance=(PROVENANCE,),
                        params={k: np.full(1, v) for k, v in ALWAYS_ON.items()})
    populations, tables = {}, []
    for pop_name, pop in net.populations.items():
        if pop_name not in targets:
            populations[pop_name] = pop
            continue
        bias = np.broadcast_to(np.asarray(pop.params["i_bias"], np.float64), (pop.size,)).copy()
        decay = np.broadcast_to(np.asarray(pop.params["i_decay"], np.float64), (pop.size,))
        moved = np.where(decay > 0, bias, 0.0)
        populations[pop_name] = pop.with_(params={**pop.params, "i_bias": bias - moved})
        tables.append(SynapseTable(source=name, target=pop_name, delay=0,
                                   weights=sp.csr_array(moved.reshape(-1, 1)),
                                   provenance=(PROVENANCE,)))
    populations[name] = source
    return net.with_(populations=populations, tables=(*net.tables, *tables))
