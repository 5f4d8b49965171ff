"""The emulator refuses a config whose cores store table rows inconsistently, naming the field."""

import json
from pathlib import Path

import pytest

from core_graphs import mlp
from nirc.driver import compile
from nirc.emulator import Chip, ConfigError

TINY = str(Path(__file__).parent / "targets" / "tiny_loihi_4.yaml")


@pytest.fixture()
def build(tmp_path):
    compile(mlp(), TINY, tmp_path / "b", calibration_steps=0, partition_method="sequential")
    return tmp_path / "b"


def rewrite(build: Path, change) -> None:
    path = build / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def test_a_core_storing_rows_of_a_missing_table_is_a_config_error(build):
    stored = {}

    def change(config):
        core = next(c for c in config["cores"] if c["synapses"])
        core["synapses"][0]["table"] = len(config["tables"])
        stored.update(core=core["core"], table=len(config["tables"]))

    rewrite(build, change)
    with pytest.raises(ConfigError) as err:
        Chip.load(build)
    assert str(err.value) == (f"{build / 'config.json'}: parameter 'cores': core "
                              f"{stored['core']} stores rows of table {stored['table']}, which "
                              f"does not exist")


def test_two_stored_rows_of_one_table_for_the_same_neuron_slot_are_a_config_error(build):
    def change(config):
        core = next(c for c in config["cores"] if c["synapses"])
        core["synapses"].append(dict(core["synapses"][0]))   # table 0's first rows, twice

    rewrite(build, change)
    with pytest.raises(ConfigError) as err:
        Chip.load(build)
    assert str(err.value) == (f"{build / 'config.json'}: node 'lif1', parameter 'cores': "
                              f"table 0 stores several rows for the same neuron slot")


def test_a_config_naming_an_unknown_backend_is_a_config_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"backend": "nosuch"}))
    with pytest.raises(ConfigError) as err:
        Chip.load(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'config.json'}: parameter 'backend': "
                                     f"unknown backend 'nosuch' (known: ")


def test_a_config_that_is_not_a_json_object_is_a_config_error(tmp_path):
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError) as err:
        Chip.load(tmp_path)
    assert str(err.value) == f"{tmp_path / 'config.json'}: not a JSON object (got list)"


def test_a_config_without_an_arrays_field_is_a_config_error(build):
    rewrite(build, lambda config: config.pop("arrays"))
    with pytest.raises(ConfigError) as err:
        Chip.load(build)
    assert str(err.value) == (f"{build / 'config.json'}: parameter 'arrays': required field "
                              f"missing")


def test_a_corrupt_arrays_file_is_a_config_error(build):
    arrays = build / json.loads((build / "config.json").read_text())["arrays"]
    arrays.write_bytes(b"PK\x03\x04 not really a zip archive")
    with pytest.raises(ConfigError) as err:
        Chip.load(build)
    assert str(err.value) == f"{arrays}: cannot read as .npz (File is not a zip file)"


def _set(path: str, value):
    """A change setting the config field at dotted ``path`` (list items by index)."""
    def change(config):
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = config
        for p in parents:
            node = node[p]
        node[last] = value
    return change


# (field set, value, the error's text after the config path): damage a hand edit or a
# truncated copy can do, each found by mutating config.json field by field; every one
# stopped `nirc emulate` with a Python traceback before the config was checked as a whole.
DAMAGE = [
    ("dt", "x", "parameter 'dt': input should be a valid number, got 'x'"),
    ("arrays", "../../elsewhere.npz",
     "parameter 'arrays': must name a file in the build directory, got '../../elsewhere.npz'"),
    ("outputs.0.copies", ["nope"],
     "node 'out', parameter 'outputs.0.copies.0': 'nope' is not a spiking population of "
     "3 neurons"),
    ("outputs.0.copy_weights", [3, 4],
     "node 'out', parameter 'outputs.0.copy_weights': 2 weights for 0 copies"),
    ("outputs.0.source", "zzz", "node 'out', parameter 'outputs.0.source': no population "
                                "named 'zzz'"),
    ("outputs.0.quantity", "w", "node 'out', parameter 'outputs.0.quantity': must be "
                                "'spikes' or a state of neuron model 'loihi_cuba_lif' (u, v), "
                                "got 'w'"),
    ("outputs.0.shape", [2, 3], "node 'out', parameter 'outputs.0.shape': shape [2, 3] holds "
                                "6 values, its source 'lif2' 3"),
    ("tables.1.source", "x", "node 'lif2', parameter 'tables.1.source': no input or population "
                             "named 'x'"),
    ("tables.0.weight_exp", "x", "node 'lif1', parameter 'tables.0.weight_exp': must be an "
                                 "integer, got 'x'"),
    ("populations.0.size", 7, "node 'lif1', parameter 'populations.0.size': size 7 but shape "
                              "[12] holds 12"),
    ("populations.0.params.vth", "arrays.npz:nope", "node 'lif1', parameter "
                                                    "'populations.0.params.vth': the arrays file "
                                                    "has no member 'nope'"),
    ("cores.0.blocks.0.stop", 10 ** 6, "node 'lif1', parameter 'cores.0.blocks.0': neurons "
                                       "0..1000000 are not inside the population's 12"),
    ("cores.0.synapses", 1.5, "parameter 'cores.0.synapses': input should be a valid list, "
                              "got 1.5"),
]


@pytest.mark.parametrize("field, value, message", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_config_is_refused_naming_the_field(build, field, value, message):
    rewrite(build, _set(field, value))
    with pytest.raises(ConfigError) as err:
        Chip.load(build)
    assert str(err.value) == f"{build / 'config.json'}: {message}"
