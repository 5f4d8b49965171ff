"""Networks for multi-chip systems, shared by tests/test_multichip.py and benchmarks/bench_multichip.py.

- ``sinabs_cnn(side)``: a Sinabs-style spiking CNN (IF neurons as Sinabs exports
  its IAF layers; strided 3x3 convolutions, a linear readout). At side 64 it
  has 57,354 neurons and about 3.0M synapses: more synapse memory than one
  Loihi 2 chip has, so it needs two chips of loihi2_kapoho_point.
- ``recurrent_sparse(n, fan_in, connectivity)``: a random-sparse recurrent layer
  with an input and a readout, each neuron fed by ``fan_in`` neurons: near it on
  a 2-D sheet ("sheet", distance-dependent as in spatially embedded cortical and
  reservoir models) or anywhere ("uniform"); numbered in random order.
- ``chain(nodes)``: a chain of tiny Affine -> LIF pairs with ``nodes`` nodes in all,
  for graph-handling speed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nirc.ir.nodes import IF, LIF, Affine, Conv2d, Flatten, Input, NIRGraph, Output


def _if(shape, threshold: float = 1.0) -> IF:
    # r = 1/dt (dt 1 ms): v grows by the weighted input each step, as Sinabs' IAF does.
    return IF(r=np.full(shape, 1000.0), v_threshold=np.full(shape, threshold), v_reset=np.zeros(shape))


def sinabs_cnn(side: int = 64, channels: tuple[int, int, int] = (8, 16, 32), n_out: int = 10,
               kernel: int = 3, seed: int = 0) -> NIRGraph:
    """Input (2, S, S) -> conv KxK -> IF -> conv KxK stride 2 -> IF -> conv KxK stride 2 -> IF
    -> Flatten -> Linear -> IF -> Output (``n_out=0``: no readout, the last map is the output)."""
    rng = np.random.default_rng(seed)
    c1, c2, c3 = channels
    s2, s3 = side // 2, side // 4

    def conv(c_out, c_in, stride):
        return Conv2d(weight=rng.normal(0.15, 0.6 / kernel / np.sqrt(c_in), (c_out, c_in, kernel, kernel)),
                      stride=stride, padding=kernel // 2, dilation=1, groups=1, bias=np.zeros(c_out))

    flat = c3 * s3 * s3
    if n_out == 0:           # no dense readout (too wide for a SpiNNaker PE): the last map is output
        nodes = {"input": Input(shape=np.array([2, side, side])),
                 "conv1": conv(c1, 2, 1), "spk1": _if((c1, side, side)),
                 "conv2": conv(c2, c1, 2), "spk2": _if((c2, s2, s2)),
                 "conv3": conv(c3, c2, 2), "spk3": _if((c3, s3, s3)),
                 "output": Output(shape=np.array([c3, s3, s3]))}
        order = list(nodes)
        return NIRGraph(nodes=nodes, edges=tuple(zip(order, order[1:])))
    nodes = {
        "input": Input(shape=np.array([2, side, side])),
        "conv1": conv(c1, 2, 1), "spk1": _if((c1, side, side)),
        "conv2": conv(c2, c1, 2), "spk2": _if((c2, s2, s2)),
        "conv3": conv(c3, c2, 2), "spk3": _if((c3, s3, s3)),
        "flat": Flatten(start_dim=0, end_dim=-1, input_type=np.array([c3, s3, s3])),
        "fc": Affine(weight=rng.normal(0.0, 3.0 / np.sqrt(flat), (n_out, flat)),
                     bias=np.zeros(n_out)),
        "spk_out": _if((n_out,)),
        "output": Output(shape=np.array([n_out])),
    }
    order = list(nodes)
    return NIRGraph(nodes=nodes, edges=tuple(zip(order, order[1:])))


def _weights(rows, cols, shape, fan_in, rng, gain):
    values = rng.normal(0.2, 1.0, size=rows.size) * gain / np.sqrt(fan_in)
    m = sp.coo_array((values, (rows, cols)), shape=shape).tocsr()
    m.sum_duplicates()
    return m


# Connectivity of the recurrent layer (recurrent_matrices):
# - "sheet": neurons on a 2-D sheet, each fed by ``fan_in`` neurons drawn from a Gaussian of
#   width SHEET_SIGMA x the sheet's side around it (the distance-dependent connectivity of
#   spatially embedded cortical and reservoir models);
# - "uniform": each fed by ``fan_in`` neurons drawn uniformly (an Erdos-Renyi-like graph).
# Either way the neurons are numbered in a random order: the file says nothing of the
# structure, and a placement that finds it must find it in the synapses.
CONNECTIVITY = ("sheet", "uniform")
SHEET_SIGMA = 0.05


def recurrent_matrices(n: int, fan_in: int, n_in: int, n_out: int, rng,
                       connectivity: str = "sheet", sigma: float | None = None):
    """(input->hidden, hidden->hidden, hidden->readout) weights of recurrent_sparse, sparse.

    ``sigma``: the sheet's Gaussian width in neurons (None: SHEET_SIGMA x its side)."""
    if connectivity not in CONNECTIVITY:
        raise ValueError(f"connectivity must be one of {CONNECTIVITY}, got {connectivity!r}")
    rows = np.repeat(np.arange(n), fan_in)
    if connectivity == "uniform":
        cols = rng.integers(0, n, size=rows.size)
    else:
        side = int(np.ceil(np.sqrt(n)))
        height = -(-n // side)
        sigma = max(1.0, SHEET_SIGMA * side) if sigma is None else float(sigma)
        y = rows // side + np.rint(rng.normal(0.0, sigma, rows.size)).astype(np.int64)
        x = rows % side + np.rint(rng.normal(0.0, sigma, rows.size)).astype(np.int64)
        y, x = _reflect(y, height), _reflect(x, side)
        cols = np.minimum(y * side + x, n - 1)
    label = rng.permutation(n)              # the file's numbering of the sheet's neurons
    w_rec = _weights(label[rows], label[cols], (n, n), fan_in, rng, 0.5)
    w_in = _weights(np.repeat(np.arange(n), 8), rng.integers(0, n_in, size=8 * n), (n, n_in),
                    8, rng, 2.0)
    readout_fan_in = min(64, n)
    w_out = _weights(np.repeat(np.arange(n_out), readout_fan_in),
                     rng.integers(0, n, size=n_out * readout_fan_in), (n_out, n),
                     readout_fan_in, rng, 2.0)
    return w_in, w_rec, w_out


def _reflect(v: np.ndarray, size: int) -> np.ndarray:
    """Coordinates mirrored back into 0..size-1 (a sheet with edges, not a torus)."""
    v = np.abs(v)
    v = np.where(v >= size, 2 * (size - 1) - v, v)
    return np.clip(v, 0, size - 1)


def recurrent_sparse(n: int = 4096, fan_in: int = 64, n_in: int = 256, n_out: int = 10,
                     seed: int = 0, connectivity: str = "sheet") -> NIRGraph:
    """Input -> Affine -> LIF (recurrent through a sparse Affine) -> Affine -> LIF -> Output.

    The recurrent weights (``connectivity``: see CONNECTIVITY) are stored as a
    dense NIR Affine (NIR has no sparse node) of which only about ``fan_in``
    entries per row are non-zero.
    """
    rng = np.random.default_rng(seed)

    def lif(size):
        return LIF(tau=np.full(size, 0.02), r=np.ones(size), v_leak=np.zeros(size),
                   v_threshold=np.full(size, 1.0), v_reset=np.zeros(size))

    w_in, w_rec, w_out = (m.toarray() for m in
                          recurrent_matrices(n, fan_in, n_in, n_out, rng, connectivity))
    nodes = {
        "input": Input(shape=np.array([n_in])),
        "w_in": Affine(weight=w_in, bias=np.zeros(n)),
        "hidden": lif(n),
        "w_rec": Affine(weight=w_rec, bias=np.zeros(n)),
        "w_out": Affine(weight=w_out, bias=np.zeros(n_out)),
        "readout": lif(n_out),
        "output": Output(shape=np.array([n_out])),
    }
    edges = (("input", "w_in"), ("w_in", "hidden"), ("hidden", "w_rec"), ("w_rec", "hidden"),
             ("hidden", "w_out"), ("w_out", "readout"), ("readout", "output"))
    return NIRGraph(nodes=nodes, edges=edges)


# The chain's time step, stated in its metadata as an exporter that knows it writes it:
# without it nirc reads tau = 0.01 s with r = 1 as a Sinabs export (dt = 1 s, several
# spikes per step), where each layer's gain of about 1.6 multiplies the spike counts
# until they overflow; at 1 ms the LIFs (tau 10 ms) fire single spikes at a steady rate.
CHAIN_DT = 1e-3


def chain(n_nodes: int, width: int = 2, seed: int = 0) -> NIRGraph:
    """Input -> (Affine -> LIF) x k -> Output with ``n_nodes`` nodes in all (about), with
    metadata dt = CHAIN_DT (read with NIR's rules)."""
    rng = np.random.default_rng(seed)
    nodes = {"input": Input(shape=np.array([width]))}
    edges = []
    previous = "input"
    k = 0
    while len(nodes) < n_nodes - 1:
        a, l = f"a{k}", f"l{k}"
        nodes[a] = Affine(weight=rng.normal(0.8, 0.2, (width, width)), bias=np.zeros(width))
        nodes[l] = LIF(tau=np.full(width, 0.01), r=np.ones(width), v_leak=np.zeros(width),
                       v_threshold=np.full(width, 0.5), v_reset=np.zeros(width))
        edges += [(previous, a), (a, l)]
        previous = l
        k += 1
    nodes["output"] = Output(shape=np.array([width]))
    edges.append((previous, "output"))
    return NIRGraph(nodes=nodes, edges=tuple(edges), metadata={"dt": CHAIN_DT})
