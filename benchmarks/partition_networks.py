"""Synthetic hardware networks for the partition benchmark (random sparse tables, fixed seeds).

Each builder returns a HardwareNetwork whose connectivity has the shape of a
common architecture: a dense MLP, an unrolled CNN, topographic recurrent
layers, one very wide layer and a deep stack. Weights are all 1: the
partitioner looks only at which synapses exist.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nirc.hwnet import HardwareNetwork, InputPort, OutputPort, Population, SynapseTable


def _population(name: str, shape: tuple[int, ...]) -> Population:
    return Population(name, shape, {}, provenance=(name,))


def _random_table(source: str, target: str, n_src: int, n_dst: int, density: float,
                  rng: np.random.Generator, delay: int = 1) -> SynapseTable:
    weights = sp.random_array((n_dst, n_src), density=density, rng=rng, format="csr",
                              data_sampler=lambda size: np.ones(size))
    return SynapseTable(source, target, sp.csr_array(weights), delay=delay, provenance=(target,))


def _banded_table(source: str, target: str, n_src: int, n_dst: int, width: int, density: float,
                  rng: np.random.Generator, delay: int = 1) -> SynapseTable:
    """Topographic: target i connects to sources near i * n_src / n_dst (each with probability density)."""
    centre = (np.arange(n_dst) * n_src // n_dst)[:, None]
    cols = centre + np.arange(-width, width + 1)[None, :]
    rows = np.broadcast_to(np.arange(n_dst)[:, None], cols.shape)
    keep = (cols >= 0) & (cols < n_src) & (rng.random(cols.shape) < density)
    weights = sp.csr_array((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(n_dst, n_src))
    return SynapseTable(source, target, weights, delay=delay, provenance=(target,))


def conv_table(source: str, target: str, in_shape: tuple[int, int, int], out_channels: int,
               kernel: int, stride: int, padding: int, rng: np.random.Generator) -> tuple[SynapseTable, tuple]:
    """An unrolled Conv2d (C, H, W layout, flat C-order indices), vectorised."""
    c_in, h, w = in_shape
    h_out = (h + 2 * padding - kernel) // stride + 1
    w_out = (w + 2 * padding - kernel) // stride + 1
    co, oy, ox, ci, ky, kx = np.meshgrid(np.arange(out_channels), np.arange(h_out), np.arange(w_out),
                                         np.arange(c_in), np.arange(kernel), np.arange(kernel),
                                         indexing="ij")
    iy = oy * stride - padding + ky
    ix = ox * stride - padding + kx
    keep = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    rows = ((co * h_out + oy) * w_out + ox)[keep]
    cols = ((ci * h + iy) * w + ix)[keep]
    n_out = out_channels * h_out * w_out
    weights = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(n_out, c_in * h * w))
    return SynapseTable(source, target, weights, provenance=(target,)), (out_channels, h_out, w_out)


def _network(inputs, populations, tables, output: str) -> HardwareNetwork:
    return HardwareNetwork(
        neuron_model="float", dt=1e-3,
        inputs={i.name: i for i in inputs},
        populations={p.name: p for p in populations},
        tables=tuple(tables),
        outputs={"out": OutputPort("out", output, shape=next(p.shape for p in populations if p.name == output))})


def mlp(seed: int = 0) -> HardwareNetwork:
    rng = np.random.default_rng(seed)
    sizes = [("fc1", 1024), ("fc2", 512), ("fc3", 10)]
    pops = [_population(n, (s,)) for n, s in sizes]
    tables = [_random_table("in", "fc1", 784, 1024, 0.25, rng),
              _random_table("fc1", "fc2", 1024, 512, 0.25, rng),
              _random_table("fc2", "fc3", 512, 10, 1.0, rng)]
    return _network([InputPort("in", (784,))], pops, tables, "fc3")


def cnn(seed: int = 0) -> HardwareNetwork:
    rng = np.random.default_rng(seed)
    t1, s1 = conv_table("in", "conv1", (2, 32, 32), 4, 3, 1, 1, rng)
    t2, s2 = conv_table("conv1", "conv2", s1, 8, 3, 2, 1, rng)
    t3, s3 = conv_table("conv2", "conv3", s2, 8, 3, 1, 1, rng)
    fc = _random_table("conv3", "fc", int(np.prod(s3)), 10, 0.5, rng)
    pops = [_population("conv1", s1), _population("conv2", s2), _population("conv3", s3),
            _population("fc", (10,))]
    return _network([InputPort("in", (2, 32, 32))], pops, [t1, t2, t3, fc], "fc")


def recurrent(seed: int = 0) -> HardwareNetwork:
    """Two topographic recurrent layers (local recurrence, local feed-forward) and a readout."""
    rng = np.random.default_rng(seed)
    n = 2048
    tables = [_banded_table("in", "rec1", 128, n, 4, 0.5, rng),
              _banded_table("rec1", "rec1", n, n, 24, 0.5, rng),
              _banded_table("rec1", "rec2", n, n, 24, 0.5, rng),
              _banded_table("rec2", "rec2", n, n, 24, 0.5, rng),
              _random_table("rec2", "readout", n, 10, 0.2, rng)]
    pops = [_population("rec1", (n,)), _population("rec2", (n,)), _population("readout", (10,))]
    return _network([InputPort("in", (128,))], pops, tables, "readout")


def wide(seed: int = 0) -> HardwareNetwork:
    rng = np.random.default_rng(seed)
    tables = [_random_table("in", "hidden", 256, 20000, 0.02, rng),
              _random_table("hidden", "out", 20000, 100, 0.01, rng)]
    pops = [_population("hidden", (20000,)), _population("out", (100,))]
    return _network([InputPort("in", (256,))], pops, tables, "out")


def deep(seed: int = 0) -> HardwareNetwork:
    rng = np.random.default_rng(seed)
    layers = [f"l{i}" for i in range(16)]
    tables = [_random_table("in", layers[0], 128, 384, 0.1, rng)]
    tables += [_random_table(a, b, 384, 384, 0.1, rng) for a, b in zip(layers, layers[1:])]
    pops = [_population(name, (384,)) for name in layers]
    return _network([InputPort("in", (128,))], pops, tables, layers[-1])


NETWORKS = {"mlp": mlp, "cnn": cnn, "recurrent": recurrent, "wide": wide, "deep": deep}
