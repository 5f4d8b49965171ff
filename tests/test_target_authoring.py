"""A backend author's path: a chip described by YAML alone compiles, places and runs bit-exact;
the guide and the JSON Schema are generated from the loader's schema and stay current."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml

from nirc import intref
from nirc.cli import main
from nirc.driver import compile, random_spike_input
from nirc.emulator import Chip
from nirc.errors import FitError
from nirc.target import Target, load_target, target_names
from nirc.target_schema import (field_rows, json_schema, json_schema_text, markdown_field_table,
                                with_generated_tables)
from nirc.verify import compare_runs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPINNAKER2 = ROOT / "targets" / "spinnaker2.yaml"


def tiny_chip(tmp_path: Path, **changes) -> Path:
    """spinnaker2.yaml with 64-neuron cores (and dotted-path ``changes``), as a user's own file."""
    data = yaml.safe_load(SPINNAKER2.read_text())
    data["name"] = "tiny_chip"
    data["cores"]["limits"]["neurons"] = 64
    data["partitioner"].pop("block_size")
    data["partitioner"]["time_limit_s"] = 1     # the optimum is proven fast; keep tests quick
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path = tmp_path / "tiny_chip.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def assert_bit_exact(result, build: Path, steps: int = 20) -> None:
    inputs = random_spike_input(result.graph, steps, seed=1, batch=2)
    emulated = Chip.load(build).run(inputs, batch=True, record=True)
    reference = intref.run(result.network, inputs, batch=True, record=True)
    assert compare_runs(emulated, reference) == []
    assert sum(int(s.sum()) for s in reference.spikes.values()) > 0


# --- a YAML-only target, from a path ------------------------------------------------------

def test_a_new_yaml_file_compiles_by_path_and_runs_bit_exact(tmp_path):
    chip = tiny_chip(tmp_path)
    build = tmp_path / "build"
    result = compile(EXAMPLES / "mlp.nir", str(chip), build)
    # 128 hidden neurons on 64-neuron cores take two cores, the 10 outputs a third.
    assert (result.placement.cores_used, result.placement.lower_bound) == (3, 3)
    assert result.report["target"] == "tiny_chip"
    assert json.loads((build / "config.json").read_text())["target"] == "tiny_chip"
    assert_bit_exact(result, build)


def test_routing_entries_count_sending_layer_cores_and_inputs(tmp_path):
    result = compile(EXAMPLES / "mlp.nir", str(tiny_chip(tmp_path)), None)
    # input + 2 cores of the hidden layer send spikes; the output layer sends none.
    use = result.placement.chip_utilisation["routing_entries"]
    assert (use.used, use.capacity, use.unit) == (3, 1024, "entries")


def test_a_routing_table_too_small_for_the_placement_is_a_fit_error(tmp_path):
    chip = tiny_chip(tmp_path, **{"chip.routing_entries": 2})
    with pytest.raises(FitError) as err:
        compile(EXAMPLES / "mlp.nir", str(chip), None)
    assert str(err.value) == (
        "the placement on 3 cores needs 3 entries of 'routing_entries' but tiny_chip has 2 for "
        "the whole chip; the largest demand is layer '1' with 2 entries (67%); use fewer, "
        "larger layers (each layer sends from every core it spans), or a chip with a larger "
        "routing table")


def test_a_chip_limit_the_mapping_cannot_enforce_is_rejected_naming_the_field(tmp_path, capsys):
    data = yaml.safe_load(SPINNAKER2.read_text())
    data["mapping"] = "fixed_fabric"
    data["cores"]["limits"] = {"neurons": 10}
    data["partitioner"] = {}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["targets", "check", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"error: {path}: field 'chip.routing_entries': not a limit of the fixed_fabric mapping\n")


