"""A constant input current into a neuron with a synaptic current ramps up on Loihi as in the float model.

An Affine bias into a CubaLIF is a constant input to the synaptic current:
the float current rises over tau_syn. Loihi's own bias adds to v, so lowering
it there (at the current's steady state) makes the neuron fire early and often
while the float current is still ramping. The quantize pass instead feeds it
from an always-on neuron through synapses into u, so the chip follows the ramp.
"""

from __future__ import annotations

import numpy as np
import pytest

from nirc import intref
from nirc.driver import compile as compile_model
from nirc.emulator import Chip
from nirc.hwnet import SynapseTable
from nirc.ir.nodes import Affine, CubaLIF, Input, LIF, NIRGraph, Output
from nirc.neuron_models import loihi_cuba_lif as L
from nirc.simulate import simulate

STEPS = 40
BIASES = np.array([0.05, 0.1, 0.2, 0.4, 0.8, -0.3])


def biased(neuron: str = "cuba") -> NIRGraph:
    """Input (silent) -> Affine (zero weights, constant bias) -> CubaLIF or LIF -> Output."""
    n = BIASES.size
    ones = np.ones(n)
    tau_syn, tau_mem = 10e-3, 20e-3
    if neuron == "cuba":
        cell = CubaLIF(tau_syn=ones * tau_syn, tau_mem=ones * tau_mem, r=ones * (tau_mem / 1e-3),
                       v_leak=np.zeros(n), v_threshold=ones, v_reset=np.zeros(n), w_in=ones)
    else:
        cell = LIF(tau=ones * tau_mem, r=ones * (tau_mem / 1e-3), v_leak=np.zeros(n),
                   v_threshold=ones, v_reset=np.zeros(n))
    nodes = {"input": Input(shape=np.array([2])),
             "fc": Affine(weight=np.zeros((n, 2)), bias=BIASES.copy()),
             "lif": cell, "output": Output(shape=np.array([n]))}
    order = list(nodes)
    return NIRGraph(nodes=nodes, edges=tuple(zip(order, order[1:])))


def as_voltage_bias(net):
    """The same integer network with the constant current moved into v at its steady state
    (the lowering this replaced): the always-on tables' per-step input, divided by u's loss."""
    source = next(name for name, p in net.populations.items() if p.provenance == ("always_on",))
    pop = net.populations["lif"]
    model = L.MODEL
    a = np.zeros(pop.size)
    for t in net.tables:
        if t.source == source:
            a += model.accumulate(model.prepare_weights(t), model.table_attrs(t),
                                  np.ones((1, 1)))[0]
    keep_u = L.DECAY_UNITY - (pop.params["du"] + L.DS_OFFSET)
    steady = a * (1 << L.ACT_SHIFT) * L.DECAY_UNITY / (L.DECAY_UNITY - keep_u)
    mant, exp = L.quantize_bias(steady + L.effective_bias(pop.params["bias_mant"],
                                                          pop.params["bias_exp"]))
    pops = {k: p for k, p in net.populations.items() if k != source}
    pops["lif"] = pop.with_(params={**pop.params, "bias_mant": mant, "bias_exp": exp},
                            profile=None, profiles=())
    return net.with_(populations=pops,
                     tables=tuple(t for t in net.tables if t.source != source))


def test_quantize_returns_a_constant_current_as_tables_from_the_always_on_neuron():
    n = 2
    params = {k: np.zeros(n) for k in ("i_decay", "v_decay", "v_direct", "v_bias", "v_reset")}
    params.update(threshold=np.ones(n), i_bias=np.array([0.1, -0.05]), i_decay=np.full(n, 0.5))
    from nirc.hwnet import BIAS_SOURCE, Population
    pop = Population(name="p", shape=(n,), params=params)
    q, tables, row = L.MODEL.quantize(pop, [], {}, "layer")
    assert q.params["bias_mant"].tolist() == [0, 0]
    assert {t.source for t in tables} == {BIAS_SOURCE}
    assert sorted(t.kernel["sign_mode"] for t in tables)[:2] == [L.SIGN_EXCITATORY,
                                                                 L.SIGN_INHIBITORY]
    assert all(isinstance(t, SynapseTable) and t.weights.shape == (n, 1) for t in tables)
    assert row["current_bias_neurons"] == 2 and row["current_bias_rel_error"] < 0.01
    assert not any("steady-state" in note for note in row["notes"])
    # Without a synaptic current the constant input stays a voltage bias.
    params["i_decay"] = np.zeros(n)
    q, tables, row = L.MODEL.quantize(pop, [], {}, "layer")
    assert tables == [] and q.params["bias_mant"][0] > 0 > q.params["bias_mant"][1]
    assert row["current_bias_neurons"] == 0


