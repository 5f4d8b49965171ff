"""Small NIR graphs covering every node type, shared by the NIR I/O tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from nirc.ir.nodes import (AvgPool2d, Affine, Conv1d, Conv2d, CubaLI, CubaLIF, Delay, Flatten, I,
                           IF, Input, LI, LIF, Linear, NIRGraph, Node, Output, Scale, SumPool2d,
                           Threshold)


def chain(node: Node, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
          **metadata: Any) -> NIRGraph:
    """Input -> node -> Output."""
    return NIRGraph(nodes={"input": Input(shape=np.array(in_shape)), "node": node,
                           "output": Output(shape=np.array(out_shape))},
                    edges=(("input", "node"), ("node", "output")), metadata=metadata)


def every_node_type() -> dict[str, NIRGraph]:
    """One graph per NIR node type, named by the type; parameters are distinct random values."""
    rng = np.random.default_rng(7)

    def vec(n: int = 4, low: float = 0.1, high: float = 2.0, dtype=np.float64) -> np.ndarray:
        return rng.uniform(low, high, size=n).astype(dtype)

    lif = LIF(tau=vec(), r=vec(), v_leak=vec(), v_threshold=vec(), v_reset=vec())
    inner = NIRGraph(nodes={"input": Input(shape=np.array([4])), "lif": lif,
                            "output": Output(shape=np.array([4]))},
                     edges=(("input", "lif"), ("lif", "output")),
                     metadata={"role": "hidden layer"})
    nested = NIRGraph(
        nodes={"input": Input(shape=np.array([3])),
               "fc": Affine(weight=rng.normal(size=(4, 3)).astype(np.float32),
                            bias=rng.normal(size=4).astype(np.float32),
                            metadata={"source": "fc1", "init": {"scheme": "normal", "seed": 7}}),
               "sub": inner,
               "output": Output(shape=np.array([4]))},
        edges=(("input", "fc"), ("fc", "sub"), ("sub", "output")),
        metadata={"dt": 1e-3, "exporter": {"name": "test", "version": [1, 2]},
                  "labels": ["a", "b"]})
    return {
        "Input": chain(Scale(scale=vec()), (4,), (4,)),
        "Output": chain(Threshold(threshold=vec()), (4,), (4,)),
        "Affine": chain(Affine(weight=rng.normal(size=(5, 3)), bias=rng.normal(size=5)),
                        (3,), (5,)),
        "Linear": chain(Linear(weight=rng.normal(size=(2, 3)).astype(np.float32)), (3,), (2,)),
        "Scale": chain(Scale(scale=vec()), (4,), (4,)),
        "Conv1d": chain(Conv1d(weight=rng.normal(size=(3, 2, 3)), stride=1, padding=1,
                               dilation=1, groups=1, bias=rng.normal(size=3),
                               input_shape=np.array([10])), (2, 10), (3, 10)),
        "Conv2d": chain(Conv2d(weight=rng.normal(size=(4, 2, 3, 3)), stride=(2, 1),
                               padding=(1, 0), dilation=(1, 2), groups=1,
                               bias=rng.normal(size=4), input_shape=np.array([6, 6])),
                        (2, 6, 6), (4, 3, 2)),
        # nir's type check ignores groups (it expects weight.shape[1] input channels).
        "Conv2d_grouped": chain(Conv2d(weight=rng.normal(size=(4, 1, 3, 3)), stride=1,
                                       padding="same", dilation=1, groups=2,
                                       bias=rng.normal(size=4), input_shape=np.array([5, 5])),
                                (2, 5, 5), (4, 5, 5)),
        "SumPool2d": chain(SumPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)),
                           (2, 4, 4), (2, 2, 2)),
        "AvgPool2d": chain(AvgPool2d(kernel_size=(2, 2), stride=(1, 1), padding=(0, 0)),
                           (2, 3, 3), (2, 2, 2)),
        "Flatten": chain(Flatten(start_dim=0, end_dim=-1, input_type=np.array([2, 3, 3])),
                         (2, 3, 3), (18,)),
        "Delay": chain(Delay(delay=vec()), (4,), (4,)),
        "Threshold": chain(Threshold(threshold=vec()), (4,), (4,)),
        "I": chain(I(r=vec()), (4,), (4,)),
        "IF": chain(IF(r=vec(), v_threshold=vec(), v_reset=vec()), (4,), (4,)),
        "LI": chain(LI(tau=vec(), r=vec(), v_leak=vec()), (4,), (4,)),
        "LIF": chain(lif, (4,), (4,), note="lif"),
        "CubaLI": chain(CubaLI(tau_syn=vec(), tau_mem=vec(), r=vec(), v_leak=vec(),
                               w_in=vec()), (4,), (4,)),
        "CubaLIF": chain(CubaLIF(tau_syn=vec(dtype=np.float32), tau_mem=vec(dtype=np.float32),
                                 r=vec(dtype=np.float32), v_leak=vec(dtype=np.float32),
                                 v_threshold=vec(dtype=np.float32),
                                 v_reset=vec(dtype=np.float32), w_in=vec(dtype=np.float32)),
                         (4,), (4,)),
        "NIRGraph": nested,
    }


def assert_same_value(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict) or isinstance(b, dict):
        assert isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_same_value(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, str) or isinstance(b, str):
        assert a == b, where
    elif isinstance(a, (list, tuple)) and a and isinstance(a[0], str):
        assert list(a) == list(b), where
    else:
        x, y = np.asarray(a), np.asarray(b)
        assert x.shape == y.shape and np.array_equal(x, y), f"{where}: {x!r} != {y!r}"


def assert_same_graph(a: NIRGraph, b: NIRGraph, where: str = "graph") -> None:
    """Same nodes, types, parameters (exact values and float dtypes), edges and metadata."""
    assert list(a.nodes) == list(b.nodes) or sorted(a.nodes) == sorted(b.nodes), where
    assert sorted(a.edges) == sorted(b.edges), where
    assert_same_value(dict(a.metadata), dict(b.metadata), f"{where}.metadata")
    for name, x in a.nodes.items():
        y = b.nodes[name]
        assert type(x) is type(y), f"{where}.{name}: {type(x).__name__} != {type(y).__name__}"
        assert_same_value(dict(x.metadata), dict(y.metadata), f"{where}.{name}.metadata")
        if isinstance(x, NIRGraph):
            assert_same_graph(x, y, f"{where}.{name}")
            continue
        for field, value in x.params().items():
            other = y.params()[field]
            assert_same_value(value, other, f"{where}.{name}.{field}")
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                assert other.dtype == value.dtype, f"{where}.{name}.{field} dtype"
