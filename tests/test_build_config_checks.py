"""A damaged Xylo or Speck build is refused naming the file, the node and the field, not with a
traceback (nirc.targets.xylo.schema, nirc.targets.speck.schema)."""

import json
from pathlib import Path

import numpy as np
import pytest

from core_graphs import mlp
from speck_networks import compile_for_speck, small_cnn
from nirc.driver import compile
from nirc.emulator import Chip
from nirc.errors import NircError

DELETE = object()


def _set(config: dict, path: str, value) -> None:
    """Set (or with DELETE remove) the config field at dotted ``path`` (list items by index)."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = config
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value


def _damaged(build: Path, path: str, value) -> Path:
    config = json.loads((build / "config.json").read_text())
    _set(config, path, value)
    (build / "config.json").write_text(json.dumps(config))
    return build


@pytest.fixture(scope="module")
def xylo_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("xylo") / "b"
    compile(mlp(), "xylo", out, calibration_steps=0)
    return out


@pytest.fixture()
def xylo(xylo_build, tmp_path):
    import shutil

    return Path(shutil.copytree(xylo_build, tmp_path / "b"))


# (field set, value, the error's text after the config path). The build: mlp() on xylo, input
# 'in' on channels 0..8, hidden 'lif1' neurons 0..12, readout 'lif2' and output 'out' 0..3.
XYLO_DAMAGE = [
    ("specification.dt", "x", "parameter 'specification.dt': input should be a valid number, "
                              "got 'x'"),
    ("specification.arrays", "../elsewhere.npz", "parameter 'specification.arrays': must name a "
                                                 "file in the build directory, got "
                                                 "'../elsewhere.npz'"),
    ("specification.aliases", 1.5, "parameter 'specification.aliases': input should be a valid "
                                   "list, got 1.5"),
    ("specification.aliases.0", [99], "parameter 'specification.aliases.0.0': hidden neuron 0 "
                                      "aliases neuron 99, which does not exist"),
    ("specification.weight_shift_rec", [-1], "parameter 'specification.weight_shift_rec': input "
                                             "should be a valid integer, got list"),
    ("inputs.0.channels", [0, 9], "node 'in', parameter 'inputs.0.channels': channels 0..9 are "
                                  "not inside the fabric's 8"),
    ("hidden.0.shape", [5], "node 'lif1', parameter 'hidden.0.shape': shape [5] holds 5 values, "
                            "its neurons 0..12 12"),
    ("readout.0.name", [-1], "parameter 'readout.0.name': input should be a valid string, got "
                             "list"),
    ("outputs.0.quantity", "w", "node 'out', parameter 'outputs.0.quantity': input should be "
                                "'spikes' or 'v', got 'w'"),
    ("outputs.0.neurons", 0, "node 'out', parameter 'outputs.0.neurons': input should be a valid "
                             "tuple, got 0"),
    ("outputs.0.v_scale", [1.0], "node 'out', parameter 'outputs.0.v_scale': 1 scales for 3 "
                                 "values"),
    ("outputs", DELETE, "parameter 'outputs': required field missing"),
    ("inputs", [], "parameter 'inputs': list should have at least 1 item after validation, not "
                   "0, got list"),
]


@pytest.mark.parametrize("field, value, message", XYLO_DAMAGE, ids=[d[0] for d in XYLO_DAMAGE])
def test_a_damaged_xylo_config_is_refused_naming_the_field(xylo, field, value, message):
    with pytest.raises(NircError) as err:
        Chip.load(_damaged(xylo, field, value))
    assert str(err.value) == f"{xylo / 'config.json'}: {message}"


@pytest.mark.parametrize("key, value, message", [
    ("dash_mem", np.zeros(5, np.int16), "parameter 'dash_mem': shape (5,), expected (12,)"),
    ("weights_rec", np.zeros((12, 12), np.int8), "parameter 'weights_rec': shape (12, 12), "
                                                 "expected (12, 12, 2)"),
    ("threshold_out", np.zeros(3), "parameter 'threshold_out': holds float64 values, expected "
                                   "integers"),
    ("bias", None, "parameter 'bias': missing from the arrays file"),
])
def test_a_damaged_xylo_array_is_refused_naming_the_array(xylo, key, value, message):
    with np.load(xylo / "arrays.npz") as data:
        arrays = dict(data)
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    np.savez(xylo / "arrays.npz", **arrays)
    with pytest.raises(NircError) as err:
        Chip.load(xylo)
    assert str(err.value) == f"{xylo / 'arrays.npz'}: {message}"


@pytest.fixture(scope="module")
def speck_config():
    return compile_for_speck(small_cnn(seed=1))[2]


@pytest.fixture()
def speck(speck_config, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(speck_config))
    return tmp_path


# (field set, with {layer} the core of that layer; value; the error's text after the config
# path). The build: small_cnn on speck2f, layers if1 -> if2 -> if3, input 'input' (2, 16, 16),
# output 'output' (10,) from if3.
SPECK_DAMAGE = [
    ("nirc.outputs.output.layer", None, "node 'output', parameter 'nirc.outputs.output.layer': "
                                        "input should be a valid string, got None"),
    ("nirc.outputs.output.shape", [5], "node 'output', parameter 'nirc.outputs.output.shape': "
                                       "shape [5] holds 5 values, layer 'if3' 10"),
    ("nirc.layers", "x", "parameter 'nirc.layers': input should be a valid dictionary, got 'x'"),
    ("nirc.layers.if1.core", 99, "node 'if1', parameter 'nirc.layers.if1.core': core 99 does not "
                                 "exist (the config has 9)"),
    ("nirc.layers.if2.sources.0.source", "nope", "node 'if2', parameter "
                                                 "'nirc.layers.if2.sources.0.source': no layer "
                                                 "named 'nope'"),
    ("nirc.processing_order", [{"if2"}, {"if3"}], "node 'if1', parameter "
                                                  "'nirc.processing_order': does not list core "
                                                  "{if1} of layer 'if1'"),
    ("nirc.inputs.input.shape", [3, 16, 16], "node 'if1', parameter "
                                             "'nirc.layers.if1.sources.0.source': 'input' has 3 "
                                             "channels, core {if1}'s input map 2"),
    ("cnn_layers.{if1}.weights", [[[[1]]]], "node 'if1', parameter 'cnn_layers.{if1}.weights': 1 "
                                            "values, expected {weights}"),
    ("cnn_layers.{if1}.biases", [1], "node 'if1', parameter 'cnn_layers.{if1}.biases': 1 biases "
                                     "for {channels} output channels"),
    ("cnn_layers.{if2}.dimensions.kernel_size", 0,
     "node 'if2', parameter 'cnn_layers.{if2}.dimensions.kernel_size': input should be greater "
     "than or equal to 1, got 0"),
    ("readout", {"enable": 1}, "parameter 'readout.enable': input should be a valid boolean, "
                               "got 1"),
    ("cnn_layers.{if1}.dimensions", DELETE, "missing field 'dimensions' (node 'if1', parameter "
                                            "'cnn_layers.{if1}.dimensions')"),
]


@pytest.mark.parametrize("field, value, message", SPECK_DAMAGE, ids=[d[0] for d in SPECK_DAMAGE])
def test_a_damaged_speck_config_is_refused_naming_the_field(speck, speck_config, field, value,
                                                            message):
    cores = {name: layer["core"] for name, layer in speck_config["nirc"]["layers"].items()}
    first = speck_config["cnn_layers"][cores["if1"]]
    facts = {**cores, "weights": np.asarray(first["weights"]).size,
             "channels": len(first["biases"])}
    if isinstance(value, list) and value and isinstance(value[0], set):
        value = [cores[next(iter(v))] for v in value]
    with pytest.raises(NircError) as err:
        Chip.load(_damaged(speck, field.format(**facts), value))
    assert str(err.value) == f"{speck / 'config.json'}: {message.format(**facts)}"
