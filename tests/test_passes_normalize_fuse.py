"""normalize, discretize and fuse: canonical forms, tables per path, and errors naming node and reason."""

import importlib
import pkgutil

import numpy as np
import pytest

import nirc.passes
from core_graphs import a, cnn, lif, mlp, recurrent, skip_and_delay
from nirc.discrete import DiscreteNeuron, StepDelay
from nirc.errors import ModelError, TargetError
from nirc.ir.nodes import (Affine, Delay, I, Input, Linear, NIRGraph, Output, Scale, Threshold)
from nirc.neuron_models import get_model
from nirc.passes.context import PassContext
from nirc.passes.registry import PASSES, SUPPORT_MODULES


def ctx(**kw):
    return PassContext(model=get_model(kw.pop("model", "loihi_cuba_lif")), dt=1e-3, **kw)


def test_every_module_of_the_passes_package_is_registered_under_its_own_name():
    modules = {m.name for m in pkgutil.iter_modules(nirc.passes.__path__)}
    assert modules - set(SUPPORT_MODULES) == set(PASSES)
    for name, fn in PASSES.items():
        assert fn.__module__ == f"nirc.passes.{name}"
        doc = importlib.import_module(f"nirc.passes.{name}").__doc__
        assert "Requires:" in doc and "Guarantees:" in doc


def test_normalize_flattens_canonicalises_linear_and_broadcasts_scalars():
    out = PASSES["normalize"](skip_and_delay(), ctx())
    assert "block.w" in out.nodes and "block" not in out.nodes
    assert all(not isinstance(n, Linear) for n in out.nodes.values())
    assert isinstance(out.nodes["fa"], Affine) and np.all(out.nodes["fa"].bias == 0)
    assert out.nodes["block.l"].tau.shape == (5,)
    assert ("block.l", "l2") in out.edges


def test_normalize_drops_identity_scale_and_zero_delay_and_joins_their_edges():
    g = mlp()
    nodes = dict(g.nodes, s=Scale(scale=np.ones(12)), d=Delay(delay=np.zeros(12)))
    edges = tuple(e for e in g.edges if e != ("fc1", "lif1")) + (("fc1", "s"), ("s", "d"),
                                                                 ("d", "lif1"))
    out = PASSES["normalize"](NIRGraph(nodes=nodes, edges=edges), ctx())
    assert "s" not in out.nodes and "d" not in out.nodes
    assert ("fc1", "lif1") in out.edges


def test_normalize_rejects_an_output_fed_by_a_weight_layer_naming_both():
    g = NIRGraph(nodes={"in": Input(shape=np.array([3])),
                        "fc": Linear(weight=np.ones((2, 3))), "out": Output(shape=np.array([2]))},
                 edges=(("in", "fc"), ("fc", "out")))
    with pytest.raises(TargetError, match="node 'out'.*Affine node 'fc' with no neuron"):
        PASSES["normalize"](g, ctx())


def test_normalize_rejects_node_types_the_target_does_not_support():
    with pytest.raises(TargetError, match="node 'lif1'.*does not support LIF"):
        PASSES["normalize"](mlp(), ctx(supported_nodes=frozenset({"Input", "Output", "Affine",
                                                                  "Linear", "CubaLIF"}),
                                       target_name="toy"))


def test_discretize_turns_neurons_and_delays_into_per_step_forms():
    g = PASSES["normalize"](skip_and_delay(), ctx())
    out = PASSES["discretize"](g, ctx())
    assert isinstance(out.nodes["l2"], DiscreteNeuron)
    assert isinstance(out.nodes["d"], StepDelay) and int(out.nodes["d"].steps) == 2
    # LIF, Euler: v_decay = 1 - dt/tau, gain = dt/tau * r
    assert np.allclose(out.nodes["l2"].v_decay, 0.9) and np.allclose(out.nodes["l2"].input_gain, 0.1)


def test_discretize_rejects_delays_that_differ_across_a_layer():
    g = skip_and_delay()
    nodes = dict(g.nodes, d=Delay(delay=np.array([0.001, 0.002, 0.001, 0.001, 0.001])))
    g = PASSES["normalize"](NIRGraph(nodes=nodes, edges=g.edges), ctx())
    with pytest.raises(ModelError, match="node 'd', parameter 'delay': delays differ"):
        PASSES["discretize"](g, ctx())


def lower_to(graph, last, **kw):
    c = ctx(**kw)
    stage = graph
    for name in ("normalize", "discretize", "fuse", "unroll", "quantize"):
        stage = PASSES[name](stage, c)
        if name == last:
            return stage


