"""A spiking output layer on Xylo's hidden neurons, counted through the readout's current.

Xylo's readout neurons fire at most one spike per step; its hidden neurons up to 31.
A model whose output layer fires several spikes per step (Rockpool's LIFTorch), or
whose output layer the chip reproduces better with the hidden neurons' bounded bursts
than with the readout's single spike, can keep that layer among the hidden neurons and
read its spike counts through a *relay*: one readout neuron per output neuron, fed by
it alone with the weight CHARGE, shortest synaptic current (dash_syn 1), no membrane
(dash_mem 0, so v = the current) and the largest threshold (it never fires). The
readout's synaptic current, which the chip reports each step (rockpool's Xylo
``Isyn`` output mode, xylosim's ``rec_i_syn_out``), is then

    i[t] = ceil((i[t-1] + CHARGE * n[t]) / 2)       (xylosim's decay, dash 1)

for the layer's n[t] spikes of the previous step, so the host recovers them exactly:
``n[t] = round((2 i[t] - i[t-1]) / CHARGE)`` (the floor's error is at most one unit,
CHARGE >= 3), while i stays below 2 * 31 * CHARGE, far from the 16-bit rail. The
counts arrive one step after the layer fired, as any table between neurons on Xylo.

Requires: a float hardware network. Guarantees: ``with_count_relay`` returns the
network with one relay population per spiking output population (a non-spiking
population named ``<layer>.count`` after every other, the output port reading it,
one identity table from the layer, listed after the network's own tables) and
``{relay: layer}``; ``decode_counts`` inverts the current as above.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from nirc.hwnet import HardwareNetwork, Population, SynapseTable

# Integer charge per relayed spike: i stays below 2 * 31 * 64 = 3968, and a step's count
# is decoded exactly (see the module docstring).
CHARGE = 64
PROVENANCE = "count_relay"
# Float parameters (the generic discrete neuron): a current halved each step (dash_syn 1),
# no membrane memory (dash_mem 0), never firing; quantize sets the integer values itself.
RELAY = {"i_decay": 0.5, "v_decay": 0.0, "v_direct": 0.0, "i_bias": 0.0, "v_bias": 0.0,
         "threshold": np.inf, "v_reset": 0.0}


def is_relay(pop: Population) -> bool:
    return len(pop.provenance) == 2 and pop.provenance[0] == PROVENANCE


def relayed(pop: Population) -> str:
    """The output layer a relay population counts."""
    return pop.provenance[1]


def with_count_relay(net: HardwareNetwork) -> tuple[HardwareNetwork, dict[str, str]]:
    """``net`` with each spiking output population read through a relay (module docstring),
    and {relay population: the output population it counts}; ({}: nothing to relay)."""
    layers = []
    for port in net.outputs.values():
        pop = net.populations.get(port.source)
        if pop is not None and pop.spiking and port.quantity == "spikes" and port.source not in layers:
            layers.append(port.source)
    if not layers:
        return net, {}
    populations, tables, relays = dict(net.populations), list(net.tables), {}
    for layer in layers:
        size = net.populations[layer].size
        name = f"{layer}.count"
        while name in populations or name in net.inputs:
            name += "_"
        populations[name] = Population(name=name, shape=net.populations[layer].shape, spiking=False,
                                       provenance=(PROVENANCE, layer),
                                       params={k: np.full(size, v) for k, v in RELAY.items()})
        tables.append(SynapseTable(source=layer, target=name, delay=0,
                                   weights=sp.csr_array(sp.identity(size, format="csr")),
                                   provenance=(PROVENANCE,)))
        relays[name] = layer
    relay_of = {layer: relay for relay, layer in relays.items()}
    outputs = {k: replace(o, source=relay_of[o.source]) if o.source in relay_of else o
               for k, o in net.outputs.items()}
    return net.with_(populations=populations, tables=tuple(tables), outputs=outputs), relays


def decode_counts(i_syn: np.ndarray, charge: int, axis: int = -2) -> np.ndarray:
    """The relayed layer's spikes per step from the relay's recorded current (time along
    ``axis``; the current is 0 before the first step): round((2 i[t] - i[t-1]) / charge)."""
    i = np.asarray(i_syn, np.int64)
    before = np.concatenate([np.zeros_like(np.take(i, [0], axis=axis)),
                             np.take(i, np.arange(i.shape[axis] - 1), axis=axis)], axis=axis)
    return np.rint((2 * i - before) / float(charge)).astype(np.int64)
