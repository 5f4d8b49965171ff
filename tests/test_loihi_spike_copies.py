"""Several spikes per step on Loihi: populations fired by copies with staggered thresholds.

A model trained to fire several spikes per step and subtract its threshold (Rockpool's
LIFTorch, Sinabs' MultiSpike) loses what the second and later spikes carried on Loihi,
which fires one. The Loihi model offers ``spikes`` copies (nirc.spike_copies): c populations sharing one membrane in u, thresholds theta .. c theta,
a synaptic current held as delayed taps. These tests fail if the copies stop counting the
model's spikes, if the search stops choosing them where they pay, or if a build with copies
stops equalling the integer reference.
"""

from __future__ import annotations

from pathlib import Path

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
from nirc.neuron_models.loihi_cuba_lif import MODEL, LoihiCubaLIF
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
    # (the population is read as the output: the readout's choices)
    assert search["chosen"]["lif"]["spikes"] in LoihiCubaLIF.READOUT_SPIKES[1:]
    copies = next(r for r in chosen.report["quantization"] if r["population"] == "lif")
    assert len(copies["spike_copies"]) == len(spike_copies.levels(
        search["chosen"]["lif"]["spikes"])) - 1
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


# --- spike levels: c copies standing for more than c spikes ---------------------------------


def _leaky_net(n: int = 3, v_decay: float = 0.9, theta: float = 2.0, seed: int = 0):
    """Input (2 channels) -> p (a LIF without current, read as the output)."""
    rng = np.random.default_rng(seed)
    ones = np.ones(n)
    pop = Population(name="p", shape=(n,), provenance=("p",), params={
        "i_decay": 0 * ones, "v_decay": v_decay * ones, "v_direct": 0 * ones,
        "i_bias": 0 * ones, "v_bias": 0 * ones, "threshold": theta * ones, "v_reset": 0 * ones})
    w = sp.csr_array(rng.uniform(0.5, 6.0, (n, 2)))
    return HardwareNetwork(neuron_model="float", dt=1e-3, inputs={"in": InputPort("in", (2,))},
                           populations={"p": pop}, tables=(SynapseTable("in", "p", w, delay=0),),
                           outputs={"out": OutputPort("out", "p", shape=(n,))})


def test_levels_weigh_each_copy_by_its_step_in_its_tables_its_reset_and_the_output():
    net = _leaky_net()
    assert spike_copies.levels("20/9") == (1, 2, 3, 4, 5, 7, 10, 14, 20)
    assert spike_copies.weights((1, 2, 4)) == (1, 1, 2)
    # (a step of m spikes fires midway: 4 spikes from 3.5 thresholds on)
    assert spike_copies.thresholds((1, 2, 4)) == (1.0, 2.0, 3.5)
    out, groups = spike_copies.expand(net, {"p": (1, 2, 4)})
    members = groups["p"]
    assert [float(out.populations[m].params["threshold"][0]) for m in members] == [2, 4, 7]
    resets = {(t.source, t.target): t.weights.toarray()[0, 0] for t in out.tables
              if (t.kernel or {}).get("self_reset")}
    # Each copy's spike subtracts the spikes it stands for, times theta * v_decay, from all.
    assert resets[("p", "p.spike3")] == pytest.approx(-2 * 0.9)
    assert resets[("p.spike3", "p")] == pytest.approx(-2 * 2 * 0.9)
    assert out.outputs["out"].copies == ("p.spike2", "p.spike3")
    assert out.outputs["out"].copy_weights == (1, 2)
    assert spike_copies.synapse_count(net, {"p": (1, 2, 4)}) == out.synapse_count
    # Uniform copies keep an unweighted output.
    assert spike_copies.expand(net, {"p": 3})[0].outputs["out"].copy_weights == ()
    with pytest.raises(ValueError, match="no spike levels named"):
        spike_copies.levels("19/9")


def test_levels_send_the_nearest_level_and_the_membrane_keeps_the_rest():
    """The rewrite run in float (the membrane in the current, as quantize lowers it into u)
    fires, per step, the level nearest the trained count and carries the difference: the
    same as a direct simulation of that rule, spike for spike."""
    levels, theta, beta = (1, 2, 3, 5, 8), 2.0, 0.9
    net = _leaky_net(theta=theta, v_decay=beta)
    out, groups = spike_copies.expand(net, {"p": levels})
    chip = spike_copies.membrane_as_current(out, groups)
    x = np.random.default_rng(1).uniform(0.0, 1.5, (60, 4, 2))
    got = intref.run(chip, {"in": x}, batch=True).outputs["out"]

    w = net.tables[0].weights.toarray()
    at = np.array(spike_copies.thresholds(levels)) * theta
    step_of = np.array((0, *levels))
    v = np.zeros((4, 3))
    want = np.zeros_like(got)
    for t in range(x.shape[0]):
        v = beta * v + x[t] @ w.T
        n = step_of[(v[..., None] > at).sum(-1)]
        want[t] = n
        v = v - n * theta
    assert want.max() > 5            # (levels above one step apart are exercised)
    assert np.array_equal(got, want)


