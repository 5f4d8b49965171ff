"""NIR -> Speck layers (nirc.targets.speck.lower): what becomes a core, and what Speck refuses."""

import numpy as np
import pytest

from nirc.errors import TargetError
from nirc.ir.nodes import Delay, Scale
from nirc.nirio import read
from nirc.targets.speck.chip import load_chip
from nirc.targets.speck.lower import Source, lower_to_speck

from speck_networks import (EXAMPLES, avgpool, chain, conv, graph, iaf, lif, residual_cnn,
                            small_cnn, sumpool)


@pytest.fixture(scope="module")
def chip():
    return load_chip("speck2f")


def lower(g, chip, **kw):
    return lower_to_speck(g, chip, dt=kw.pop("dt", 1.0), **kw)


def test_cnn_example_becomes_three_cores_with_pooling_on_the_destinations(chip):
    net = lower(read(EXAMPLES / "cnn.nir"), chip)
    assert [(l.name, l.input_shape, l.output_shape) for l in net.layers] == [
        ("1", (2, 34, 34), (8, 34, 34)), ("4", (8, 17, 17), (16, 17, 17)), ("8", (16, 8, 8), (10, 1, 1))]
    assert [l.sources for l in net.layers] == [
        (Source("input", 1, True),), (Source("1", 2),), (Source("4", 2),)]
    assert net.layers[2].kernel == 8          # the Affine is a convolution covering its 16x8x8 input


def test_affine_weights_become_a_kernel_in_c_h_w_order(chip):
    g = small_cnn(seed=1)
    net = lower(g, chip)
    fc = g.nodes["fc"]
    assert np.array_equal(net.layers[2].weight, fc.weight.reshape(10, 8, 4, 4))
    assert np.array_equal(net.layers[2].bias, fc.bias)


def test_avgpool_is_sumpool_with_the_next_weights_divided_by_k_squared(chip):
    rng = np.random.default_rng(0)
    c2 = conv(rng, 4, 4, 3)
    g = chain((2, 12, 12), [("c1", conv(rng, 4, 2, 3)), ("i1", iaf((4, 10, 10))), ("p", avgpool(2)),
                            ("c2", c2), ("i2", iaf((4, 3, 3)))], (4, 3, 3))
    layer = lower(g, chip).layers[1]
    assert layer.sources == (Source("i1", 2),)
    assert np.allclose(layer.weight, c2.weight / 4)


def test_scale_after_the_convolution_folds_into_weights_and_bias(chip):
    rng = np.random.default_rng(0)
    c = conv(rng, 3, 2, 3)
    g = chain((2, 5, 5), [("c", c), ("s", Scale(scale=np.full((3, 3, 3), 0.5))),
                          ("i", iaf((3, 3, 3)))], (3, 3, 3))
    layer = lower(g, chip).layers[0]
    assert np.allclose(layer.weight, c.weight * 0.5) and np.allclose(layer.bias, c.bias * 0.5)


def test_if_input_gain_is_r_times_dt_as_the_float_simulator_discretises(chip):
    g = small_cnn(seed=2)
    assert np.allclose(lower(g, chip, dt=0.5).layers[0].weight, g.nodes["conv1"].weight * 0.5)


def test_merge_gives_the_core_two_sources_and_each_source_its_destinations(chip):
    net = lower(residual_cnn(), chip)
    assert net.layer("if3").sources == (Source("if1", 1), Source("if2", 1))
    assert net.destinations("if1") == [("if2", 1), ("if3", 1)]


def test_low_threshold_is_unbounded_by_default_or_minus_threshold_and_reset_follows_v_reset(chip):
    layer = lower(small_cnn(), chip).layers[0]
    assert (layer.threshold_high, layer.threshold_low, layer.return_to_zero) == (1.0, -np.inf, True)
    layer = lower(small_cnn(), chip, low_threshold="minus_threshold").layers[0]
    assert layer.threshold_low == -1.0
    layer = lower(small_cnn(), chip, reset="subtract").layers[0]
    assert layer.return_to_zero is False


def test_lif_whose_leak_is_below_half_an_lsb_runs_as_iaf(chip):
    rng = np.random.default_rng(0)
    g = chain((2, 5, 5), [("c", conv(rng, 3, 2, 3)), ("n", lif((3, 3, 3), tau=1e6))], (3, 3, 3))
    assert len(lower(g, chip, dt=1e-3).layers) == 1


