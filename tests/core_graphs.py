"""Small NIR graphs built in memory for the compiler's tests (no files involved)."""

import numpy as np

from nirc.ir.nodes import (LI, LIF, Affine, Conv2d, CubaLIF, Delay, Flatten, IF, Input, Linear,
                           NIRGraph, Output, Scale, SumPool2d)


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