@pytest.mark.parametrize("model", ["mlp", "srnn"])
def test_spinnaker2_holds_the_dense_examples_on_one_core_bit_exact(model, tmp_path):
    result = compile(EXAMPLES / f"{model}.nir", "spinnaker2", tmp_path / "build")
    assert (result.placement.cores_used, result.placement.lower_bound) == (1, 1)
    assert result.network.neuron_model == "loihi_cuba_lif"
    assert_bit_exact(result, tmp_path / "build")


@pytest.mark.slow
def test_spinnaker2_places_the_cnn_within_its_152_cores_bit_exact(tmp_path):
    result = compile(EXAMPLES / "cnn.nir", "spinnaker2", tmp_path / "build")
    placement = result.placement
    assert placement.lower_bound <= placement.cores_used <= 152
    assert placement.chip_utilisation["routing_entries"].used <= 1024
    assert_bit_exact(result, tmp_path / "build", steps=10)


def test_spinnaker2_is_yaml_only():
    target = load_target("spinnaker2")
    assert target.backend is None
    assert not (ROOT / "targets" / "spinnaker2").exists()
    assert (target.neuron_model, target.mapping, target.core_count) == (
        "loihi_cuba_lif", "neuron_partition", 152)
    assert target.chip.routing_entries == 1024


# --- the guide and the JSON Schema --------------------------------------------------------

def test_every_schema_field_has_a_meaning():
    undocumented = [row.path for row in field_rows() if not row.meaning]
    assert undocumented == []


def test_every_limit_states_its_unit():
    limits = [row for row in field_rows() if row.path.startswith(("cores.limits.", "chip."))]
    assert limits and all(row.unit for row in limits)


def test_the_guide_holds_the_current_field_table():
    guide = (ROOT / "docs" / "targets.md").read_text()
    assert guide == with_generated_tables(guide), "run docs/make_target_docs.py"
    for row in field_rows():
        assert f"| `{row.path}` |" in guide


def test_the_committed_json_schema_is_current():
    committed = (ROOT / "docs" / "target.schema.json").read_text()
    assert committed == json_schema_text(), "run docs/make_target_docs.py"


@pytest.mark.parametrize("name", target_names())
def test_every_shipped_target_validates_against_the_json_schema(name):
    text = (ROOT / "targets" / f"{name}.yaml").read_text()
    jsonschema.validate(yaml.safe_load(text), json_schema())


def test_the_json_schema_rejects_what_the_loader_rejects():
    data = yaml.safe_load(SPINNAKER2.read_text())
    data["cores"]["limits"]["neuronz"] = 3
    with pytest.raises(jsonschema.ValidationError, match="neuronz"):
        jsonschema.validate(data, json_schema())
    data = yaml.safe_load(SPINNAKER2.read_text())
    data["neuron_model"] = "hodgkin_huxley"
    with pytest.raises(jsonschema.ValidationError, match="hodgkin_huxley"):
        jsonschema.validate(data, json_schema())


def test_targets_schema_command_prints_the_schema_and_the_table(capsys):
    assert main(["targets", "schema"]) == 0
    assert capsys.readouterr().out == json_schema_text()
    assert main(["targets", "schema", "--markdown"]) == 0
    assert capsys.readouterr().out == markdown_field_table()


def test_schema_is_generated_from_the_loaders_model():
    schema = json_schema()
    assert set(schema["properties"]) == set(Target.model_fields)
    assert schema["properties"]["mapping"]["enum"] == ["neuron_partition", "layer_per_core",
                                                       "fixed_fabric"]
    assert np.all([p in schema["properties"]["passes"]["items"]["enum"]
                   for p in load_target("spinnaker2").passes])


def test_the_guides_minimal_chip_is_valid_and_holds_the_mlp(tmp_path):
    guide = (ROOT / "docs" / "targets.md").read_text()
    example = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "mychip.yaml"
    path.write_text(example)
    target = load_target(str(path))
    assert (target.name, target.core_count, target.cores.limits.neurons) == ("mychip", 64, 512)
    result = compile(EXAMPLES / "mlp.nir", target, None, calibration_steps=0)
    assert result.placement.cores_used == 1
