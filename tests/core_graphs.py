"""Small NIR graphs built in memory for the compiler's tests (no files involved)."""

import numpy as np
from hypothesis import strategies as st

from nirc.ir.nodes import (IF, LI, LIF, Affine, Conv2d, CubaLI, CubaLIF, Delay, Flatten, Input,
                           Linear, NIRGraph, Output, Scale, SumPool2d)


def a(x):
    return np.asarray(x, dtype=np.float64)


def lif(n=None, tau=0.01, thr=1.0, v_leak=0.0, v_reset=0.0, r=1.0):
    shape = () if n is None else (n,)
    return LIF(tau=np.full(shape, tau), r=np.full(shape, r), v_leak=np.full(shape, v_leak),
               v_threshold=np.full(shape, thr), v_reset=np.full(shape, v_reset))


def cuba(tau_syn=0.005, tau_mem=0.01, thr=0.3, w_in=1.0, v_reset=0.0, v_leak=0.0):
    return CubaLIF(tau_syn=a(tau_syn), tau_mem=a(tau_mem), r=a(1.0), v_leak=a(v_leak),
                   v_threshold=a(thr), v_reset=a(v_reset), w_in=a(w_in))


def mlp(seed=0, n_in=8, hidden=12, n_out=3, readout=False):
    rng = np.random.default_rng(seed)
    nodes = {
        "in": Input(shape=np.array([n_in])),
        "fc1": Affine(weight=rng.normal(0, 1.0, (hidden, n_in)), bias=rng.normal(0, 0.1, hidden)),
        "lif1": lif(tau=0.005, thr=0.5),
        "fc2": Linear(weight=rng.normal(0, 1.0, (n_out, hidden))),
        "out": Output(shape=np.array([n_out])),
    }
    if readout:
        nodes["lif2"] = LI(tau=a(0.02), r=a(1.0), v_leak=a(0.0))
    else:
        nodes["lif2"] = cuba()
    edges = (("in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "out"))
    return NIRGraph(nodes=nodes, edges=edges)


def recurrent(seed=0, n_in=6, hidden=10):
    rng = np.random.default_rng(seed)
    nodes = {
        "in": Input(shape=np.array([n_in])),
        "fc": Linear(weight=rng.normal(0, 1.5, (hidden, n_in))),
        "rlif": lif(tau=0.01, thr=0.4, v_leak=0.05, v_reset=-0.1),
        "rec": Linear(weight=rng.normal(0, 0.5, (hidden, hidden))),
        "out": Output(shape=np.array([hidden])),
    }
    edges = (("in", "fc"), ("fc", "rlif"), ("rlif", "rec"), ("rec", "rlif"), ("rlif", "out"))
    return NIRGraph(nodes=nodes, edges=edges)


def cnn(seed=0):
    rng = np.random.default_rng(seed)
    nodes = {
        "in": Input(shape=np.array([2, 8, 8])),
        "conv": Conv2d(weight=rng.normal(0, 0.8, (4, 2, 3, 3)), stride=np.array([1, 1]),
                       padding=1, dilation=np.array([1, 1]), groups=1, bias=np.full(4, 0.05)),
        "lif1": IF(r=np.full((4, 8, 8), 1.0), v_threshold=np.full((4, 8, 8), 0.002),
                   v_reset=np.zeros((4, 8, 8))),
        "pool": SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                          padding=np.array([0, 0])),
        "scale": Scale(scale=np.full((4, 4, 4), 0.5)),
        "flat": Flatten(start_dim=0, end_dim=-1),
        "fc": Affine(weight=rng.normal(0, 0.5, (5, 64)), bias=np.zeros(5)),
        "lif2": lif(tau=0.01, thr=0.3),
        "out": Output(shape=np.array([5])),
    }
    edges = (("in", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "scale"),
             ("scale", "flat"), ("flat", "fc"), ("fc", "lif2"), ("lif2", "out"))
    return NIRGraph(nodes=nodes, edges=edges)


def skip_and_delay(seed=0):
    """Two paths into one layer (one through a Delay), and a nested subgraph."""
    rng = np.random.default_rng(seed)
    inner = NIRGraph(nodes={"input": Input(shape=np.array([5])),
                            "w": Linear(weight=rng.normal(0, 1, (5, 5))),
                            "l": lif(5, thr=0.3),
                            "output": Output(shape=np.array([5]))},
                     edges=(("input", "w"), ("w", "l"), ("l", "output")))
    nodes = {
        "in": Input(shape=np.array([4])),
        "fa": Linear(weight=rng.normal(0, 1.5, (5, 4))),
        "block": inner,
        "fb": Linear(weight=rng.normal(0, 1.5, (5, 4))),
        "d": Delay(delay=np.full(5, 0.002)),
        "l2": lif(5, thr=0.4),
        "out": Output(shape=np.array([5])),
    }
    edges = (("in", "fa"), ("fa", "block"), ("block", "l2"), ("in", "fb"), ("fb", "d"),
             ("d", "l2"), ("l2", "out"))
    return NIRGraph(nodes=nodes, edges=edges)


def spikes(shape, steps=40, seed=1, rate=0.3, batch=None):
    rng = np.random.default_rng(seed)
    lead = (steps,) if batch is None else (steps, batch)
    return (rng.random((*lead, *shape)) < rate).astype(np.float64)


NEURONS = ["LIF", "CubaLIF", "IF"]


@st.composite
def random_graphs(draw):
    """Feed-forward stacks of 1-3 LIF/CubaLIF/IF layers, optionally behind a conv front, with
    an optional recurrent layer and an optional LI/CubaLI readout; weights from a drawn seed."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 7)) for _ in range(n_layers + 1)]
    kinds = [draw(st.sampled_from(NEURONS)) for _ in range(n_layers)]
    readout = draw(st.booleans())
    recurrent_at = draw(st.one_of(st.none(), st.integers(0, n_layers - 1)))
    edges = []
    if draw(st.booleans()):
        # A convolutional front: (C, H, W) input -> Conv2d -> IF -> Flatten -> the layers.
        c, h = draw(st.integers(1, 3)), draw(st.integers(3, 6))
        stride, padding = draw(st.integers(1, 2)), draw(st.sampled_from([0, 1, "same"]))
        if padding == "same":
            stride = 1
        conv = Conv2d(weight=rng.normal(0, 1.5, (2, c, 3, 3)), stride=np.array([stride] * 2),
                      padding=padding, dilation=np.array([1, 1]), groups=1,
                      bias=rng.normal(0, 0.1, 2))
        out_shape = conv.output_shape((c, h, h))
        nodes = {"in": Input(shape=np.array([c, h, h])), "conv": conv,
                 "cif": IF(r=np.full(out_shape, 200.0), v_threshold=np.full(out_shape, 0.5),
                           v_reset=np.zeros(out_shape)),
                 "flat": Flatten(start_dim=0, end_dim=-1)}
        edges += [("in", "conv"), ("conv", "cif"), ("cif", "flat")]
        sizes[0] = int(np.prod(out_shape))
        prev = "flat"
    else:
        nodes = {"in": Input(shape=np.array([sizes[0]]))}
        prev = "in"
    for k in range(n_layers):
        n, m = sizes[k + 1], sizes[k]
        w = rng.normal(0, 2.0, (n, m)) * (rng.random((n, m)) < 0.8)
        nodes[f"w{k}"] = Affine(weight=w, bias=rng.normal(0, 0.2, n)) if rng.random() < 0.5 \
            else Linear(weight=w)
        thr = rng.uniform(0.2, 1.0, n)
        reset = rng.uniform(-0.2, 0.1, n) * (rng.random() < 0.5)
        tau = rng.uniform(0.002, 0.02, n)
        kind = kinds[k]
        if kind == "LIF":
            node = LIF(tau=tau, r=a(rng.uniform(0.5, 2)), v_leak=a(rng.uniform(-0.1, 0.1)),
                       v_threshold=thr, v_reset=reset)
        elif kind == "CubaLIF":
            node = CubaLIF(tau_syn=rng.uniform(0.002, 0.01, n), tau_mem=tau, r=a(1.0),
                           v_leak=a(0.0), v_threshold=thr, v_reset=reset,
                           w_in=a(rng.uniform(0.5, 2)))
        else:
            node = IF(r=a(rng.uniform(50, 300)), v_threshold=thr, v_reset=reset)
        nodes[f"n{k}"] = node
        edges += [(prev, f"w{k}"), (f"w{k}", f"n{k}")]
        if recurrent_at == k:
            nodes[f"rec{k}"] = Linear(weight=rng.normal(0, 0.8, (n, n)))
            edges += [(f"n{k}", f"rec{k}"), (f"rec{k}", f"n{k}")]
        prev = f"n{k}"
    last = prev
    if readout:
        n = draw(st.integers(1, 4))
        nodes["wr"] = Linear(weight=rng.normal(0, 1.0, (n, sizes[-1])))
        nodes["ro"] = LI(tau=a(0.01), r=a(1.0), v_leak=a(0.0)) if rng.random() < 0.5 else \
            CubaLI(tau_syn=a(0.005), tau_mem=a(0.01), r=a(1.0), v_leak=a(0.0), w_in=a(1.0))
        edges += [(prev, "wr"), ("wr", "ro")]
        last, sizes = "ro", sizes + [n]
    nodes["out"] = Output(shape=np.array([sizes[-1]]))
    edges.append((last, "out"))
    return NIRGraph(nodes=nodes, edges=tuple(edges))
