"""Write the bad-input corpus: small malformed NIR files, one defect each.

    python tests/corpus/make_corpus.py [OUT_DIR]     (default: this directory)

Re-runnable; the files are built with h5py directly (not with nirc), so nirc's writer
cannot hide a reader bug. tests/test_bad_inputs.py holds the exact message each file
must give through `nirc inspect`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from h5tree import graph_tree, nested_graph_tree, write_tree  # noqa: E402

V3 = np.array([0.02, 0.02, 0.02])


def lif(**overrides) -> dict:
    node = {"type": "LIF", "tau": V3, "r": np.ones(3), "v_leak": np.zeros(3),
            "v_threshold": np.ones(3), "v_reset": np.zeros(3)}
    node.update(overrides)
    return {k: v for k, v in node.items() if v is not None}


def mlp(**node_overrides) -> dict:
    """input(4) -> fc: Affine 4->3 -> lif -> output(3), with some nodes replaced."""
    nodes = {"input": {"type": "Input", "shape": np.array([4])},
             "fc": {"type": "Affine", "weight": np.full((3, 4), 0.5), "bias": np.zeros(3)},
             "lif": lif(),
             "output": {"type": "Output", "shape": np.array([3])}}
    nodes.update(node_overrides)
    return graph_tree({k: v for k, v in nodes.items() if v is not None},
                      [("input", "fc"), ("fc", "lif"), ("lif", "output")])


def conv_net(conv: dict, in_shape: list[int]) -> dict:
    return graph_tree({"input": {"type": "Input", "shape": np.array(in_shape)}, "conv": conv,
                       "output": {"type": "Output", "shape": np.array([4, 4, 4])}},
                      [("input", "conv"), ("conv", "output")])


def conv(**overrides) -> dict:
    node = {"type": "Conv2d", "weight": np.ones((4, 2, 3, 3)), "stride": np.int64(1),
            "padding": np.int64(1), "dilation": np.int64(1), "groups": np.int64(1),
            "bias": np.zeros(4)}
    node.update(overrides)
    return node


def tree_file(tree: dict) -> Callable[[Path], None]:
    return lambda path: write_tree(path, tree)


def not_hdf5(path: Path) -> None:
    path.write_text("this is a text file, not a NIR model\n")


def empty(path: Path) -> None:
    path.write_bytes(b"")


def truncated(path: Path) -> None:
    write_tree(path, mlp())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def huge_dataset(path: Path) -> None:
    # Declares 2^40 float64 weights; stored sparsely, so the file stays a few kB.
    write_tree(path, mlp(fc={"type": "Linear"}))
    with h5py.File(path, "a") as f:
        f["node/nodes/fc"].create_dataset("weight", shape=(1 << 20, 1 << 20), dtype="f8",
                                          chunks=(16, 16))


def nested(inner_lif: dict) -> dict:
    return nested_graph_tree(inner_lif)


CORPUS: dict[str, Callable[[Path], None]] = {
    "not_hdf5.nir": not_hdf5,
    "empty.nir": empty,
    "truncated.nir": truncated,
    "no_node_group.nir": tree_file({"version": "1.0.8", "model": np.zeros(3)}),
    "root_not_a_graph.nir": tree_file({"version": "1.0.8", "node": lif()}),
    "missing_type.nir": tree_file(mlp(lif={k: v for k, v in lif().items() if k != "type"})),
    "type_not_text.nir": tree_file(mlp(lif=lif(type=np.int64(3)))),
    "unknown_type.nir": tree_file(mlp(lif={"type": "LSTM", "hidden": np.zeros(3)})),
    "missing_nodes.nir": tree_file({"version": "1.0.8", "node": {"type": "NIRGraph",
                                                                 "edges": [["a", "b"]]}}),
    "missing_edges.nir": tree_file({"version": "1.0.8", "node": {
        "type": "NIRGraph", "nodes": {"input": {"type": "Input", "shape": np.array([3])}}}}),
    "edges_not_pairs.nir": tree_file({"version": "1.0.8", "node": {
        "type": "NIRGraph", "nodes": {"input": {"type": "Input", "shape": np.array([3])}},
        "edges": np.array([1.0, 2.0, 3.0])}}),
    "edge_to_missing_node.nir": tree_file(graph_tree(
        mlp()["node"]["nodes"], [("input", "fc"), ("fc", "lif"), ("lif", "ghost")])),
    "edge_into_input.nir": tree_file(graph_tree(
        mlp()["node"]["nodes"], [("input", "fc"), ("fc", "lif"), ("lif", "output"),
                                 ("lif", "input")])),
    "missing_parameter.nir": tree_file(mlp(lif=lif(tau=None))),
    "parameter_is_text.nir": tree_file(mlp(lif=lif(tau="fast"))),
    "parameter_is_group.nir": tree_file(mlp(lif=lif(tau={"value": V3}))),
    "nan_weight.nir": tree_file(mlp(fc={"type": "Affine",
                                        "weight": np.array([[0.5, np.nan, 0, 0]] * 3),
                                        "bias": np.zeros(3)})),
    "inf_threshold.nir": tree_file(mlp(lif=lif(v_threshold=np.array([1.0, np.inf, 1.0])))),
    "tau_zero.nir": tree_file(mlp(lif=lif(tau=np.array([0.02, 0.0, 0.02])))),
    "tau_negative_nested.nir": tree_file(nested(lif(tau=np.array([0.02, -1.0, 0.02])))),
    "negative_shape.nir": tree_file(mlp(input={"type": "Input", "shape": np.array([-4])})),
    "fractional_shape.nir": tree_file(mlp(input={"type": "Input",
                                                 "shape": np.array([4.5])})),
    "absurd_shape.nir": tree_file(mlp(input={"type": "Input",
                                             "shape": np.array([100000, 100000, 100000])})),
    "huge_dataset.nir": huge_dataset,
    "weight_not_matrix.nir": tree_file(mlp(fc={"type": "Affine", "weight": np.ones(12),
                                               "bias": np.zeros(3)})),
    "empty_weight.nir": tree_file(mlp(fc={"type": "Affine", "weight": np.ones((0, 4)),
                                          "bias": np.zeros(0)})),
    "bias_length.nir": tree_file(mlp(fc={"type": "Affine", "weight": np.ones((3, 4)),
                                         "bias": np.zeros(5)})),
    "shape_mismatch.nir": tree_file(mlp(fc={"type": "Affine", "weight": np.ones((3, 5)),
                                            "bias": np.zeros(3)})),
    "neuron_width_mismatch.nir": tree_file(mlp(lif=lif(tau=np.full(5, 0.02), r=np.ones(5),
                                                       v_leak=np.zeros(5),
                                                       v_threshold=np.ones(5),
                                                       v_reset=np.zeros(5)))),
    "parameters_disagree.nir": tree_file(mlp(lif=lif(r=np.ones(2)))),
    "conv_groups.nir": tree_file(conv_net(conv(groups=np.int64(3)), [2, 4, 4])),
    "conv_channels.nir": tree_file(conv_net(conv(), [3, 4, 4])),
    "conv_negative_stride.nir": tree_file(conv_net(conv(stride=np.array([1, -1])), [2, 4, 4])),
    "conv_bad_padding.nir": tree_file(conv_net(conv(padding="full"), [2, 4, 4])),
    "conv_kernel_too_big.nir": tree_file(conv_net(conv(weight=np.ones((4, 2, 7, 7)),
                                                       padding=np.int64(0)), [2, 4, 4])),
    "flatten_dims.nir": tree_file(graph_tree(
        {"input": {"type": "Input", "shape": np.array([2, 3])},
         "flat": {"type": "Flatten", "start_dim": np.int64(3), "end_dim": np.int64(-1)},
         "output": {"type": "Output", "shape": np.array([6])}},
        [("input", "flat"), ("flat", "output")])),
    "negative_delay.nir": tree_file(graph_tree(
        {"input": {"type": "Input", "shape": np.array([3])},
         "delay": {"type": "Delay", "delay": np.array([0.001, -0.001, 0.0])},
         "output": {"type": "Output", "shape": np.array([3])}},
        [("input", "delay"), ("delay", "output")])),
}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    for name, make in CORPUS.items():
        make(out / name)
    print(f"wrote {len(CORPUS)} files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