@pytest.mark.parametrize("case, message", [
    ("leaky_lif", "node 'n', parameter 'tau': LIF leaks 0.1 of v per step at dt=0.001 s"),
    ("delay", "node 'd': Delay cannot run on Speck"),
    ("recurrent", "recurrent connection"),
    ("two_convs_into_one_neuron", "node 'n': has 2 inputs"),
    ("three_destinations", "node 'i1': sends spikes to 3 layers"),
    ("stride_3", "node 'c', parameter 'stride': stride [3, 3] is not one of [1, 2, 4, 8] per axis on Speck"),
    ("pool_3", "node 'p', parameter 'kernel_size': pooling 3x3 from 'i1' is not one of [1, 2, 4] on Speck"),
    ("kernel_17", "node 'c', parameter 'weight': kernel 17x17 exceeds 16x16 on Speck"),
    ("per_neuron_threshold", "node 'n', parameter 'v_threshold': thresholds differ"),
    ("cuba", "node 'srnn-3': CubaLIF cannot run on Speck"),
])
def test_what_speck_cannot_run_fails_naming_the_node_and_the_reason(chip, case, message):
    rng = np.random.default_rng(0)
    if case == "leaky_lif":
        g = chain((2, 5, 5), [("c", conv(rng, 3, 2, 3)), ("n", lif((3, 3, 3), tau=0.01))], (3, 3, 3))
        kw = {"dt": 1e-3}
    elif case == "delay":
        g = chain((2, 5, 5), [("c", conv(rng, 3, 2, 3)), ("n", iaf((3, 3, 3))),
                              ("d", Delay(delay=np.full((3, 3, 3), 0.002)))], (3, 3, 3))
        kw = {}
    elif case == "recurrent":
        g = graph((2, 5, 5), {"c": conv(rng, 3, 2, 3, padding=1), "n": iaf((3, 5, 5)),
                              "r": conv(rng, 3, 3, 3, padding=1)},
                  [("input", "c"), ("c", "n"), ("n", "r"), ("r", "n"), ("n", "output")], (3, 5, 5))
        kw = {}
    elif case == "two_convs_into_one_neuron":
        g = graph((2, 5, 5), {"a": conv(rng, 3, 2, 3), "b": conv(rng, 3, 2, 3), "n": iaf((3, 3, 3))},
                  [("input", "a"), ("input", "b"), ("a", "n"), ("b", "n"), ("n", "output")], (3, 3, 3))
        kw = {}
    elif case == "three_destinations":
        nodes = {"c1": conv(rng, 2, 2, 1), "i1": iaf((2, 4, 4))}
        edges = [("input", "c1"), ("c1", "i1")]
        for j in range(3):
            nodes[f"c{j + 2}"], nodes[f"i{j + 2}"] = conv(rng, 2, 2, 1), iaf((2, 4, 4))
            edges += [("i1", f"c{j + 2}"), (f"c{j + 2}", f"i{j + 2}"), (f"i{j + 2}", "output")]
        g = graph((2, 4, 4), nodes, edges, (2, 4, 4))
        kw = {}
    elif case == "stride_3":
        g = chain((2, 7, 7), [("c", conv(rng, 3, 2, 1, stride=3)), ("n", iaf((3, 3, 3)))], (3, 3, 3))
        kw = {}
    elif case == "pool_3":
        g = chain((2, 8, 8), [("c1", conv(rng, 2, 2, 3)), ("i1", iaf((2, 6, 6))), ("p", sumpool(3)),
                              ("c2", conv(rng, 2, 2, 1)), ("i2", iaf((2, 2, 2)))], (2, 2, 2))
        kw = {}
    elif case == "kernel_17":
        g = chain((1, 17, 17), [("c", conv(rng, 1, 1, 17)), ("n", iaf((1, 1, 1)))], (1, 1, 1))
        kw = {}
    elif case == "per_neuron_threshold":
        n = iaf((3, 3, 3))
        n = type(n)(r=n.r, v_threshold=np.linspace(1, 2, 27).reshape(3, 3, 3), v_reset=n.v_reset)
        g = chain((2, 5, 5), [("c", conv(rng, 3, 2, 3)), ("n", n)], (3, 3, 3))
        kw = {}
    else:
        from nirc.ir.graph import flatten as flat
        g = read(EXAMPLES / "srnn.nir")
        g = type(g)(nodes={f"srnn-{k}" if k not in ("input", "output") else k: v
                           for k, v in flat(g).nodes.items()},
                    edges=tuple((a if a in ("input", "output") else f"srnn-{a}",
                                 b if b in ("input", "output") else f"srnn-{b}")
                                for a, b in flat(g).edges))
        kw = {}
    with pytest.raises(TargetError) as err:
        lower(g, chip, **kw)
    assert message in str(err.value)
