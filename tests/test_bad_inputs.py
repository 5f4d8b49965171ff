"""Every malformed file in tests/corpus/ gives one exact line on stderr through
`nirc inspect` — naming the file, the node and the parameter — exit status 2, no
traceback and nothing on stdout. The corpus is written by tests/corpus/make_corpus.py."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CORPUS = Path(__file__).with_name("corpus")
NIRC = [sys.executable, "-m", "nirc"]

# file -> the message after "error: <file>: "
EXPECTED = {
    "absurd_shape.nir":
        "node 'input', parameter 'shape': shape [100000, 100000, 100000] has "
        "1,000,000,000,000,000 elements, more than the 67,108,864 nirc accepts in one layer",
    "bias_length.nir":
        "node 'fc', parameter 'bias': shape [5] does not match the weight's 3 outputs",
    "conv_bad_padding.nir":
        "node 'conv', parameter 'padding': must be an integer, a list or 'same'/'valid', got "
        "'full'",
    "conv_channels.nir":
        "node 'conv', parameter 'weight': input has 3 channels but the weight [4, 2, 3, 3] with "
        "groups=1 expects 2",
    "conv_groups.nir":
        "node 'conv', parameter 'groups': 3 groups do not divide 4 output channels",
    "conv_kernel_too_big.nir":
        "node 'conv', parameter 'weight': input [2, 4, 4] is smaller than the kernel [7, 7] "
        "(output would be [-2, -2])",
    "conv_negative_stride.nir":
        "node 'conv', parameter 'stride': must be >= 1, got [1, -1]",
    "edge_into_input.nir":
        "parameter 'edges': edge lif -> input points into the Input node 'input'",
    "edge_to_missing_node.nir":
        "parameter 'edges': edge lif -> ghost names a target node 'ghost' that does not exist",
    "edges_not_pairs.nir":
        "parameter 'edges': expected (E, 2) node names, got float64 of shape [3]",
    "empty_weight.nir":
        "node 'fc', parameter 'weight': is empty (shape [0, 4])",
    "empty.nir":
        "is empty (0 bytes)",
    "flatten_dims.nir":
        "node 'flat', parameter 'start_dim': start_dim=3, end_dim=-1 do not fit an input with 2 "
        "dimensions",
    "fractional_shape.nir":
        "node 'input', parameter 'shape': expected integers, got [4.5]",
    "huge_dataset.nir":
        "node 'fc', parameter 'weight': declares a dataset of shape [1048576, 1048576], more "
        "than the 268435456 elements nirc reads",
    "inf_threshold.nir":
        "node 'lif', parameter 'v_threshold': contains Inf values",
    "missing_edges.nir":
        "parameter 'edges': missing (a NIRGraph stores its edges as (source, target) names)",
    "missing_nodes.nir":
        "parameter 'nodes': missing (a NIRGraph stores its nodes in a group 'nodes')",
    "missing_parameter.nir":
        "node 'lif', parameter 'tau': missing (LIF needs tau, r, v_leak, v_threshold)",
    "missing_type.nir":
        "node 'lif', parameter 'type': missing (every node stores its type)",
    "nan_weight.nir":
        "node 'fc', parameter 'weight': contains NaN values",
    "negative_delay.nir":
        "node 'delay', parameter 'delay': must be >= 0, got -0.001 at index [1] (1 of 3 values)",
    "negative_shape.nir":
        "node 'input', parameter 'shape': dimensions must be positive, got [-4]",
    "neuron_width_mismatch.nir":
        "node 'lif', parameter 'tau': shape mismatch on edge fc -> lif: 'fc' produces [3] but "
        "'lif' expects [5]",
    "no_node_group.nir":
        "not a NIR file: no 'node' group at the root (found: model, version)",
    "not_hdf5.nir":
        "not an HDF5 file (a NIR model is an HDF5 file)",
    "parameter_is_group.nir":
        "node 'lif', parameter 'tau': expected a dataset, found a group",
    "parameter_is_text.nir":
        "node 'lif', parameter 'tau': expected numbers, got the text 'fast'",
    "parameters_disagree.nir":
        "node 'lif', parameter 'r': shape [2] does not match the other parameters' [3]",
    "root_not_a_graph.nir":
        "parameter 'type': the root node is a LIF, not a NIRGraph",
    "shape_mismatch.nir":
        "node 'fc', parameter 'weight': shape mismatch on edge input -> fc: 'input' produces [4] "
        "but 'fc' expects [5]",
    "tau_negative_nested.nir":
        "node 'sub.lif', parameter 'tau': must be > 0, got -1 at index [1] (1 of 3 values)",
    "tau_zero.nir":
        "node 'lif', parameter 'tau': must be > 0, got 0 at index [1] (1 of 3 values)",
    "truncated.nir":
        "truncated: the file holds 8916 of the 17832 bytes it was written with",
    "type_not_text.nir":
        "node 'lif', parameter 'type': expected a string, got 3 (int64)",
    "unknown_type.nir":
        "node 'lif', parameter 'type': unknown node type 'LSTM' (NIR 1.0 types: Affine, "
        "AvgPool2d, Conv1d, Conv2d, CubaLI, CubaLIF, Delay, Flatten, I, IF, Input, LI, LIF, "
        "Linear, NIRGraph, Output, Scale, SumPool2d, Threshold)",
    "weight_not_matrix.nir":
        "node 'fc', parameter 'weight': must be a matrix (out, in), got shape [12]",
}


def test_every_corpus_file_has_an_expected_message():
    assert sorted(p.name for p in CORPUS.glob("*.nir")) == sorted(EXPECTED)


@pytest.fixture(scope="module")
def inspected() -> dict[str, subprocess.CompletedProcess]:
    """`nirc inspect FILE` for every corpus file, a few processes at a time."""
    def inspect(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([*NIRC, "inspect", name], cwd=CORPUS, capture_output=True,
                              text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(sorted(EXPECTED), pool.map(inspect, sorted(EXPECTED))))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_gives_one_line_error_and_exit_2(inspected, name):
    done = inspected[name]
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"error: {name}: {EXPECTED[name]}\n"


def test_bad_input_as_json_still_errors_on_stderr():
    done = subprocess.run([*NIRC, "inspect", "--json", "tau_zero.nir"], cwd=CORPUS,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: tau_zero.nir: {EXPECTED['tau_zero.nir']}\n"


def test_missing_file_is_an_error_not_a_traceback(tmp_path):
    done = subprocess.run([*NIRC, "inspect", "nowhere.nir"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert (done.returncode, done.stderr) == (2, "error: nowhere.nir: no such file\n")


def test_make_corpus_is_rerunnable_and_writes_exactly_the_corpus(tmp_path):
    for _ in range(2):
        done = subprocess.run([sys.executable, str(CORPUS / "make_corpus.py"), str(tmp_path)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(EXPECTED)
    assert all(p.stat().st_size < 64_000 for p in tmp_path.iterdir())
