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
    assert str(err.value) == f"{build / 'config.json'}: missing field or array 'arrays'"


def test_a_corrupt_arrays_file_is_a_config_error(build):
    arrays = build / json.loads((build / "config.json").read_text())["arrays"]
    arrays.write_bytes(b"PK\x03\x04 not really a zip archive")
    with pytest.raises(ConfigError) as err:
        Chip.load(build)
    assert str(err.value) == f"{arrays}: cannot read arrays: File is not a zip file"