def test_fuse_makes_one_population_per_neuron_and_one_table_per_path():
    net = lower_to(skip_and_delay(), "fuse")
    assert list(net.populations) == ["block.l", "l2"]
    tables = {(t.source, t.target): t for t in net.tables}
    assert set(tables) == {("in", "block.l"), ("block.l", "l2"), ("in", "l2")}
    assert tables[("in", "l2")].delay == 2
    assert [op[0] for op in tables[("in", "l2")].kernel["ops"]] == ["fb", "d"]
    assert tables[("in", "block.l")].provenance == ("fa", "block.w", "block.l")


def test_fuse_turns_a_recurrent_edge_into_a_table_with_one_step_delay():
    net = lower_to(recurrent(), "unroll")
    delays = {(t.source, t.target): t.delay for t in net.tables}
    assert delays == {("in", "rlif"): 0, ("rlif", "rlif"): 1}


def test_fuse_rejects_a_cycle_without_a_neuron():
    g = NIRGraph(nodes={"in": Input(shape=np.array([2])), "f": Linear(weight=np.eye(2)),
                        "g": Linear(weight=np.eye(2)), "l": lif(2), "out": Output(shape=np.array([2]))},
                 edges=(("in", "f"), ("f", "g"), ("g", "f"), ("g", "l"), ("l", "out")))
    with pytest.raises(ModelError, match="algebraic loop"):
        lower_to(g, "fuse")


def test_outputs_map_to_spikes_of_spiking_layers_and_voltage_of_readouts():
    net = lower_to(mlp(readout=True), "fuse")
    assert net.outputs["out"].quantity == "v" and not net.populations["lif2"].spiking
    net = lower_to(cnn(), "fuse")
    assert net.outputs["out"].quantity == "spikes" and net.outputs["out"].source == "lif2"


def test_unroll_folds_input_gain_and_chain_biases_into_weights_and_i_bias():
    net = lower_to(mlp(), "unroll", model="float")
    g = mlp()
    fc1 = g.nodes["fc1"]
    t = next(t for t in net.tables if t.target == "lif1")
    # LIF at dt/tau = 0.2, r = 1: gain 0.2
    np.testing.assert_allclose(t.weights.toarray(), 0.2 * fc1.weight)
    np.testing.assert_allclose(net.populations["lif1"].params["i_bias"], 0.2 * fc1.bias)
    assert "input_gain" not in net.populations["lif1"].params


def test_quantize_gives_integer_parameters_and_one_step_delays():
    net = lower_to(recurrent(), "quantize")
    assert net.quantized and net.neuron_model == "loihi_cuba_lif"
    pop = net.populations["rlif"]
    assert set(pop.params) == set(get_model("loihi_cuba_lif").param_names)
    assert all(v.dtype.kind == "i" for v in pop.params.values())
    # (two tables, and any refinement tables the precision search adds: one step each)
    assert len(net.tables) >= 2 and {t.delay for t in net.tables} == {1}
    assert all(t.weights.dtype.kind == "i" for t in net.tables)


def test_threshold_and_integrator_nodes_lower_to_neurons():
    g = NIRGraph(nodes={"in": Input(shape=np.array([3])), "fc": Linear(weight=np.eye(3)),
                        "th": Threshold(threshold=a([0.5, 0.5, 0.5])),
                        "fc2": Linear(weight=np.ones((2, 3))), "acc": I(r=a([1.0, 1.0])),
                        "out": Output(shape=np.array([2]))},
                 edges=(("in", "fc"), ("fc", "th"), ("th", "fc2"), ("fc2", "acc"),
                        ("acc", "out")))
    net = lower_to(g, "fuse", model="float")
    assert net.populations["th"].spiking and not net.populations["acc"].spiking


def test_quantize_reports_the_latency_the_hardware_adds_per_population():
    c = ctx()
    stage = skip_and_delay()
    for name in ("normalize", "discretize", "fuse", "unroll", "quantize"):
        stage = PASSES[name](stage, c)
    # in -> block.l gains one step; block.l -> l2 another; the delayed path in -> d -> l2
    # (2 steps already) gains nothing, so l2 lags by the longer of 2 and 0.
    assert c.report["latency_steps"] == {"block.l": 1, "l2": 2}
    c = ctx()
    stage = recurrent()
    for name in ("normalize", "discretize", "fuse", "unroll", "quantize"):
        stage = PASSES[name](stage, c)
    assert c.report["latency_steps"] == {"rlif": 1}     # the recurrent table keeps its step


def test_normalize_rejects_a_readout_feeding_another_layer():
    g = mlp(readout=True)
    nodes = dict(g.nodes, fc3=Linear(weight=np.ones((2, 3))), l3=lif(2),
                 out2=Output(shape=np.array([2])))
    edges = g.edges + (("lif2", "fc3"), ("fc3", "l3"), ("l3", "out2"))
    with pytest.raises(TargetError, match="node 'lif2': LI node feeds 'fc3'.*only an Output"):
        PASSES["normalize"](NIRGraph(nodes=nodes, edges=edges), ctx())
