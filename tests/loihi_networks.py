"""Small NIR networks for the Loihi oracle: an MLP, a CNN, a recurrent network, a non-spiking readout,
a network with a synaptic delay of several steps, and two graphs whose paths into one layer differ
in length (a skip connection from the input, a residual block), and an MLP whose neurons have
individual time constants (several neuron profiles per layer).

Shared by tests/test_lava_oracle.py and benchmarks/bench_lava.py. Weights are
drawn at a scale that makes every layer spike at moderate rates for Bernoulli
input, so the comparison exercises spikes, resets and the weight exponents,
not just silent decays. Time constants are in seconds (dt = 1 ms).
"""

from __future__ import annotations

import numpy as np

from nirc.ir.nodes import Affine, Conv2d, CubaLI, CubaLIF, Delay, Flatten, Input, LIF, NIRGraph, Output, SumPool2d


def cuba_lif(shape: tuple[int, ...], tau_syn=5e-3, tau_mem=10e-3, threshold=1.0) -> CubaLIF:
    ones = np.ones(shape)
    return CubaLIF(tau_syn=ones * tau_syn, tau_mem=ones * tau_mem, r=ones * (tau_mem / 1e-3),
                   v_leak=np.zeros(shape), v_threshold=ones * threshold,
                   v_reset=np.zeros(shape), w_in=ones)


def _affine(n_out: int, n_in: int, rng: np.random.Generator, gain: float) -> Affine:
    return Affine(weight=rng.normal(0.0, gain / np.sqrt(n_in), size=(n_out, n_in)),
                  bias=np.zeros(n_out))


def mlp(n_in: int = 24, n_hidden: int = 32, n_out: int = 10, seed: int = 0) -> NIRGraph:
    """Input -> Affine -> CubaLIF -> Affine -> CubaLIF -> Output."""
    rng = np.random.default_rng(seed)
    nodes = {"input": Input(shape=np.array([n_in])),
             "fc1": _affine(n_hidden, n_in, rng, 3.0), "lif1": cuba_lif((n_hidden,)),
             "fc2": _affine(n_out, n_hidden, rng, 4.0), "lif2": cuba_lif((n_out,)),
             "output": Output(shape=np.array([n_out]))}
    order = list(nodes)
    return NIRGraph(nodes=nodes, edges=tuple(zip(order, order[1:])))


def cnn(channels: int = 2, size: int = 8, features: int = 4, n_out: int = 6, seed: int = 1) -> NIRGraph:
    """Input (C,H,W) -> Conv2d 3x3 pad 1 -> CubaLIF -> SumPool2d 2 -> Flatten -> Affine -> CubaLIF -> Output."""
    rng = np.random.default_rng(seed)
    pooled = size // 2
    flat = features * pooled * pooled
    nodes = {
        "input": Input(shape=np.array([channels, size, size])),
        "conv": Conv2d(weight=rng.normal(0.0, 1.5 / np.sqrt(9 * channels), size=(features, channels, 3, 3)),
                       stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(features),
                       input_shape=np.array([size, size])),
        "lif1": cuba_lif((features, size, size)),
        "pool": SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": Flatten(start_dim=0, end_dim=-1, input_type=np.array([features, pooled, pooled])),
        "fc": _affine(n_out, flat, rng, 4.0),
        "lif2": cuba_lif((n_out,)),
        "output": Output(shape=np.array([n_out])),
    }
    order = list(nodes)
    return NIRGraph(nodes=nodes, edges=tuple(zip(order, order[1:])))


def recurrent(n_in: int = 12, n_hidden: int = 24, n_out: int = 4, seed: int = 2) -> NIRGraph:
    """Input -> Affine -> CubaLIF (with an Affine back onto itself) -> Affine -> LIF -> Output."""
    rng = np.random.default_rng(seed)
    nodes = {"input": Input(shape=np.array([n_in])),
             "fc_in": _affine(n_hidden, n_in, rng, 3.0),
             "lif_rec": cuba_lif((n_hidden,)),
             "fc_rec": _affine(n_hidden, n_hidden, rng, 2.0),
             "fc_out": _affine(n_out, n_hidden, rng, 4.0),
             "lif_out": LIF(tau=np.full(n_out, 10e-3), r=np.full(n_out, 10.0), v_leak=np.zeros(n_out),
                            v_threshold=np.ones(n_out), v_reset=np.zeros(n_out)),
             "output": Output(shape=np.array([n_out]))}
    edges = (("input", "fc_in"), ("fc_in", "lif_rec"), ("lif_rec", "fc_rec"), ("fc_rec", "lif_rec"),
             ("lif_rec", "fc_out"), ("fc_out", "lif_out"), ("lif_out", "output"))
    return NIRGraph(nodes=nodes, edges=edges)


def readout(n_in: int = 16, n_hidden: int = 20, n_out: int = 5, seed: int = 3) -> NIRGraph:
    """Input -> Affine -> CubaLIF -> Affine -> CubaLI (a non-spiking readout: its voltage is the output)."""
    rng = np.random.default_rng(seed)
    ones = np.ones(n_out)
    nodes = {"input": Input(shape=np.array([n_in])),
             "fc1": _affine(n_hidden, n_in, rng, 3.0), "lif": cuba_lif((n_hidden,)),
             "fc2": _affine(n_out, n_hidden, rng, 2.0),
             "li": CubaLI(tau_syn=ones * 5e-3, tau_mem=ones * 20e-3, r=ones * 20.0, v_leak=np.zeros(n_out),
                          w_in=ones),
             "output": Output(shape=np.array([n_out]))}
    order = list(nodes)
    return NIRGraph(nodes=nodes, edges=tuple(zip(order, order[1:])))


