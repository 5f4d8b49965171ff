"""Speck quantization (nirc.targets.speck.quantize): sinabs' one-scale-per-layer rule."""

import numpy as np

from nirc.targets.speck.lower import Source, SpeckLayer, SpeckNetwork
from nirc.targets.speck.quantize import discretization_scale, quantize_network


def layer(weight, bias=None, threshold=1.0):
    weight = np.asarray(weight, dtype=np.float64).reshape(-1, 1, 1, 1)
    return SpeckLayer(name="n", provenance=("c", "n"), input_shape=(1, 1, 1), weight=weight,
                      bias=None if bias is None else np.asarray(bias, dtype=np.float64),
                      stride=(1, 1), padding=(0, 0), threshold_high=threshold,
                      threshold_low=-threshold, return_to_zero=True,
                      sources=(Source("input", 1, True),))


def quantized(l):
    net = SpeckNetwork(layers=(l,), inputs={"input": (1, 1, 1)}, outputs={}, dt=1.0)
    q, report = quantize_network(net)
    return q.layers[0], report[0]


def test_positive_side_dominates_scale_is_127_over_max():
    assert discretization_scale(np.array([-0.5, 1.0]), 8) == np.float32(127.0)


def test_negative_side_dominates_scale_is_128_over_abs_min():
    assert discretization_scale(np.array([-2.0, 1.0]), 8) == np.float32(64.0)


def test_weights_limit_the_scale_and_threshold_follows_it():
    q, row = quantized(layer([0.5, -0.25], threshold=1.0))
    assert q.weight.ravel().tolist() == [127, -64]         # -63.5 rounds half to even
    assert (q.threshold_high, q.threshold_low) == (254, -254)
    assert row["scale"] == 254.0 and row["weights_zeroed"] == 0


def test_a_large_threshold_limits_the_scale_and_small_weights_round_to_zero():
    q, row = quantized(layer([0.001, 0.5], threshold=1000.0))
    assert row["scale"] == np.float32(32767 / 1000)
    assert (q.threshold_high, q.weight.ravel().tolist()) == (32767, [0, 16])
    assert row["weights_zeroed"] == 1


def test_biases_share_the_weight_scale_and_can_limit_it():
    q, row = quantized(layer([0.1], bias=[1.0], threshold=1.0))
    assert (q.bias.tolist(), q.weight.ravel().tolist(), q.threshold_high) == ([127], [13], 127)
    assert row["bias_fits_bits"] is True


def test_all_zero_weights_leave_the_scale_to_the_threshold():
    q, row = quantized(layer([0.0, 0.0], threshold=2.0))
    assert row["scale"] == np.float32(32767 / 2)
    assert (q.threshold_high, q.threshold_low, q.weight.ravel().tolist()) == (32767, -32767, [0, 0])
