"""unroll: every table's operator chain -> one sparse weight matrix (and a constant input).

Requires: a fused hardware network (tables with ``weights=None`` and
``kernel["ops"]``; populations with ``input_gain``).
Guarantees: every table has ``weights``, a scipy.sparse CSR array of shape
(target.size, source.size) holding input_gain * (the chain's linear map), with
explicit zeros removed and ``kernel`` cleared; every population's ``i_bias``
holds input_gain * (the biases of its chains carried through the operators
after them) and ``input_gain`` is gone. Convolutions (1-d and 2-d; stride,
padding including 'same', dilation, groups), SumPool2d, AvgPool2d, Scale,
Affine and Flatten are built as coordinate arrays with numpy broadcasting,
one vectorised block per kernel tap, never one Python step per synapse.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from nirc.discrete import StepDelay
from nirc.errors import ModelError
from nirc.hwnet import HardwareNetwork
from nirc.ir.nodes import (Affine, AvgPool2d, Flatten, Node, Scale, SumPool2d, _ConvNd,
                           conv_output_size)
from nirc.passes.context import PassContext


def conv_matrix(weight: np.ndarray, in_shape: tuple[int, ...], stride, padding, dilation,
                groups: int) -> tuple[sp.csr_array, tuple[int, ...]]:
    """The (out.size, in.size) matrix of an N-d cross-correlation (torch's Conv semantics).

    ``weight`` is (C_out, C_in/groups, *kernel); ``padding`` is ((lo, hi), ...) per axis.
    Returns the matrix and the output shape (C_out, *spatial_out).
    """
    c_out, c_in_g = weight.shape[:2]
    kernel = weight.shape[2:]
    spatial = in_shape[1:]
    nd = len(kernel)
    out_sp = tuple(conv_output_size(n, k, s, lo, hi, d)
                   for n, k, s, (lo, hi), d in zip(spatial, kernel, stride, padding, dilation))
    out_size = c_out * math.prod(out_sp)
    in_size = math.prod(in_shape)
    per_group = c_out // groups
    # Input channel of (output channel, local input channel): group offset + local index.
    co = np.arange(c_out)
    ci = (co // per_group)[:, None] * c_in_g + np.arange(c_in_g)[None, :]   # (C_out, C_in/g)
    rows, cols, vals = [], [], []
    out_grid = np.indices(out_sp).reshape(nd, -1)                           # (nd, P)
    n_sp_out, n_sp_in = math.prod(out_sp), math.prod(spatial)
    out_flat = np.arange(n_sp_out)
    for tap in np.ndindex(*kernel):
        w = weight[(slice(None), slice(None), *tap)]                          # (C_out, C_in/g)
        nz_co, nz_ci = np.nonzero(w)
        if nz_co.size == 0:
            continue
        pos = [out_grid[a] * stride[a] - padding[a][0] + tap[a] * dilation[a] for a in range(nd)]
        valid = np.ones(out_grid.shape[1], bool)
        in_flat = np.zeros(out_grid.shape[1], np.int64)
        for a in range(nd):
            valid &= (pos[a] >= 0) & (pos[a] < spatial[a])
            in_flat = in_flat * spatial[a] + pos[a]
        p_out, p_in = out_flat[valid], in_flat[valid]
        if p_out.size == 0:
            continue
        rows.append((nz_co[:, None] * n_sp_out + p_out[None, :]).ravel())
        cols.append((ci[nz_co, nz_ci][:, None] * n_sp_in + p_in[None, :]).ravel())
        vals.append(np.repeat(w[nz_co, nz_ci].astype(np.float64), p_out.size))
    # 32-bit coordinates where they fit (what scipy's CSR keeps anyway), each list freed as
    # it is joined: a 10^8-synapse layer then peaks at 16 bytes a synapse instead of 48.
    index = np.int32 if max(out_size, in_size) < 2**31 else np.int64
    r, c, v = (_joined(parts, dtype) for parts, dtype in ((rows, index), (cols, index),
                                                          (vals, np.float64)))
    m = sp.coo_array((v, (r, c)), shape=(out_size, in_size))
    del r, c, v
    m = m.tocsr()
    m.sum_duplicates()
    # The 64-bit indices the matrix always had (downstream arrays keep their dtypes).
    m.indices, m.indptr = m.indices.astype(np.int64), m.indptr.astype(np.int64)
    return m, (c_out, *out_sp)


def _joined(parts: list[np.ndarray], dtype) -> np.ndarray:
    """The concatenation of ``parts`` as ``dtype``, emptying the list as it goes."""
    out = np.empty(sum(p.size for p in parts), dtype=dtype)
    at = 0
    while parts:
        part = parts.pop(0)
        out[at:at + part.size] = part
        at += part.size
    return out


def pool_matrix(node, in_shape: tuple[int, ...]) -> sp.csr_array:
    """SumPool2d/AvgPool2d as a depthwise convolution with a constant kernel."""
    (kh, kw), stride, (ph, pw) = node.windows()
    c = in_shape[0]
    value = 1.0 / (kh * kw) if isinstance(node, AvgPool2d) else 1.0
    weight = np.full((c, 1, kh, kw), value)
    m, _ = conv_matrix(weight, in_shape, stride, ((ph, ph), (pw, pw)), (1, 1), groups=c)
    return m


def dense_csr(w: np.ndarray) -> sp.csr_array:
    """``sp.csr_array(w)`` of a dense matrix, made from its nonzeros (row-major) directly:
    scipy goes through a COO matrix, half of unroll on 10^5 small Affine nodes."""
    rows, cols = np.nonzero(w)
    # (scipy's index type for a matrix from dense: int32 unless a size needs more)
    index = np.int32 if max(rows.size, *w.shape) <= np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(w.shape[0] + 1, index)
    np.cumsum(np.count_nonzero(w, axis=1), out=indptr[1:])
    return sp.csr_array((w[rows, cols], cols.astype(index), indptr), shape=w.shape)


def op_matrix(name: str, node: Node, in_shape: tuple[int, ...]
              ) -> tuple[sp.csr_array | None, np.ndarray | None]:
    """(matrix or None for identity, bias vector or None) of one operator in a chain."""
    if isinstance(node, Affine):
        w = np.asarray(node.weight, np.float64)
        bias = np.broadcast_to(np.asarray(node.bias, np.float64), (w.shape[0],))
        return dense_csr(w), (bias if np.any(bias) else None)
    if isinstance(node, Scale):
        return sp.diags_array(np.asarray(node.scale, np.float64).reshape(-1)).tocsr(), None
    if isinstance(node, _ConvNd):
        shape = in_shape if len(in_shape) == node.spatial_dims + 1 else None
        if shape is None:
            raise ModelError(f"expects a (C, {'N' if node.spatial_dims == 1 else 'H, W'}) input, "
                             f"got {list(in_shape)}", node=name)
        m, out_shape = conv_matrix(np.asarray(node.weight, np.float64), shape, node.stride_t(),
                                   node.padding_lohi(), node.dilation_t(), int(node.groups))
        bias = None
        if node.bias is not None and np.any(node.bias):
            per_channel = np.broadcast_to(np.asarray(node.bias, np.float64), (out_shape[0],))
            bias = np.repeat(per_channel, math.prod(out_shape[1:]))
        return m, bias
    if isinstance(node, (SumPool2d, AvgPool2d)):
        return pool_matrix(node, in_shape), None
    if isinstance(node, (Flatten, StepDelay)):
        return None, None
    raise ModelError(f"{node.nir_type} cannot be part of a synaptic table", node=name)


def chain_matrix(ops, source_size: int
                 ) -> tuple[sp.csr_array, dict[tuple[str, ...], np.ndarray]]:
    """Compose a chain's operators: (matrix target x source, constant terms).

    Constant terms (biases carried through the operators after them) are keyed by
    the names of the operators from the biased one to the end, so paths that share
    a biased operator and everything after it count its bias once.
    """
    m = None
    names = tuple(op[0] for op in ops)
    biases: dict[tuple[str, ...], np.ndarray] = {}
    for k, (name, node, in_shape) in enumerate(ops):
        a, b = op_matrix(name, node, in_shape)
        if a is not None:
            m = a if m is None else sp.csr_array(a @ m)
            biases = {key: a @ vec for key, vec in biases.items()}
        if b is not None:
            biases[names[k:]] = b
    if m is None:
        m = sp.eye_array(source_size, format="csr")
    # (a copy of a matrix made here costs as much as making it, 10^5 times in a chain)
    return (m if isinstance(m, sp.csr_array) else sp.csr_array(m)), biases


def unroll(net: HardwareNetwork, ctx: PassContext) -> HardwareNetwork:
    """Materialise every pending table as a sparse matrix and fold in the input gains."""
    i_bias = {name: np.array(p.params["i_bias"], np.float64) for name, p in net.populations.items()}
    tables = []
    counted: set[tuple[str, tuple[str, ...]]] = set()
    for t in net.tables:
        if t.weights is not None:
            tables.append(t)
            continue
        target = net.populations[t.target]
        gain = target.params["input_gain"]
        m, biases = chain_matrix(t.kernel["ops"], net.size_of(t.source))
        if m.shape != (target.size, net.size_of(t.source)):
            raise ModelError(f"the chain from '{t.source}' produces {m.shape[0]} values for "
                             f"{target.size} neurons", node=t.target)
        w = sp.csr_array((m.data * np.repeat(gain, np.diff(m.indptr)), m.indices, m.indptr),
                         shape=m.shape)
        w.eliminate_zeros()
        w.sort_indices()
        for key, vec in biases.items():
            if (t.target, key) not in counted:
                counted.add((t.target, key))
                i_bias[t.target] += gain * vec
        tables.append(t.with_(weights=w, kernel=None))
    populations = {}
    for name, p in net.populations.items():
        params = {k: v for k, v in p.params.items() if k != "input_gain"}
        params["i_bias"] = i_bias[name]
        populations[name] = p.with_(params=params)
    ctx.report["unroll"] = {"synapses": int(sum(t.nnz for t in tables))}
    return net.with_(tables=tuple(tables), populations=populations)