def _two_layers(seed: int = 5) -> NIRGraph:
    """Input -> Affine -> CubaLIF (hidden, driven to bursts) -> Affine -> CubaLIF -> Output."""
    rng = np.random.default_rng(seed)
    n_in, n, m = 6, 12, 4

    def cuba(k):
        ones = np.ones(k)
        return CubaLIF(tau_syn=ones * 2e-3, tau_mem=ones * 8e-3, r=ones * 8.0, v_leak=0 * ones,
                       v_threshold=ones, v_reset=0 * ones, w_in=ones)

    nodes = {"input": Input(shape=np.array([n_in])),
             "fc1": Affine(weight=rng.uniform(0.0, 3.0, (n, n_in)), bias=np.zeros(n)),
             "hidden": cuba(n),
             "fc2": Affine(weight=rng.uniform(-0.1, 0.4, (m, n)), bias=np.zeros(m)),
             "out": cuba(m),
             "output": Output(shape=np.array([m]))}
    order = list(nodes)
    return NIRGraph(nodes=nodes, edges=tuple(zip(order, order[1:])))


def test_a_build_with_levels_counts_its_outputs_and_equals_the_integer_reference(
        tmp_path, monkeypatch):
    """Levels in the hidden layer and the readout: config.json says what each readout copy's
    spike counts for, the emulator reads the build as the integer reference runs it (bit for
    bit), and the counts follow the model's bursts."""
    import json

    graph = _two_layers()
    monkeypatch.setattr(LoihiCubaLIF, "SPIKES", ("20/9",))
    monkeypatch.setattr(LoihiCubaLIF, "READOUT_SPIKES", ("20/9",))
    result = compile_model(graph, "loihi2", tmp_path / "build", convention=MULTI,
                           calibration_steps=0)
    rows = {r["population"]: r for r in result.report["quantization"]}
    assert rows["hidden"]["spike_copy_weights"] == [1, 1, 1, 1, 2, 3, 4, 6]
    (port,) = json.loads((tmp_path / "build" / "config.json").read_text())["outputs"]
    assert port["copy_weights"] == [1, 1, 1, 1, 2, 3, 4, 6]
    inputs = random_spike_input(graph, 40, seed=2, rate=0.4, batch=4)
    chip = Chip.load(tmp_path / "build").run(inputs, batch=True, record=True)
    assert compare_runs(chip, intref.run(result.network, inputs, batch=True, record=True)) == []
    lag = result.report["pass_reports"]["latency_steps"]["out"]
    padded = {k: np.concatenate([v, np.zeros((lag, *v.shape[1:]))]) for k, v in inputs.items()}
    got = intref.run(result.network, padded, batch=True).outputs["output"][lag:]
    want = simulate(graph, inputs, batch=True, convention=MULTI).outputs["output"]
    assert want.max() > 5            # (the readout bursts past the first levels)
    c, f = got.sum(0).astype(float), want.sum(0).astype(float)
    assert 1.0 - np.abs(c - f).sum() / (c.sum() + f.sum()) >= 0.95


def test_the_search_does_not_choose_copies_the_target_cannot_hold(tmp_path):
    """A rewrite that multiplies synapses past what the chip holds scores -1 (the
    partitioner's greedy fill refuses it) and the compile keeps a choice that fits."""
    import yaml

    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "targets" / "loihi2.yaml")
                          .read_text())
    spec["name"] = "loihi2_two_cores"
    spec["cores"]["count"] = 2
    spec["cores"]["limits"]["synapse_memory_bits"] = 2 ** 14
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(spec))
    result = compile_model(_bursting_graph(), str(tmp_path / "small.yaml"), None,
                           convention=MULTI, calibration_steps=0)
    tried = result.report["pass_reports"]["quantization_search"]["tried"]
    refused = [t for t in tried if t["knob"] == "spikes" and t["agreement"] == -1]
    assert refused, "no choice was too big for two small cores: the test proves nothing"
    assert result.placement.cores_used <= 2


def test_copies_share_the_scale_of_the_populations_own_threshold():
    """Each copy holds the membrane in its own u; all of them in the units of the population's
    threshold (copy j's register j times the first's), so a high copy's membrane is as fine as
    the first's, and the highest copy's register still fits."""
    net = _leaky_net()
    expanded, choices, groups = LoihiCubaLIF().expand(
        net, {"p": {"precision": "8-bit rounded", "reset": "subtract", "spikes": "20/9"}})
    first, last = groups["p"][0], groups["p"][-1]
    quantized = {}
    for member in (first, last):
        tables = [t for t in expanded.tables if t.target == member]
        quantized[member], _, _ = MODEL.quantize(expanded.populations[member], tables, {},
                                                 "layer", choice=choices[member])
    assert float(quantized[first].v_scale[0]) == float(quantized[last].v_scale[0])
    assert int(quantized[last].params["vth"][0]) == round(
        17.5 * int(quantized[first].params["vth"][0]))
