"""Real exporter quirks and older file layouts load, each quirk with a NircWarning that says
what was repaired; nothing is reinterpreted silently."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nirc.errors import ModelError, NircWarning
from nirc.ir.graph import flatten, infer_shapes
from nirc.ir.nodes import Affine, CubaLIF, Flatten, LIF, Output
from nirc.nirio import read
from h5tree import graph_tree, write_tree

W = np.arange(15, dtype=np.float32).reshape(5, 3) / 10


def read_warned(path) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = read(path)
    messages = [str(w.message) for w in caught]
    assert all(issubclass(w.category, NircWarning) for w in caught), messages
    return graph, messages


def scalar_lif(**extra) -> dict:
    return {"type": "LIF", "tau": np.float32(1e-5), "r": np.float32(1.0),
            "v_leak": np.float32(0.0), "v_threshold": np.float32(1.0),
            "v_reset": np.float32(0.0), **extra}


def test_norse_style_export_batch_dims_and_scalar_neurons_are_repaired(tmp_path):
    # Norse 1.1: Input/Output carry the batch dimension, LIF parameters are 0-d float32.
    path = write_tree(tmp_path / "norse.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([1, 3])},
         "0": {"type": "Affine", "weight": W, "bias": np.zeros(5, np.float32)},
         "1": scalar_lif(),
         "output": {"type": "Output", "shape": np.array([1, 5])}},
        [("input", "0"), ("0", "1"), ("1", "output")]))
    graph, messages = read_warned(path)
    assert messages == [
        f"{path}: node 'input': shape [1, 3] includes a batch dimension; read as [3]",
        f"{path}: node 'output': shape [1, 5] includes a batch dimension; read as [5]",
        f"{path}: node '1': 0-d scalar parameters tau, r, v_leak, v_threshold, v_reset "
        f"broadcast to the layer shape [5] inferred from the connected nodes",
    ]
    lif = graph.nodes["1"]
    assert isinstance(lif, LIF)
    assert lif.tau.shape == (5,) and lif.tau.dtype == np.float32
    assert np.array_equal(lif.tau, np.full(5, 1e-5, np.float32))
    assert list(graph.nodes["input"].shape) == [3] and list(graph.nodes["output"].shape) == [5]


def test_rockpool_style_output_with_batch_and_time_dims_is_repaired(tmp_path):
    ones = np.ones(5, np.float32)
    path = write_tree(tmp_path / "rockpool.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([1, 3])},
         "0_LinearTorch": {"type": "Linear", "weight": W},
         "1_LIFTorch": {"type": "CubaLIF", "tau_mem": ones * 0.02, "tau_syn": ones * 0.01,
                        "r": ones, "v_leak": 0 * ones, "v_threshold": ones, "v_reset": 0 * ones,
                        "w_in": ones},
         "output": {"type": "Output", "shape": np.array([1, 1, 5])}},
        [("input", "0_LinearTorch"), ("0_LinearTorch", "1_LIFTorch"), ("1_LIFTorch", "output")]))
    graph, messages = read_warned(path)
    assert messages == [
        f"{path}: node 'input': shape [1, 3] includes a batch dimension; read as [3]",
        f"{path}: node 'output': shape [1, 1, 5] includes 2 leading (batch/time) dimensions; "
        f"read as [5]",
    ]
    assert isinstance(graph.nodes["1_LIFTorch"], CubaLIF)


def test_batch_dimension_before_a_convolution_is_stripped(tmp_path):
    conv = {"type": "Conv2d", "weight": np.ones((4, 2, 3, 3), np.float32), "stride": 1,
            "padding": 0, "dilation": 1, "groups": 1, "bias": np.zeros(4, np.float32)}
    path = write_tree(tmp_path / "conv.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([8, 2, 34, 34])}, "conv": conv,
         "output": {"type": "Output", "shape": np.array([4, 32, 32])}},
        [("input", "conv"), ("conv", "output")]))
    graph, messages = read_warned(path)
    assert messages == [f"{path}: node 'input': shape [8, 2, 34, 34] includes a batch "
                        f"dimension; read as [2, 34, 34]"]
    assert infer_shapes(flatten(graph))["conv"].output == (4, 32, 32)


def test_torch_style_flatten_start_dim_is_read_without_the_batch(tmp_path):
    path = write_tree(tmp_path / "flatten.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([2, 4, 4])},
         "flat": {"type": "Flatten", "start_dim": 1, "end_dim": -1},
         "fc": {"type": "Affine", "weight": np.ones((3, 32)), "bias": np.zeros(3)},
         "output": {"type": "Output", "shape": np.array([3])}},
        [("input", "flat"), ("flat", "fc"), ("fc", "output")]))
    graph, messages = read_warned(path)
    assert messages == [
        f"{path}: node 'flat': start_dim=1, end_dim=-1 count the batch dimension (as "
        f"torch.nn.Flatten does); read as start_dim=0, end_dim=-1",
        f"{path}: node 'flat', parameter 'input_type': missing; set to [2, 4, 4] from its input",
    ]
    flat = graph.nodes["flat"]
    assert isinstance(flat, Flatten) and flat.start_dim == 0
    assert list(flat.input_type) == [2, 4, 4]


def test_flatten_input_type_with_batch_is_read_without_it(tmp_path):
    path = write_tree(tmp_path / "flatten_type.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([2, 4, 4])},
         "flat": {"type": "Flatten", "start_dim": 1, "end_dim": -1,
                  "input_type": np.array([1, 2, 4, 4])},
         "fc": {"type": "Affine", "weight": np.ones((3, 32)), "bias": np.zeros(3)},
         "output": {"type": "Output", "shape": np.array([3])}},
        [("input", "flat"), ("flat", "fc"), ("fc", "output")]))
    graph, messages = read_warned(path)
    assert messages == [
        f"{path}: node 'flat': input_type [1, 2, 4, 4] and start_dim=1, end_dim=-1 count the "
        f"batch dimension; read as input_type [2, 4, 4], start_dim=0, end_dim=-1"]
    assert list(graph.nodes["flat"].input_type) == [2, 4, 4]


def test_a_flatten_nir_semantics_explain_is_left_alone(tmp_path):
    # start_dim=1 on (2, 4, 4) gives (2, 16): consistent with the next layer, so no repair.
    path = write_tree(tmp_path / "flatten_ok.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([2, 4, 4])},
         "flat": {"type": "Flatten", "start_dim": 1, "end_dim": -1,
                  "input_type": np.array([2, 4, 4])},
         "output": {"type": "Output", "shape": np.array([2, 16])}},
        [("input", "flat"), ("flat", "output")]))
    graph, messages = read_warned(path)
    assert messages == []
    assert graph.nodes["flat"].start_dim == 1


def test_ambiguous_leading_one_is_kept_when_nothing_contradicts_it(tmp_path):
    path = write_tree(tmp_path / "ambiguous.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([1, 3])},
         "lif": scalar_lif(),
         "output": {"type": "Output", "shape": np.array([1, 3])}},
        [("input", "lif"), ("lif", "output")]))
    graph, messages = read_warned(path)
    assert messages == [f"{path}: node 'lif': 0-d scalar parameters tau, r, v_leak, "
                        f"v_threshold, v_reset broadcast to the layer shape [1, 3] inferred "
                        f"from the connected nodes"]
    assert graph.nodes["lif"].tau.shape == (1, 3)


def test_scalar_layer_that_nothing_connects_is_an_error(tmp_path):
    path = write_tree(tmp_path / "lonely.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([3])}, "lif": scalar_lif(),
         "output": {"type": "Output", "shape": np.array([3])}},
        [("input", "output")]))
    with pytest.raises(ModelError) as err:
        read(path)
    assert str(err.value) == (f"{path}: node 'lif', parameter 'tau': is a 0-d scalar and no "
                              f"connected node fixes the layer width")


def test_stored_types_empty_are_ignored_and_nonempty_fix_a_lonely_layer(tmp_path):
    path = write_tree(tmp_path / "types.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([3])},
         "lif": scalar_lif(input_type={"input": np.array([], dtype=np.int64)}),
         "spare": scalar_lif(output_type={"output": np.array([7])}),
         "output": {"type": "Output", "shape": np.array([3])}},
        [("input", "lif"), ("lif", "output")]))
    graph, messages = read_warned(path)
    assert messages[0] == (f"{path}: node 'lif', parameter 'input_type': is stored but empty; "
                           f"ignored, the shape comes from the neighbours")
    assert graph.nodes["lif"].tau.shape == (3,)
    assert graph.nodes["spare"].tau.shape == (7,)


def test_scalar_input_shape_reads_as_one_dimension(tmp_path):
    path = write_tree(tmp_path / "scalar_shape.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.int64(3)},
         "fc": {"type": "Linear", "weight": W},
         "output": {"type": "Output", "shape": np.array([5])}},
        [("input", "fc"), ("fc", "output")]))
    graph, messages = read_warned(path)
    assert messages == [f"{path}: node 'input', parameter 'shape': stored as the scalar 3; read "
                        f"as the shape [3]"]
    assert list(graph.nodes["input"].shape) == [3]


def test_unknown_parameter_is_ignored_with_a_warning(tmp_path):
    path = write_tree(tmp_path / "extra.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([3])},
         "fc": {"type": "Linear", "weight": W, "quantized": np.int64(1)},
         "output": {"type": "Output", "shape": np.array([5])}},
        [("input", "fc"), ("fc", "output")]))
    _, messages = read_warned(path)
    assert messages == [f"{path}: node 'fc', parameter 'quantized': ignored: not a parameter "
                        f"of Linear"]


# --- older layouts ---------------------------------------------------------------------


def test_nir_1_0_4_files_without_v_reset_and_w_in_get_nir_defaults_silently(tmp_path):
    v = np.array([0.5, 1.5])
    path = write_tree(tmp_path / "old.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([2])},
         "lif": {"type": "LIF", "tau": v, "r": v, "v_leak": v, "v_threshold": v},
         "cuba": {"type": "CubaLIF", "tau_mem": v, "tau_syn": v, "r": v, "v_leak": v,
                  "v_threshold": v},
         "output": {"type": "Output", "shape": np.array([2])}},
        [("input", "lif"), ("lif", "cuba"), ("cuba", "output")], version="1.0.4"))
    graph, messages = read_warned(path)
    assert messages == []
    assert np.array_equal(graph.nodes["lif"].v_reset, np.zeros(2))
    assert np.array_equal(graph.nodes["cuba"].v_reset, np.zeros(2))
    assert np.array_equal(graph.nodes["cuba"].w_in, np.ones(2))


def test_nir_0_1_layout_without_version_and_flatten_type_reads(tmp_path):
    path = write_tree(tmp_path / "v01.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([1, 2, 2])},
         "flat": {"type": "Flatten", "start_dim": 0, "end_dim": -1},
         "fc": {"type": "Affine", "weight": np.ones((3, 4)), "bias": np.zeros(3)},
         "output": {"type": "Output", "shape": np.array([3])}},
        [("input", "flat"), ("flat", "fc"), ("fc", "output")], version=None))
    graph, messages = read_warned(path)
    assert messages == [f"{path}: node 'flat', parameter 'input_type': missing; set to "
                        f"[1, 2, 2] from its input"]
    assert isinstance(graph.nodes["fc"], Affine)


def test_nir_0_0_x_list_layout_with_old_names_reads(tmp_path):
    # nir 0.0.x: nodes "0".."3" in list order, integer edges, Linear(weights, bias) = Affine,
    # LIF threshold named theta, Output without shape.
    v = np.ones(5)
    path = write_tree(tmp_path / "v00.nir", {
        "nodes": {"0": {"type": "Input", "shape": np.array([3])},
                  "1": {"type": "Linear", "weights": W.astype(np.float64), "bias": np.ones(5)},
                  "2": {"type": "LIF", "tau": v, "r": v, "v_leak": 0 * v, "theta": 2 * v},
                  "3": {"type": "Output"}},
        "edges": np.array([[0, 1], [1, 2], [2, 3]])})
    graph, messages = read_warned(path)
    assert messages == [
        f"{path}: file uses the NIR 0.0.x layout (no root 'node' group); reading it with the "
        f"old field names",
        f"{path}: node '3', parameter 'shape': missing; set to [5] from its input"]
    assert graph.edges == (("0", "1"), ("1", "2"), ("2", "3"))
    assert isinstance(graph.nodes["1"], Affine) and np.array_equal(graph.nodes["1"].weight, W)
    assert np.array_equal(graph.nodes["2"].v_threshold, 2 * v)
    assert isinstance(graph.nodes["3"], Output) and list(graph.nodes["3"].shape) == [5]


# --- live exports ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.frameworks
def test_live_snntorch_norse_rockpool_and_sinabs_exports_load(tmp_path, missing_oracle):
    try:
        import nir
        import norse.torch as norse
        import sinabs
        import sinabs.layers as sl
        import snntorch
        import torch
        from rockpool.nn.combinators import Sequential
        from rockpool.nn.modules import LIFTorch, LinearTorch
        from rockpool.nn.modules.torch.nir import to_nir as rockpool_to_nir
        from snntorch.export_nir import export_to_nir
    except ImportError as error:
        missing_oracle(f"an exporting framework is not installed: {error}")

    # The exporters build graphs nir 1.0.8's own type check rejects (that is the quirk),
    # so they are built without it and written uncompressed (0-d datasets cannot be).
    original, original_infer = nir.NIRGraph.__init__, nir.NIRGraph.infer_types

    def unchecked(self, *args, type_check=True, **kwargs):
        original(self, *args, type_check=False, **kwargs)

    exports = {
        "snntorch": lambda: export_to_nir(torch.nn.Sequential(
            torch.nn.Linear(16, 8), snntorch.Leaky(beta=0.9, init_hidden=True, output=True)),
            torch.randn(1, 16)),
        "norse": lambda: norse.to_nir(norse.SequentialState(torch.nn.Linear(10, 5),
                                                            norse.LIFBoxCell()),
                                      torch.randn(1, 10)),
        "rockpool": lambda: rockpool_to_nir(Sequential(LinearTorch((3, 5)), LIFTorch(5))),
        "sinabs": lambda: sinabs.to_nir(torch.nn.Sequential(
            torch.nn.Linear(20, 10), sl.LIFSqueeze(tau_mem=torch.tensor(10.0), batch_size=1)),
            torch.randn(1, 20)),
    }
    widths = {"snntorch": (16, 8), "norse": (10, 5), "rockpool": (3, 5), "sinabs": (20, 10)}
    nir.NIRGraph.__init__ = unchecked
    nir.NIRGraph.infer_types = lambda self: None  # snnTorch calls it itself
    try:
        for name, export in exports.items():
            nir.write(tmp_path / f"{name}.nir", export(), compression=None)
    finally:
        nir.NIRGraph.__init__, nir.NIRGraph.infer_types = original, original_infer
    for name, (n_in, n_out) in widths.items():
        graph, messages = read_warned(tmp_path / f"{name}.nir")
        assert messages, name
        shapes = infer_shapes(flatten(graph))
        assert shapes["input"].output == (n_in,), name
        assert shapes["output"].input == (n_out,), name


def test_torch_flatten_after_a_batched_input_strips_the_input_batch_too(tmp_path):
    # snnTorch-style conv export: Input (1, C, H, W) and Flatten(start_dim=1). Repairing
    # only the Flatten would also fit (flattening the batch of 1), but the Input would then
    # keep its batch dimension.
    path = write_tree(tmp_path / "torch_flatten.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([1, 2, 4, 4])},
         "flat": {"type": "Flatten", "start_dim": 1, "end_dim": -1},
         "fc": {"type": "Affine", "weight": np.ones((3, 32)), "bias": np.zeros(3)},
         "output": {"type": "Output", "shape": np.array([1, 3])}},
        [("input", "flat"), ("flat", "fc"), ("fc", "output")]))
    graph, messages = read_warned(path)
    assert messages[:3] == [
        f"{path}: node 'input': shape [1, 2, 4, 4] includes a batch dimension; read as "
        f"[2, 4, 4]",
        f"{path}: node 'output': shape [1, 3] includes a batch dimension; read as [3]",
        f"{path}: node 'flat': start_dim=1, end_dim=-1 count the batch dimension (as "
        f"torch.nn.Flatten does); read as start_dim=0, end_dim=-1"]
    assert list(graph.nodes["input"].shape) == [2, 4, 4]
    assert list(graph.nodes["flat"].input_type) == [2, 4, 4]
