"""The passes up to unroll preserve meaning: the float hardware network, run by the reference
engine with the generic discrete neuron, reproduces the float simulator of the NIR graph."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_graphs import cnn, mlp, random_graphs, recurrent, skip_and_delay, spikes
from nirc import intref
from nirc.neuron_models import get_model
from nirc.passes.context import PassContext
from nirc.passes.registry import PASSES
from nirc.simulate import simulate


def lower(graph, method="euler", dt=1e-3):
    ctx = PassContext(model=get_model("float"), dt=dt, method=method)
    stage = graph
    for name in ("normalize", "discretize", "fuse", "unroll"):
        stage = PASSES[name](stage, ctx)
    return stage


@pytest.mark.parametrize("method", ["euler", "exact"])
@pytest.mark.parametrize("make", [mlp, recurrent, cnn, skip_and_delay,
                                  lambda: mlp(readout=True)])
def test_float_hardware_network_reproduces_the_simulator(make, method):
    graph = make()
    net = lower(graph, method)
    inputs = {name: spikes(tuple(int(d) for d in node.shape), steps=30, batch=3)
              for name, node in graph.inputs().items()}
    ours = intref.run(net, inputs, batch=True, record=True)
    want = simulate(graph, inputs, dt=1e-3, method=method, batch=True, record=True)
    for name in want.outputs:
        np.testing.assert_allclose(ours.outputs[name], want.outputs[name], atol=1e-9)
    for name, train in want.spikes.items():
        if name in ours.spikes:
            assert np.array_equal(ours.spikes[name], train), name
    assert any(train.any() for train in want.spikes.values())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=random_graphs(), method=st.sampled_from(["euler", "exact"]))
def test_random_graphs_lower_to_float_networks_that_reproduce_the_simulator(graph, method):
    net = lower(graph, method)
    inputs = {name: spikes(tuple(int(d) for d in node.shape), steps=20, batch=2)
              for name, node in graph.inputs().items()}
    ours = intref.run(net, inputs, batch=True)
    want = simulate(graph, inputs, dt=1e-3, method=method, batch=True)
    for name in want.outputs:
        np.testing.assert_allclose(ours.outputs[name], want.outputs[name], atol=1e-9)
