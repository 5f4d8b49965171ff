"""Shape inference, flattening and ordering of NIR graphs: recurrent cycles, fan-in, nested
graphs entered by name or by dotted inner names, and shapes that flow backwards through
scalar elementwise nodes."""

from __future__ import annotations

import numpy as np
import pytest

from nirc.errors import ModelError
from nirc.ir.graph import NodeShapes, flatten, infer_shapes, topological_order
from nirc.ir.nodes import (Affine, Conv2d, Flatten, Input, LIF, Linear, NIRGraph, Output, Scale,
                           SumPool2d, Threshold)


def lif(n: int) -> LIF:
    return LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))


def affine(n_out: int, n_in: int) -> Affine:
    return Affine(weight=np.ones((n_out, n_in)), bias=np.zeros(n_out))


def test_recurrent_cycle_gets_shapes_and_a_feed_forward_first_order():
    graph = NIRGraph(
        nodes={"input": Input(shape=np.array([3])), "fc": affine(5, 3), "lif": lif(5),
               "rec": Linear(weight=np.eye(5)), "output": Output(shape=np.array([5]))},
        edges=(("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"),
               ("lif", "output")))
    shapes = infer_shapes(graph)
    assert shapes["rec"] == NodeShapes((5,), (5,))
    assert shapes["lif"] == NodeShapes((5,), (5,))
    assert topological_order(graph) == ["input", "fc", "lif", "rec", "output"]


def test_fan_in_sources_must_agree():
    nodes = {"a": Input(shape=np.array([3])), "b": Input(shape=np.array([2])),
             "fa": affine(4, 3), "fb": affine(4, 2), "lif": lif(4),
             "output": Output(shape=np.array([4]))}
    edges = (("a", "fa"), ("b", "fb"), ("fa", "lif"), ("fb", "lif"), ("lif", "output"))
    assert infer_shapes(NIRGraph(nodes=nodes, edges=edges))["lif"].input == (4,)

    bad = dict(nodes, fb=affine(6, 2))
    with pytest.raises(ModelError) as err:
        infer_shapes(NIRGraph(nodes=bad, edges=edges))
    assert str(err.value) == ("node 'lif', parameter 'tau': shape mismatch on edge fb -> lif: "
                              "'fb' produces [6] but 'lif' expects [4]")


def test_scalar_elementwise_node_gets_its_width_from_the_successor():
    graph = NIRGraph(nodes={"scale": Scale(scale=np.array(2.0)), "fc": affine(3, 4),
                            "output": Output(shape=np.array([3]))},
                     edges=(("scale", "fc"), ("fc", "output")))
    assert infer_shapes(graph)["scale"] == NodeShapes((4,), (4,))


def test_scalar_elementwise_chain_passes_the_shape_forward():
    graph = NIRGraph(nodes={"input": Input(shape=np.array([2, 3])),
                            "scale": Scale(scale=np.array(2.0)),
                            "thr": Threshold(threshold=np.array(0.5)),
                            "output": Output(shape=np.array([2, 3]))},
                     edges=(("input", "scale"), ("scale", "thr"), ("thr", "output")))
    assert infer_shapes(graph)["thr"] == NodeShapes((2, 3), (2, 3))


def test_conv_pool_flatten_chain_shapes():
    conv = Conv2d(weight=np.ones((4, 2, 3, 3)), stride=1, padding=1, dilation=1, groups=1,
                  bias=np.zeros(4))
    graph = NIRGraph(
        nodes={"input": Input(shape=np.array([2, 8, 8])), "conv": conv,
               "pool": SumPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)),
               "flat": Flatten(start_dim=0, end_dim=-1), "fc": affine(10, 64),
               "output": Output(shape=np.array([10]))},
        edges=(("input", "conv"), ("conv", "pool"), ("pool", "flat"), ("flat", "fc"),
               ("fc", "output")))
    shapes = infer_shapes(graph)
    assert shapes["conv"] == NodeShapes((2, 8, 8), (4, 8, 8))
    assert shapes["pool"] == NodeShapes((4, 8, 8), (4, 4, 4))
    assert shapes["flat"] == NodeShapes((4, 4, 4), (64,))


