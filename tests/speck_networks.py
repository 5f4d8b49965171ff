"""Small NIR graphs for the Speck tests, built from nirc's own node classes.

``chain(...)`` wires a list of (name, node) pairs in sequence between an Input
and an Output; the helpers make the nodes with seeded random weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nirc.ir.nodes import (IF, LIF, Affine, AvgPool2d, Conv2d, Flatten, Input, NIRGraph, Output,
                           SumPool2d)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def conv(rng, c_out, c_in, k, stride=1, padding=0, bias=True, scale=1.0, positive=False):
    w = rng.normal(size=(c_out, c_in, k, k)) * scale
    if positive:
        w = np.abs(w)
    b = (rng.normal(size=c_out) * 0.1 * scale) if bias else None
    return Conv2d(weight=w, stride=np.array([stride, stride]), padding=np.array([padding, padding]),
                  dilation=np.array([1, 1]), groups=1, bias=b)


def iaf(shape, threshold=1.0):
    return IF(r=np.ones(shape), v_threshold=np.full(shape, threshold), v_reset=np.zeros(shape))


def lif(shape, tau, threshold=1.0):
    return LIF(tau=np.full(shape, tau), r=np.ones(shape), v_leak=np.zeros(shape),
               v_threshold=np.full(shape, threshold), v_reset=np.zeros(shape))


def sumpool(k):
    return SumPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]),
                     padding=np.array([0, 0]))


def avgpool(k):
    return AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([k, k]),
                     padding=np.array([0, 0]))


def flatten():
    return Flatten(start_dim=0, end_dim=-1)


def affine(rng, n_out, n_in, scale=1.0):
    return Affine(weight=rng.normal(size=(n_out, n_in)) * scale,
                  bias=rng.normal(size=n_out) * 0.1 * scale)


def graph(input_shape, nodes: dict, edges: list[tuple[str, str]], output_shape) -> NIRGraph:
    all_nodes = {"input": Input(shape=np.array(input_shape)), **nodes,
                 "output": Output(shape=np.array(output_shape))}
    g = NIRGraph(nodes=all_nodes, edges=tuple(edges))
    g.validate()
    return g


def chain(input_shape, named_nodes: list[tuple[str, object]], output_shape) -> NIRGraph:
    names = ["input"] + [n for n, _ in named_nodes] + ["output"]
    return graph(input_shape, dict(named_nodes), list(zip(names[:-1], names[1:])), output_shape)


def small_cnn(seed=0, c1=4, c2=8, size=16, n_out=10, pool=2, stride=1, padding=1, k=3):
    """Input (2, size, size) -> conv/IF -> pool -> conv/IF -> pool -> flatten -> affine/IF."""
    rng = np.random.default_rng(seed)
    h1 = (size + 2 * padding - k) // stride + 1
    p1 = h1 // pool
    h2 = (p1 + 2 * padding - k) // 1 + 1
    p2 = h2 // pool
    return chain((2, size, size), [
        ("conv1", conv(rng, c1, 2, k, stride, padding)), ("if1", iaf((c1, h1, h1))),
        ("pool1", sumpool(pool)),
        ("conv2", conv(rng, c2, c1, k, 1, padding, scale=0.5)), ("if2", iaf((c2, h2, h2))),
        ("pool2", sumpool(pool)), ("flat", flatten()),
        ("fc", affine(rng, n_out, c2 * p2 * p2, scale=0.3)), ("if3", iaf((n_out,))),
    ], (n_out,))


def residual_cnn(seed=0, c=4, size=8):
    """conv1/IF1 feeds conv2/IF2 and (skip) conv3; conv3 also gets IF2: a two-source merge."""
    rng = np.random.default_rng(seed)
    nodes = {"conv1": conv(rng, c, 2, 3, padding=1), "if1": iaf((c, size, size)),
             "conv2": conv(rng, c, c, 3, padding=1, scale=0.5), "if2": iaf((c, size, size)),
             "conv3": conv(rng, c, c, 3, padding=1, scale=0.5), "if3": iaf((c, size, size))}
    edges = [("input", "conv1"), ("conv1", "if1"), ("if1", "conv2"), ("conv2", "if2"),
             ("if1", "conv3"), ("if2", "conv3"), ("conv3", "if3"), ("if3", "output")]
    return graph((2, size, size), nodes, edges, (c, size, size))


def random_events(rng, steps, shape, rate=0.1, max_count=1):
    counts = rng.binomial(max_count, rate, size=(steps, *shape))
    return counts.astype(np.int64)


def compile_for_speck(g: NIRGraph, target: str = "speck2f", dt: float = 1.0, reset: str = "nir",
                      low_threshold: str | None = None):
    """(quantized hwnet, placement, config dict, quantize report) through the Speck passes.

    ``low_threshold`` None keeps the target's membrane floor (backend_options.neuron)."""
    import json

    from nirc.neuron_models import get_model
    from nirc.partition import partition
    from nirc.passes.context import PassContext
    from nirc.passes.registry import PASSES
    from nirc.target import load_target
    from nirc.targets.speck.assign import CoreAssignment
    from nirc.targets.speck.chip import SpeckChip
    from nirc.targets.speck.config import build_config, dumps

    t = load_target(target)
    ctx = PassContext(model=get_model(t.neuron_model), dt=dt, target_name=target)
    ctx.options = {"speck_reset": reset}
    if low_threshold is not None:
        ctx.options["speck_low_threshold"] = low_threshold
    stage = g
    for name in t.passes:
        stage = PASSES[name](stage, ctx)
    placement = partition(stage, t)
    assignment = CoreAssignment({b.population: b.core for b in placement.blocks}, {}, 0, True)
    config = json.loads(dumps(build_config(stage, assignment, SpeckChip.from_mapping(t))))
    return stage, placement, config, ctx.report
