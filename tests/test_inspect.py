"""`nirc inspect` shows each layer's shapes, parameters, unrolled synapses and neurons, the
edges and the warnings; as a plain table when piped, or as JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nirc.cli import main
from nirc.ir.nodes import Affine, Conv2d, Flatten, Input, LIF, NIRGraph, Output
from nirc.ir.summary import summarize
from nirc.nirio import write
from h5tree import graph_tree, write_tree


def lif(shape) -> LIF:
    return LIF(tau=np.full(shape, 0.01), r=np.ones(shape), v_leak=np.zeros(shape),
               v_threshold=np.ones(shape))


def conv_net() -> NIRGraph:
    weight = np.ones((4, 2, 3, 3))
    weight[0, 0] = 0.0  # one whole 3x3 kernel of zeros
    hidden = NIRGraph(nodes={"in": Input(shape=np.array([4, 6, 6])), "lif": lif((4, 6, 6)),
                             "out": Output(shape=np.array([4, 6, 6]))},
                      edges=(("in", "lif"), ("lif", "out")))
    return NIRGraph(
        nodes={"input": Input(shape=np.array([2, 6, 6])),
               "conv": Conv2d(weight=weight, stride=1, padding=1, dilation=1, groups=1,
                              bias=np.zeros(4)),
               "block": hidden,
               "flat": Flatten(start_dim=0, end_dim=-1, input_type=np.array([4, 6, 6])),
               "fc": Affine(weight=np.eye(10, 144), bias=np.zeros(10)),
               "lif_out": lif(10), "output": Output(shape=np.array([10]))},
        edges=(("input", "conv"), ("conv", "block"), ("block", "flat"), ("flat", "fc"),
               ("fc", "lif_out"), ("lif_out", "output")))


# A 3x3 kernel with padding 1 on a 6-wide axis: taps reach 5, 6 and 5 positions.
CONV_SYNAPSES = 4 * 2 * 16 * 16
CONV_NONZERO = CONV_SYNAPSES - 16 * 16


def test_summary_counts_unrolled_synapses_parameters_and_neurons():
    summary = summarize(conv_net())
    rows = {x.name: x for x in summary.layers}
    assert [x.name for x in summary.layers] == ["input", "conv", "block.lif", "flat", "fc",
                                                "lif_out", "output"]
    assert (rows["conv"].synapses, rows["conv"].nonzero_synapses) == (CONV_SYNAPSES,
                                                                      CONV_NONZERO)
    assert rows["conv"].parameters == 4 * 2 * 9 + 4
    assert (rows["fc"].synapses, rows["fc"].nonzero_synapses) == (1440, 10)
    assert rows["block.lif"].neurons == 144 and rows["block.lif"].spiking
    assert rows["block.lif"].parameters == 4 * 144  # v_reset absent in memory
    assert rows["flat"].output_shape == [144]
    assert summary.totals == {"nodes": 7, "edges": 6, "parameters": 76 + 576 + 1450 + 40,
                              "synapses": CONV_SYNAPSES + 1440,
                              "nonzero_synapses": CONV_NONZERO + 10, "neurons": 154}


def test_json_output_is_machine_readable(tmp_path, capsys):
    path = tmp_path / "conv.nir"
    write(path, conv_net())
    assert main(["inspect", "--json", str(path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["file"] == str(path) and doc["nir_version"] == "1.0.8"
    assert doc["warnings"] == []
    assert doc["edges"][:2] == [["input", "conv"], ["conv", "block.lif"]]
    conv = next(n for n in doc["nodes"] if n["name"] == "conv")
    assert conv == {"name": "conv", "type": "Conv2d", "input_shape": [2, 6, 6],
                    "output_shape": [4, 6, 6], "parameters": 76, "synapses": CONV_SYNAPSES,
                    "nonzero_synapses": CONV_NONZERO, "neurons": 0, "spiking": False}
    # v_reset is written (nir needs it), so the file's LIF has 5 parameters per neuron.
    assert doc["totals"]["parameters"] == 76 + 5 * 144 + 1450 + 5 * 10


def test_table_lists_every_node_with_counts_and_the_edges(tmp_path, capsys):
    path = tmp_path / "conv.nir"
    write(path, conv_net())
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].strip() == f"{path} (NIR 1.0.8)"
    conv_row = next(line.split() for line in lines if line.lstrip().startswith("conv "))
    assert conv_row == ["conv", "Conv2d", "2x6x6", "4x6x6", "76", f"{CONV_SYNAPSES:,}",
                        f"{CONV_NONZERO:,}"]
    lif_row = next(line.split() for line in lines if line.lstrip().startswith("block.lif"))
    assert lif_row == ["block.lif", "LIF", "(spiking)", "4x6x6", "4x6x6", "720", "0", "0", "144"]
    assert ("edges (6): input -> conv, conv -> block.lif, block.lif -> flat, flat -> fc, "
            "fc -> lif_out, lif_out -> output") in out
    assert "\x1b[" not in out and "─" not in out  # plain when not a terminal


def test_warnings_go_to_stderr_and_into_json(tmp_path):
    path = write_tree(tmp_path / "batch.nir", graph_tree(
        {"input": {"type": "Input", "shape": np.array([1, 4])},
         "fc": {"type": "Linear", "weight": np.ones((2, 4))},
         "output": {"type": "Output", "shape": np.array([2])}},
        [("input", "fc"), ("fc", "output")]))
    warning = f"{path}: node 'input': shape [1, 4] includes a batch dimension; read as [4]"
    table = subprocess.run([sys.executable, "-m", "nirc", "inspect", str(path)],
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0
    assert table.stderr == f"warning: {warning}\n"
    assert "warnings: 1 (shown above)" in table.stdout
    as_json = subprocess.run([sys.executable, "-m", "nirc", "-q", "inspect", "--json",
                              str(path)], capture_output=True, text=True, timeout=120)
    assert as_json.returncode == 0 and as_json.stderr == ""
    assert json.loads(as_json.stdout)["warnings"] == [warning]


@pytest.mark.parametrize("args", [["inspect"], ["inspect", "--bogus", "x.nir"]])
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