def test_small_biases_beside_large_ones_keep_one_unit_of_input():
    # One 8-bit mantissa per table: at the exponent the largest bias needs (16 units), the
    # small one would round to 0; an exponent-0 table carries what the first rounded away.
    n = 3
    params = {k: np.zeros(n) for k in ("v_decay", "v_direct", "v_bias", "v_reset")}
    params.update(threshold=np.ones(n), i_decay=np.full(n, 0.9),
                  i_bias=np.array([1.0, 0.003, -0.0021]))
    from nirc.hwnet import Population
    _, tables, row = L.MODEL.quantize(Population(name="p", shape=(n,), params=params), [], {},
                                      "layer")
    assert max(t.kernel["weight_exp"] for t in tables) == 4
    assert min(t.kernel["weight_exp"] for t in tables) == 0      # never a flooring shift
    per_step = sum(L.MODEL.accumulate(L.MODEL.prepare_weights(t), L.MODEL.table_attrs(t),
                                      np.ones((1, 1)))[0] for t in tables)
    want = params["i_bias"] * 2048                 # threshold 1 -> vth 2048 units of a_in
    assert np.all(np.abs(per_step - want) <= 0.5)
    assert row["current_bias_rel_error"] < 0.1


@pytest.mark.parametrize("target", ["loihi2", "loihi1", "spinnaker2"])
def test_a_constant_current_into_a_cubalif_follows_the_float_ramp(target, tmp_path):
    graph = biased("cuba")
    result = compile_model(graph, target, tmp_path / "build", calibration_steps=0)
    net = result.network
    inputs = {"input": np.zeros((STEPS, 1, 2))}
    floated = simulate(graph, inputs, dt=net.dt, batch=True).spikes["lif"].reshape(STEPS, -1)
    lag = result.report["pass_reports"]["latency_steps"]["lif"]
    assert lag == 1
    ran = intref.run(net, inputs, batch=True)
    chip = ran.spikes["lif"].reshape(STEPS, -1)
    # The emulator runs the same integers.
    emulated = Chip.load(tmp_path / "build").run(inputs, batch=True).spikes["lif"]
    emulated = emulated.reshape(STEPS, -1)
    assert np.array_equal(chip, emulated)

    want, got = floated[:STEPS - lag], chip[lag:]
    old = intref.run(as_voltage_bias(net), inputs, batch=True).spikes["lif"].reshape(STEPS, -1)
    old = old[lag:]
    assert np.abs(got.sum(0) - want.sum(0)).max() <= 1
    first = lambda s: [int(np.argmax(c)) if c.any() else -1 for c in s.T]   # noqa: E731
    assert all(abs(a - b) <= 1 for a, b in zip(first(got), first(want)))
    assert got[:20].sum() > 0 and got[:, -1].sum() == 0          # the negative bias stays silent
    # A voltage bias at the steady state fires from the first steps on, far more often.
    mismatch_new = np.mean(got[:20] != want[:20])
    mismatch_old = np.mean(old[:20] != want[:20])
    assert mismatch_new < mismatch_old / 3
    assert np.abs(old.sum(0) - want.sum(0)).sum() > 3 * np.abs(got.sum(0) - want.sum(0)).sum()


def test_a_constant_input_into_a_lif_stays_a_voltage_bias():
    result = compile_model(biased("lif"), "loihi2", None, calibration_steps=0)
    net = result.network
    assert not any(p.provenance == ("always_on",) for p in net.populations.values())
    assert np.count_nonzero(net.populations["lif"].params["bias_mant"]) == BIASES.size
