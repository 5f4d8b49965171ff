"""The generic discrete neuron in float arithmetic: what the passes produce before quantization.

Every NIR neuron node (LIF, CubaLIF, LI, CubaLI, IF, I, Threshold) discretised
at ``dt`` becomes this one form, per neuron, with float parameters

    a = (sum of table inputs) + i_bias
    i = i_decay * i + a
    v = v_decay * v + i + v_direct * a + v_bias
    z = v > threshold            (threshold = +inf for non-spiking neurons)
    v = v_reset where z

Tables carry float weights already multiplied by the input gain (r, w_in,
dt/tau) and deliver ``W @ x`` (graded inputs allowed). A neuron without a
synaptic current has i_decay = 0 (its current is this step's input); v_direct is non-zero only for
current-based neurons discretised exactly (the part of this step's input
that reaches v other than through the current). Each
hardware neuron model's ``quantize`` starts from these parameters.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nirc.neuron_models.base import NeuronModel

FLOAT_PARAMS = ("i_decay", "v_decay", "v_direct", "i_bias", "v_bias", "threshold", "v_reset")


class FloatReference(NeuronModel):
    """The generic discrete neuron in float64 (runs the hardware network before quantization)."""

    name = "float"
    param_names = FLOAT_PARAMS
    state_names = ("i", "v")
    table_fields = ()
    readout_state = "v"
    min_delay = 0
    dtype = np.float64

    def init_state(self, params, batch):
        size = np.shape(params["threshold"])[0]
        return {"i": np.zeros((batch, size)), "v": np.zeros((batch, size))}

    def prepare_weights(self, table):
        return sp.csr_array(table.weights, dtype=np.float64)

    def accumulate(self, weights, attrs, spikes):
        x = np.asarray(spikes, dtype=np.float64)
        return np.asarray((weights @ x.T).T)

    def step(self, params, state, a_in):
        a = a_in + params["i_bias"]
        i = params["i_decay"] * state["i"] + a
        v = params["v_decay"] * state["v"] + i + params["v_direct"] * a + params["v_bias"]
        spikes = v > params["threshold"]
        state["i"] = i
        state["v"] = np.where(spikes, params["v_reset"], v)
        return spikes

    def quantize(self, pop, tables, formats, granularity):
        return pop, list(tables), {"population": pop.name, "nodes": list(pop.provenance),
                                   "notes": ["float model: nothing quantized"]}


MODEL = FloatReference()
