"""unroll: convolutions and pooling as sparse tables, checked against a direct numpy convolution."""

import itertools

import numpy as np
import pytest

from nirc.ir.nodes import AvgPool2d, Conv1d, Conv2d, SumPool2d
from nirc.passes.unroll import chain_matrix, conv_matrix, op_matrix


def reference_conv(x, w, stride, pad, dilation, groups):
    """Direct cross-correlation with explicit loops over output positions (torch semantics)."""
    c_in, *spatial = x.shape
    c_out, c_in_g, *kernel = w.shape
    xp = np.pad(x, [(0, 0)] + [tuple(p) for p in pad])
    out_sp = [(n + lo + hi - d * (k - 1) - 1) // s + 1
              for n, (lo, hi), d, k, s in zip(spatial, pad, dilation, kernel, stride)]
    out = np.zeros((c_out, *out_sp))
    per_group = c_out // groups
    for co in range(c_out):
        g = co // per_group
        for pos in itertools.product(*(range(o) for o in out_sp)):
            acc = 0.0
            for ci in range(c_in_g):
                for tap in itertools.product(*(range(k) for k in kernel)):
                    idx = tuple(p * s + t * d for p, s, t, d in zip(pos, stride, tap, dilation))
                    acc += w[(co, ci, *tap)] * xp[(g * c_in_g + ci, *idx)]
            out[(co, *pos)] = acc
    return out


CASES_2D = [
    # (c_in, c_out, groups, kernel, stride, padding, dilation, size)
    (2, 3, 1, (3, 3), (1, 1), 0, (1, 1), (5, 6)),
    (2, 4, 1, (3, 2), (2, 1), 1, (1, 1), (7, 5)),
    (4, 4, 2, (3, 3), (1, 2), (1, 2), (2, 1), (8, 7)),
    (3, 6, 3, (2, 2), (2, 2), 0, (1, 1), (6, 6)),
    (2, 2, 1, (3, 3), (1, 1), "same", (2, 2), (6, 5)),
    (2, 2, 1, (4, 4), (1, 1), "same", (1, 1), (5, 5)),     # even kernel: uneven 'same' padding
    (1, 2, 1, (3, 3), (3, 3), 2, (1, 1), (4, 4)),
]


@pytest.mark.parametrize("c_in,c_out,groups,kernel,stride,padding,dilation,size", CASES_2D)
def test_conv2d_table_equals_direct_convolution(c_in, c_out, groups, kernel, stride, padding,
                                                dilation, size):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(c_out, c_in // groups, *kernel))
    node = Conv2d(weight=w, stride=np.array(stride), padding=padding,
                  dilation=np.array(dilation), groups=groups, bias=np.zeros(c_out))
    x = rng.normal(size=(c_in, *size))
    m, _ = op_matrix("conv", node, (c_in, *size))
    want = reference_conv(x, w, stride, node.padding_lohi(), dilation, groups)
    assert want.shape == node.output_shape((c_in, *size))
    np.testing.assert_allclose(m @ x.ravel(), want.ravel(), atol=1e-12)
    assert m.shape == (want.size, x.size)


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 1, 1, 1),
                                                            (1, "same", 3, 2), (3, 2, 2, 2)])
def test_conv1d_table_equals_direct_convolution(stride, padding, dilation, groups):
    rng = np.random.default_rng(2)
    w = rng.normal(size=(4, 4 // groups, 3))
    node = Conv1d(weight=w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                  bias=np.zeros(4))
    x = rng.normal(size=(4, 11))
    m, _ = op_matrix("conv", node, (4, 11))
    want = reference_conv(x, w, (stride,), node.padding_lohi(), (dilation,), groups)
    np.testing.assert_allclose(m @ x.ravel(), want.ravel(), atol=1e-12)


def test_conv_bias_is_a_per_channel_constant_over_the_output_map():
    w = np.ones((2, 1, 2, 2))
    node = Conv2d(weight=w, bias=np.array([0.5, -1.0]))
    _, bias = op_matrix("conv", node, (1, 3, 3))
    assert bias.tolist() == [0.5] * 4 + [-1.0] * 4


def test_zero_weights_make_no_synapses():
    w = np.zeros((2, 1, 3, 3))
    w[1, 0, 1, 1] = 2.0
    m, _ = conv_matrix(w, (1, 4, 4), (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    assert m.nnz == 4 and set(m.data) == {2.0}


@pytest.mark.parametrize("cls,kernel,stride,padding", [(SumPool2d, 2, 2, 0), (SumPool2d, 3, 2, 1),
                                                       (AvgPool2d, 2, 2, 0), (AvgPool2d, 3, 1, 1)])
def test_pooling_tables_sum_or_average_each_window_counting_padding_as_zero(cls, kernel, stride,
                                                                            padding):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 6, 7))
    node = cls(kernel_size=np.array([kernel, kernel]), stride=np.array([stride, stride]),
               padding=np.array([padding, padding]))
    m, _ = op_matrix("pool", node, x.shape)
    scale = 1.0 / kernel ** 2 if cls is AvgPool2d else 1.0
    w = np.zeros((3, 1, kernel, kernel)) + scale
    want = reference_conv(x, w, (stride, stride), ((padding, padding),) * 2, (1, 1), 3)
    np.testing.assert_allclose(m @ x.ravel(), want.ravel(), atol=1e-12)


def test_a_chain_is_the_product_of_its_operators_and_carries_biases_through():
    rng = np.random.default_rng(4)
    conv = Conv2d(weight=rng.normal(size=(2, 1, 3, 3)), padding=1, bias=np.array([1.0, 2.0]))
    pool = SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                     padding=np.array([0, 0]))
    ops = (("conv", conv, (1, 4, 4)), ("pool", pool, (2, 4, 4)))
    m, biases = chain_matrix(ops, 16)
    x = rng.normal(size=(1, 4, 4))
    mc, bc = op_matrix("conv", conv, (1, 4, 4))
    mp, _ = op_matrix("pool", pool, (2, 4, 4))
    np.testing.assert_allclose(m @ x.ravel(), mp @ (mc @ x.ravel() + bc) - mp @ bc)
    assert list(biases) == [("conv", "pool")]
    np.testing.assert_allclose(biases[("conv", "pool")], [4.0] * 4 + [8.0] * 4)


def test_a_large_convolution_unrolls_vectorised():
    # 16 -> 16 channels, 3x3, 32x32 with padding 1: 2.26 million synapses, built with one
    # numpy block per kernel tap (a per-synapse loop would take minutes).
    w = np.ones((16, 16, 3, 3))
    m, shape = conv_matrix(w, (16, 32, 32), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert shape == (16, 32, 32)
    assert m.nnz == 16 * 16 * (30 * 30 * 9 + 4 * 30 * 6 + 4 * 4)