def delayed(n_in: int = 16, n_hidden: int = 20, n_out: int = 6, delay_s: float = 3e-3, seed: int = 4) -> NIRGraph:
    """Input -> Affine -> CubaLIF -> Delay -> Affine -> CubaLIF -> Output: a synaptic delay of several steps."""
    rng = np.random.default_rng(seed)
    nodes = {"input": Input(shape=np.array([n_in])),
             "fc1": _affine(n_hidden, n_in, rng, 3.0), "lif1": cuba_lif((n_hidden,)),
             "delay": Delay(delay=np.full(n_hidden, delay_s)),
             "fc2": _affine(n_out, n_hidden, rng, 4.0), "lif2": cuba_lif((n_out,)),
             "output": Output(shape=np.array([n_out]))}
    order = list(nodes)
    return NIRGraph(nodes=nodes, edges=tuple(zip(order, order[1:])))


def skip(n_in: int = 16, n_hidden: int = 24, n_out: int = 10, depth: int = 2, seed: int = 5,
         gain: float = 3.0) -> NIRGraph:
    """Input -> (Affine -> CubaLIF) x depth -> Affine -> merge CubaLIF -> Output, plus an Affine
    from the input straight into the merge layer: its paths are 1 and depth + 1 tables long."""
    rng = np.random.default_rng(seed)
    nodes: dict = {"input": Input(shape=np.array([n_in]))}
    edges = []
    previous, width = "input", n_in
    for k in range(depth):
        nodes[f"fc{k}"] = _affine(n_hidden, width, rng, gain)
        nodes[f"lif{k}"] = cuba_lif((n_hidden,))
        edges += [(previous, f"fc{k}"), (f"fc{k}", f"lif{k}")]
        previous, width = f"lif{k}", n_hidden
    nodes["fc_main"] = _affine(n_out, width, rng, gain)
    nodes["fc_skip"] = _affine(n_out, n_in, rng, gain)
    nodes["merge"] = cuba_lif((n_out,))
    nodes["output"] = Output(shape=np.array([n_out]))
    edges += [(previous, "fc_main"), ("fc_main", "merge"), ("input", "fc_skip"),
              ("fc_skip", "merge"), ("merge", "output")]
    return NIRGraph(nodes=nodes, edges=tuple(edges))


def residual(n_in: int = 16, width: int = 24, n_out: int = 8, seed: int = 6,
             gain: float = 3.0) -> NIRGraph:
    """A residual block: stem -> (Affine -> CubaLIF -> Affine) + identity -> CubaLIF -> readout
    layer. The merge layer ``res`` sums a two-table path and the one-table shortcut from the stem."""
    rng = np.random.default_rng(seed)
    nodes = {"input": Input(shape=np.array([n_in])),
             "fc_stem": _affine(width, n_in, rng, gain), "stem": cuba_lif((width,)),
             "fc_a": _affine(width, width, rng, gain), "block": cuba_lif((width,)),
             "fc_b": _affine(width, width, rng, gain),
             "shortcut": Affine(weight=np.eye(width) * 0.6, bias=np.zeros(width)),
             "res": cuba_lif((width,)),
             "fc_out": _affine(n_out, width, rng, gain), "lif_out": cuba_lif((n_out,)),
             "output": Output(shape=np.array([n_out]))}
    edges = (("input", "fc_stem"), ("fc_stem", "stem"), ("stem", "fc_a"), ("fc_a", "block"),
             ("block", "fc_b"), ("fc_b", "res"), ("stem", "shortcut"), ("shortcut", "res"),
             ("res", "fc_out"), ("fc_out", "lif_out"), ("lif_out", "output"))
    return NIRGraph(nodes=nodes, edges=edges)


def profiled(n_in: int = 16, n_hidden: int = 24, n_out: int = 6, seed: int = 7,
             tau_mems=(8e-3, 10e-3, 20e-3)) -> NIRGraph:
    """An MLP whose neurons have individual membrane time constants (as trained time constants
    are), drawn from ``tau_mems`` per neuron: each layer needs one neuron profile per value."""
    rng = np.random.default_rng(seed)

    def layer(n):
        node = cuba_lif((n,))
        tau = rng.choice(np.asarray(tau_mems), n)
        return CubaLIF(tau_syn=node.tau_syn, tau_mem=tau, r=tau / 1e-3, v_leak=node.v_leak,
                       v_threshold=node.v_threshold, v_reset=node.v_reset, w_in=node.w_in)

    nodes = {"input": Input(shape=np.array([n_in])),
             "fc1": _affine(n_hidden, n_in, rng, 3.0), "lif1": layer(n_hidden),
             "fc2": _affine(n_out, n_hidden, rng, 4.0), "lif2": layer(n_out),
             "output": Output(shape=np.array([n_out]))}
    order = list(nodes)
    return NIRGraph(nodes=nodes, edges=tuple(zip(order, order[1:])))


NETWORKS = {"mlp": mlp, "cnn": cnn, "recurrent": recurrent, "readout": readout, "delayed": delayed,
            "skip": skip, "residual": residual, "profiled": profiled}


def bernoulli_input(graph: NIRGraph, steps: int, rate: float = 0.3, seed: int = 0,
                    batch: int | None = None) -> dict[str, np.ndarray]:
    """Binary spike input for every Input node: (T, *shape), or (B, T, *shape) with ``batch``."""
    rng = np.random.default_rng(seed)
    lead = (steps,) if batch is None else (batch, steps)
    return {name: (rng.random(lead + tuple(int(d) for d in node.shape)) < rate).astype(np.int8)
            for name, node in graph.inputs().items()}
