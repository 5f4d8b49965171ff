"""Stateless NIR nodes as whole-array numpy operations on a batch.

Every function takes ``x`` shaped (B, *node_input_shape) and returns
(B, *node_output_shape); the batch axis is always first and never appears in
node parameters. Convolutions and pooling go through one strided-window view
(numpy's ``sliding_window_view``); a convolution then copies its receptive
fields once (im2col) and costs one batched matrix product per step whatever
its stride, padding, dilation or grouping.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nirc.ir.nodes import (Affine, AvgPool2d, Conv1d, Conv2d, Flatten, Linear, Node, Scale,
                           SumPool2d, Threshold, _ConvNd, _Pool2d)

Operator = Callable[[np.ndarray], np.ndarray]


def windows(x: np.ndarray, kernel: tuple[int, ...], stride: tuple[int, ...],
            padding: tuple[tuple[int, int], ...], dilation: tuple[int, ...]) -> np.ndarray:
    """Every receptive field of ``x`` (B, C, *S): shape (B, C, *S_out, *kernel), a view when unpadded."""
    n = len(kernel)
    if any(lo or hi for lo, hi in padding):
        x = np.pad(x, ((0, 0), (0, 0), *padding))
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = sliding_window_view(x, extent, axis=tuple(range(2, 2 + n)))
    out_slices = tuple(slice(None, None, s) for s in stride)
    kernel_slices = tuple(slice(None, None, d) for d in dilation)
    return view[(slice(None), slice(None), *out_slices, *kernel_slices)]


def convolve(x: np.ndarray, node: _ConvNd) -> np.ndarray:
    """Cross-correlation as torch computes it (weight (C_out, C_in/groups, *k)), plus bias.

    im2col: the receptive fields are copied once into a (groups, B*positions, C_in/groups*taps)
    matrix and multiplied by the (groups, C_in/groups*taps, C_out/groups) weights.
    """
    n = node.spatial_dims
    patches = windows(x, node.kernel, node.stride_t(), node.padding_lohi(), node.dilation_t())
    b, c = patches.shape[:2]
    g = node.groups
    out_shape = patches.shape[2:2 + n]
    positions, taps = int(np.prod(out_shape)), int(np.prod(node.kernel))
    # (B, G, Cg, *out, *k) -> (G, B, *out, Cg, *k)
    grouped = patches.reshape(b, g, c // g, *out_shape, *node.kernel)
    order = (1, 0, *range(3, 3 + n), 2, *range(3 + n, 3 + 2 * n))
    columns = np.ascontiguousarray(grouped.transpose(order)).reshape(
        g, b * positions, (c // g) * taps)
    weight = np.asarray(node.weight, dtype=x.dtype)
    kernel = weight.reshape(g, weight.shape[0] // g, (c // g) * taps).transpose(0, 2, 1)
    y = columns @ kernel                                   # (G, B*positions, Og)
    y = y.reshape(g, b, *out_shape, -1)
    y = np.moveaxis(y, -1, 1).reshape(g, -1, b, *out_shape)  # (G, Og, B, *out)
    y = np.moveaxis(y, 2, 0).reshape(b, -1, *out_shape)     # (B, G*Og, *out)
    if node.bias is not None:
        bias = np.asarray(node.bias, dtype=x.dtype)
        y = y + (bias.reshape(-1, *([1] * n)) if bias.ndim == 1 else bias)
    return y


def pool(x: np.ndarray, node: _Pool2d, average: bool) -> np.ndarray:
    kernel, stride, padding = node.windows()
    fields = windows(x, kernel, stride, tuple((p, p) for p in padding), (1, 1))
    total = fields.sum(axis=(-2, -1))
    return total / (kernel[0] * kernel[1]) if average else total


def flatten(x: np.ndarray, node: Flatten) -> np.ndarray:
    start, end = node.dims(x.ndim - 1)
    shape = x.shape[1:]
    merged = int(np.prod(shape[start:end + 1]))
    return x.reshape(x.shape[0], *shape[:start], merged, *shape[end + 1:])


def operator_for(node: Node, dtype: np.dtype) -> Operator:
    """The per-step function of a stateless node (weights cast once to the simulation dtype)."""
    if isinstance(node, (Affine, Linear)):
        weight_t = np.ascontiguousarray(np.asarray(node.weight, dtype=dtype).T)
        if isinstance(node, Affine):
            bias = np.asarray(node.bias, dtype=dtype)
            return lambda x: x @ weight_t + bias
        return lambda x: x @ weight_t
    if isinstance(node, Scale):
        scale = np.asarray(node.scale, dtype=dtype)
        return lambda x: x * scale
    if isinstance(node, (Conv1d, Conv2d)):
        return lambda x: convolve(x, node)
    if isinstance(node, SumPool2d):
        return lambda x: pool(x, node, average=False)
    if isinstance(node, AvgPool2d):
        return lambda x: pool(x, node, average=True)
    if isinstance(node, Flatten):
        return lambda x: flatten(x, node)
    if isinstance(node, Threshold):
        threshold = np.asarray(node.threshold, dtype=dtype)
        # H(x - threshold) with H(0) = 0: the same strict comparison as the neurons' spike test.
        return lambda x: (x > threshold).astype(dtype)
    raise TypeError(f"{type(node).__name__} is not a stateless operator")