def _inner(n: int) -> NIRGraph:
    return NIRGraph(nodes={"in": Input(shape=np.array([n])), "lif": lif(n),
                           "out": Output(shape=np.array([n]))},
                    edges=(("in", "lif"), ("lif", "out")))


def test_nested_graph_entered_by_its_name_is_inlined_with_dotted_names():
    graph = NIRGraph(nodes={"input": Input(shape=np.array([3])), "fc": affine(4, 3),
                            "sub": _inner(4), "output": Output(shape=np.array([4]))},
                     edges=(("input", "fc"), ("fc", "sub"), ("sub", "output")))
    flat = flatten(graph)
    assert list(flat.nodes) == ["input", "fc", "sub.lif", "output"]
    assert sorted(flat.edges) == [("fc", "sub.lif"), ("input", "fc"), ("sub.lif", "output")]
    assert infer_shapes(flat)["sub.lif"] == NodeShapes((4,), (4,))


def test_nested_graph_entered_by_dotted_inner_names():
    graph = NIRGraph(nodes={"input": Input(shape=np.array([3])), "fc": affine(4, 3),
                            "sub": _inner(4), "output": Output(shape=np.array([4]))},
                     edges=(("input", "fc"), ("fc", "sub.lif"), ("sub.lif", "output")))
    flat = flatten(graph)
    assert sorted(flat.edges) == [("fc", "sub.lif"), ("input", "fc"), ("sub.lif", "output")]
    assert topological_order(flat) == ["input", "fc", "sub.lif", "output"]


def test_twice_nested_graph_flattens_to_two_dots():
    outer = NIRGraph(nodes={"in": Input(shape=np.array([4])), "inner": _inner(4),
                            "out": Output(shape=np.array([4]))},
                     edges=(("in", "inner"), ("inner", "out")))
    graph = NIRGraph(nodes={"input": Input(shape=np.array([4])), "outer": outer,
                            "output": Output(shape=np.array([4]))},
                     edges=(("input", "outer"), ("outer", "output")))
    flat = flatten(graph)
    assert "outer.inner.lif" in flat.nodes
    assert sorted(flat.edges) == [("input", "outer.inner.lif"), ("outer.inner.lif", "output")]


def test_shape_mismatch_inside_a_nested_graph_names_the_dotted_node():
    graph = NIRGraph(nodes={"input": Input(shape=np.array([3])), "fc": affine(4, 3),
                            "sub": _inner(5), "output": Output(shape=np.array([5]))},
                     edges=(("input", "fc"), ("fc", "sub"), ("sub", "output")))
    with pytest.raises(ModelError) as err:
        infer_shapes(flatten(graph))
    assert str(err.value) == ("node 'sub.lif', parameter 'tau': shape mismatch on edge "
                              "fc -> sub.lif: 'fc' produces [4] but 'sub.lif' expects [5]")


def test_edge_to_a_missing_node_is_refused():
    graph = NIRGraph(nodes={"input": Input(shape=np.array([3]))}, edges=(("input", "nowhere"),))
    with pytest.raises(ModelError) as err:
        infer_shapes(graph)
    assert str(err.value) == ("parameter 'edges': edge input -> nowhere names a target node "
                              "'nowhere' that does not exist")


def test_flatten_joins_a_subgraph_with_two_inputs_in_file_order():
    sub = NIRGraph(nodes={
        "b_in": Input(np.array([2])), "a_in": Input(np.array([2])),
        "fb": Affine(np.eye(2), np.zeros(2)), "fa": Affine(np.eye(2), np.zeros(2)),
        "out": Output(np.array([2]))},
        edges=(("b_in", "fb"), ("a_in", "fa"), ("fb", "out"), ("fa", "out")))
    graph = NIRGraph(nodes={"x": Input(np.array([2])), "sub": sub, "y": Output(np.array([2]))},
                     edges=(("x", "sub"), ("sub", "y")))

    flat = flatten(graph)

    assert list(flat.nodes) == ["x", "sub.fb", "sub.fa", "y"]
    assert flat.edges == (("x", "sub.fb"), ("x", "sub.fa"), ("sub.fb", "y"), ("sub.fa", "y"))
