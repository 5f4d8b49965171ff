"""A spiking output layer on Xylo's hidden neurons, counted through the readout's current.

Xylo's readout neurons fire at most one spike per step; its hidden neurons up to 31.
A model whose output layer fires several spikes per step (Rockpool's LIFTorch), or one
with more outputs than the chip has readout neurons, can keep that layer among the
hidden neurons and read its spike counts through *relays*: readout neurons fed by the
layer alone, with the shortest synaptic current (dash_syn 1), no membrane (dash_mem 0,
so v = the current) and the largest threshold (they never fire). A relay's synaptic
current, which the chip reports each step (rockpool's Xylo ``Isyn`` output mode,
xylosim's ``rec_i_syn_out``), is then

    i[t] = ceil((i[t-1] + sum_k c_k * n_k[t]) / 2)      (xylosim's decay, dash 1)

for the n_k[t] spikes its output neurons fired in the previous step, each arriving
with its charge c_k, so y = 2 i[t] - i[t-1] is sum_k c_k n_k[t] up to one unit (the
floor). One output neuron per relay (charge CHARGE = 64): n = round(y / 64). Two per
relay (charges PACKED = 4 and 128, so 31 spikes of the first stay below one of the
second): n_2 = floor((y + 1) / 128), n_1 = round((y - 128 n_2) / 4). Both are exact
for up to 31 spikes per step, Xylo's hidden limit, and the current stays below
2 * 31 * 132 = 8184, far from the 16-bit rail. Counts arrive one step after the layer
fired, as any table between neurons on Xylo.

Requires: a float hardware network. Guarantees: ``with_count_relay`` returns the
network with one relay population per spiking output population (non-spiking, named
``<layer>.count``, after every other, read by the output port, fed by one table from
the layer listed after the network's own, provenance (PROVENANCE, layer, pack)) and
``{relay: layer}``; ``decode_counts`` inverts the current as above.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from nirc.hwnet import HardwareNetwork, Population, SynapseTable

CHARGE = 64                 # integer charge per spike, one output neuron per relay
PACKED = (4, 128)           # charges of the two output neurons sharing a relay
PACKED_SHIFT = 2            # the readout weight shift that writes PACKED as 1 and 32
PROVENANCE = "count_relay"
# Float parameters (the generic discrete neuron): a current halved each step (dash_syn 1),
# no membrane memory (dash_mem 0), never firing; quantize sets the integer values itself.
RELAY = {"i_decay": 0.5, "v_decay": 0.0, "v_direct": 0.0, "i_bias": 0.0, "v_bias": 0.0,
         "threshold": np.inf, "v_reset": 0.0}


def is_relay(pop: Population) -> bool:
    return len(pop.provenance) >= 2 and pop.provenance[0] == PROVENANCE


def relayed(pop: Population) -> str:
    """The output layer a relay population counts."""
    return pop.provenance[1]


def packing(pop: Population) -> int:
    """Output neurons per relay neuron (1 or 2)."""
    return int(pop.provenance[2]) if len(pop.provenance) > 2 else 1


def with_count_relay(net: HardwareNetwork, pack: int = 1) -> tuple[HardwareNetwork, dict[str, str]]:
    """``net`` with each spiking output population read through relays, ``pack`` (1 or 2)
    output neurons per relay neuron (module docstring), and {relay population: the output
    population it counts}; (net, {}) when there is nothing to relay, or with ``pack`` 2
    when some output is not a spiking population (the readout's one weight shift then
    serves the relays alone)."""
    layers, others = [], False
    for port in net.outputs.values():
        pop = net.populations.get(port.source)
        if pop is not None and pop.spiking and port.quantity == "spikes":
            if port.source not in layers:
                layers.append(port.source)
        else:
            others = True
    if not layers or (pack > 1 and others):
        return net, {}
    populations, tables, relays = dict(net.populations), list(net.tables), {}
    for layer in layers:
        size = net.populations[layer].size
        name = f"{layer}.count"
        while name in populations or name in net.inputs:
            name += "_"
        n = -(-size // pack)
        populations[name] = Population(name=name, shape=(n,), spiking=False,
                                       provenance=(PROVENANCE, layer, str(pack)),
                                       params={k: np.full(n, v) for k, v in RELAY.items()})
        j = np.arange(size)
        # Relative charges (quantize writes them as integers): 1, or 1 and 32 when packed.
        weight = np.ones(size) if pack == 1 else np.asarray(PACKED)[j % pack] / PACKED[0]
        tables.append(SynapseTable(source=layer, target=name, delay=0,
                                   weights=sp.csr_array((weight, (j // pack, j)), shape=(n, size)),
                                   provenance=(PROVENANCE,)))
        relays[name] = layer
    relay_of = {layer: relay for relay, layer in relays.items()}
    outputs = {k: replace(o, source=relay_of[o.source], shape=tuple(o.shape) or
                          net.populations[o.source].shape) if o.source in relay_of else o
               for k, o in net.outputs.items()}
    return net.with_(populations=populations, tables=tuple(tables), outputs=outputs), relays


def decode_counts(i_syn: np.ndarray, charges) -> np.ndarray:
    """The relayed layer's spikes per step from the relays' recorded current (..., T, relays),
    0 before the first step: (..., T, relays * len(charges)), output neuron r * pack + k from
    relay r's charge k (module docstring)."""
    i = np.asarray(i_syn, np.int64)
    before = np.concatenate([np.zeros_like(i[..., :1, :]), i[..., :-1, :]], axis=-2)
    y = 2 * i - before
    charges = [int(c) for c in charges]
    if len(charges) == 1:
        return np.rint(y / charges[0]).astype(np.int64)
    small, large = charges
    high = np.floor_divide(y + 1, large)
    low = np.rint((y - large * high) / small).astype(np.int64)
    return np.stack([low, high], axis=-1).reshape(*y.shape[:-1], -1)
