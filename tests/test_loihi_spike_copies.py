"""Several spikes per step on Loihi: populations fired by copies with staggered thresholds.

A model trained to fire several spikes per step and subtract its threshold (Rockpool's
LIFTorch, Sinabs' MultiSpike) loses what the second and later spikes carried on Loihi,
which fires one. The Loihi model offers ``spikes`` copies (nirc.spike_copies): c populations sharing one membrane in u, thresholds theta .. c theta,
a synaptic current held as delayed taps. These tests fail if the copies stop counting the
model's spikes, if the search stops choosing them where they pay, or if a build with copies
stops equalling the integer reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from nirc import intref
from nirc.convention import Convention
from nirc.driver import compile as compile_model, random_spike_input
from nirc.emulator import Chip
from nirc.hwnet import HardwareNetwork, InputPort, OutputPort, Population, SynapseTable
from nirc.ir.nodes import Affine, CubaLIF, Input, NIRGraph, Output
from nirc import spike_copies
from nirc.neuron_models.loihi_cuba_lif import LoihiCubaLIF
from nirc.simulate import simulate
from nirc.verify import compare_runs

MULTI = Convention(exporter="nir", reset="subtract", spikes="multi", max_spikes=None)


def _bursting_graph(n_in: int = 6, n: int = 12, seed: int = 3) -> NIRGraph:
    """Input -> Affine -> CubaLIF (fast current) -> Output, driven to several spikes per step."""
    rng = np.random.default_rng(seed)
    ones = np.ones(n)
    nodes = {"input": Input(shape=np.array([n_in])),
             "fc": Affine(weight=rng.uniform(0.0, 2.0, (n, n_in)), bias=np.zeros(n)),
             "lif": CubaLIF(tau_syn=ones * 2e-3, tau_mem=ones * 8e-3, r=ones * 8.0,
                            v_leak=0 * ones, v_threshold=ones, v_reset=0 * ones, w_in=ones),
             "output": Output(shape=np.array([n]))}
    order = list(nodes)
    return NIRGraph(nodes=nodes, edges=tuple(zip(order, order[1:])))


def _count_agreement(result, graph, inputs) -> float:
    lag = result.report["pass_reports"]["latency_steps"]["lif"]
    steps = next(iter(inputs.values())).shape[0]
    padded = {k: np.concatenate([v, np.zeros((lag, *v.shape[1:]))]) for k, v in inputs.items()}
    chip = intref.run(result.network, padded, batch=True).outputs["output"][lag:]
    want = simulate(graph, inputs, batch=True, convention=MULTI).outputs["output"]
    c, f = chip.sum(0).astype(float), want[:steps].sum(0).astype(float)
    return 1.0 - np.abs(c - f).sum() / (c.sum() + f.sum())


def test_taps_hold_the_current_and_copies_share_one_membrane():
    n = 3
    ones = np.ones(n)
    pop = Population(name="p", shape=(n,), provenance=("p",), params={
        "i_decay": 0.5 * ones, "v_decay": 0.9 * ones, "v_direct": 0 * ones, "i_bias": 0 * ones,
        "v_bias": 0 * ones, "threshold": 2 * ones, "v_reset": 0 * ones})
    w = sp.csr_array(np.arange(1.0, 7.0).reshape(n, 2))
    net = HardwareNetwork(neuron_model="float", dt=1e-3, inputs={"in": InputPort("in", (2,))},
                          populations={"p": pop},
                          tables=(SynapseTable("in", "p", w, delay=0),),
                          outputs={"out": OutputPort("out", "p", shape=(n,))})
    out, groups = spike_copies.expand(net, {"p": 3})
    assert groups == {"p": ["p", "p.spike2", "p.spike3"]}
    assert [float(out.populations[m].params["threshold"][0]) for m in groups["p"]] == [2, 4, 6]
    assert all(np.all(out.populations[m].params["i_decay"] == 0) for m in groups["p"])
    d = spike_copies.taps(0.5)          # 0.5^7 < 0.01
    assert d == 7
    into_p = [t for t in out.tables if t.target == "p" and t.source == "in"]
    assert [t.delay for t in into_p] == list(range(d))
    gains = [t.weights.toarray()[0, 0] / w.toarray()[0, 0] for t in into_p]
    # Taps 0.5^d, the last carrying the tail: a constant input reaches the trained membrane.
    assert gains[:-1] == pytest.approx([0.5 ** k for k in range(d - 1)])
    assert sum(gains) == pytest.approx(1 / (1 - 0.5))
    # Every copy's spike subtracts theta * v_decay from every copy, a step later.
    resets = [t for t in out.tables if (t.kernel or {}).get("self_reset")]
    assert len(resets) == 9 and {t.delay for t in resets} == {1}
    assert np.allclose(resets[0].weights.toarray(), np.diag(-2 * 0.9 * ones))
    assert out.outputs["out"].copies == ("p.spike2", "p.spike3")
    # Its size is known before it is built, and a network past the bound is not built.
    assert spike_copies.synapse_count(net, {"p": 3}) == out.synapse_count
    with pytest.raises(spike_copies.TooCostly):
        spike_copies.expand(net, {"p": 3}, max_synapses=out.synapse_count - 1)


def test_copies_fire_the_models_bursts_and_the_search_keeps_them(tmp_path, monkeypatch):
    graph = _bursting_graph()
    inputs = random_spike_input(graph, 40, seed=2, rate=0.3, batch=4)
    chosen = compile_model(graph, "loihi2", tmp_path / "build", convention=MULTI,
                           calibration_steps=0)
    search = chosen.report["pass_reports"]["quantization_search"]
    # (the population is read as the output: uniform copies, each one output spike)
    assert search["chosen"]["lif"]["spikes"] in LoihiCubaLIF.READOUT_SPIKES[1:]
    copies = next(r for r in chosen.report["quantization"] if r["population"] == "lif")
    assert len(copies["spike_copies"]) == int(search["chosen"]["lif"]["spikes"]) - 1
    with_copies = _count_agreement(chosen, graph, inputs)
    assert with_copies >= 0.99
    # The emitted build (copies, taps at delays, the output summing the copies) is what the
    # integer reference runs, bit for bit.
    assert compare_runs(Chip.load(tmp_path / "build").run(inputs, batch=True, record=True),
                        intref.run(chosen.network, inputs, batch=True, record=True)) == []

    monkeypatch.setattr(LoihiCubaLIF, "SPIKES", ("1",))
    monkeypatch.setattr(LoihiCubaLIF, "READOUT_SPIKES", ("1",))
    single = compile_model(graph, "loihi2", None, convention=MULTI, calibration_steps=0)
    assert _count_agreement(single, graph, inputs) < with_copies - 0.2


def test_copies_must_pay_for_their_synapses_before_the_search_takes_them():
    """A costly knob leaves its start only for more than its own margin; between its costly
    values the usual margin decides (Sinabs' CNN gains 0.04 from copies: not taken)."""
    from nirc.fidelity import search_factors

    def run(scores):
        found = search_factors(lambda f: (scores[f["p"]["spikes"]], None),
                               {"p": {"spikes": ["1", "4", "8"]}}, defaults={"p": {"spikes": "1"}},
                               margin=0.005, knob_margins=LoihiCubaLIF.choice_margins)
        return found.factors["p"]["spikes"]

    assert run({"1": 0.87, "4": 0.91, "8": 0.91}) == "1"
    assert run({"1": 0.19, "4": 0.70, "8": 0.73}) == "8"
    assert run({"1": 0.19, "4": 0.70, "8": 0.702}) == "4"


def test_copies_that_cannot_hold_the_models_bursts_are_named_in_a_warning(monkeypatch):
    """The model bursts past the copies offered (here at most 4): compile warns with the bound
    and the calibration agreement lost, even where no activity warning fires."""
    import dataclasses

    graph = _bursting_graph()
    graph = dataclasses.replace(graph, nodes={**graph.nodes, "fc": dataclasses.replace(
        graph.nodes["fc"], weight=graph.nodes["fc"].weight * 3.6)})
    monkeypatch.setattr(LoihiCubaLIF, "SPIKES", ("1", "4"))
    monkeypatch.setattr(LoihiCubaLIF, "READOUT_SPIKES", ("1", "4"))
    with pytest.warns(Warning) as caught:
        result = compile_model(graph, "loihi2", None, convention=MULTI, calibration_steps=0)
    layer = result.report["pass_reports"]["fidelity"]["layers"]["lif"]
    assert layer["agreement"] < 0.9 and not layer["warnings"]
    (note,) = [str(w.message) for w in caught if "cannot fire as the model was trained" in
               str(w.message)]
    assert "spikes: no bound per step in the model, 4 on the chip" in note
    assert "calibration agreement" in note and "--max-spikes 4" in note
