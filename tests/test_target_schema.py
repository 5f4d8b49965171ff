"""Target YAML files: what a valid target is, and the one-line error for each kind of mistake.

Every error names the file and the dotted field, and says what is allowed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import nirc.cli as cli
from nirc.errors import TargetError
from nirc.target import (RESOURCES, check_target_file, list_targets, load_target, target_aliases,
                         target_names)

REPO_TARGETS = Path(__file__).resolve().parents[1] / "targets"
NEURON_PARTITION_LIMITS = "neurons, synapses, synapse_memory_bits, fan_in_axons, fan_out_axons, neuron_profiles"


def base() -> dict:
    """A valid neuron_partition target, as a YAML mapping."""
    return {
        "name": "toy",
        "description": "a four-core test chip",
        "neuron_model": "loihi_cuba_lif",
        "mapping": "neuron_partition",
        "default_dt": 0.001,
        "passes": ["normalize", "discretize", "fuse", "unroll", "quantize"],
        "cores": {"count": 4, "limits": {"neurons": 100, "fan_in_axons": 400}},
        "formats": {"weight_bits": 8, "state_bits": 24},
    }


def write(tmp_path: Path, data, name: str = "toy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def error_for(tmp_path: Path, data) -> str:
    path = write(tmp_path, data)
    with pytest.raises(TargetError) as info:
        load_target(str(path))
    message = str(info.value)
    assert "\n" not in message
    prefix = f"{path}: "
    assert message.startswith(prefix)
    return message[len(prefix):]


def changed(path: str, value):
    data = base()
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    node[last] = value
    return data


def without(path: str):
    data = base()
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    del node[last]
    return data


@pytest.mark.parametrize("data, expected", [
    (changed("cores.limits.neurons", -3), "field 'cores.limits.neurons': must be > 0, got -3"),
    (changed("cores.count", 0), "field 'cores.count': must be > 0, got 0"),
    (changed("cores.count", "many"), "field 'cores.count': must be an integer, got 'many'"),
    (changed("default_dt", 0), "field 'default_dt': must be > 0, got 0"),
    (changed("partitioner.seed", -1), "field 'partitioner.seed': must be >= 0, got -1"),
    (changed("formats.weight_bits", 0), "field 'formats.weight_bits': must be > 0, got 0"),
    (changed("mapping", "neuron"),
     "field 'mapping': must be one of 'neuron_partition', 'layer_per_core' or 'fixed_fabric', got 'neuron'"),
    (changed("name", "Loihi-X"),
     "field 'name': must be lower-case letters, digits and '_' (starting with a letter), got 'Loihi-X'"),
    (without("description"), "field 'description': required field missing"),
    (without("cores.limits.neurons"),
     "field 'cores.limits.neurons': required field missing (the neuron_partition mapping needs it)"),
    (changed("cores.limits.kernel_memory_words", 1024),
     "field 'cores.limits.kernel_memory_words': not a limit of the neuron_partition mapping; "
     f"allowed: {NEURON_PARTITION_LIMITS}"),
    (changed("cores.limits.neuronz", 3),
     f"field 'cores.limits.neuronz': unknown field 'neuronz'; allowed: {', '.join(RESOURCES)}"),
    (changed("colour", "blue"),
     "field 'colour': unknown field 'colour'; allowed: name, description, aliases, vendor, backend, "
     "backend_options, neuron_model, mapping, default_dt, passes, cores, chip, formats, partitioner, "
     "sources, system"),
    (changed("cores.overrides", [{"cores": [1, 9], "limits": {"neurons": 50}}]),
     "field 'cores.overrides.0.cores': core 9 does not exist (cores are 0..3)"),
    (changed("cores.overrides", [{"cores": [1], "limits": {"neurons": 50}},
                                 {"cores": [2, 1], "limits": {"neurons": 60}}]),
     "field 'cores.overrides.1.cores': core 1 is overridden twice"),
    (changed("cores.overrides", [{"cores": [1], "limits": {"neurons": -5}}]),
     "field 'cores.overrides.0.limits.neurons': must be > 0, got -5"),
    (changed("passes", ["normalize", "no_such_pass"]), None),
    (changed("neuron_model", "no_such_model"), None),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_field_error_names_the_field_and_what_is_allowed(tmp_path, data, expected):
    message = error_for(tmp_path, data)
    if expected is not None:
        assert message == expected
    elif data["passes"][-1] == "no_such_pass":
        assert message.startswith("field 'passes.1': must be one of 'balance_delays', 'discretize', ")
        assert message.endswith(", got 'no_such_pass'")
    else:
        assert message.startswith("field 'neuron_model': must be one of ")
        assert "'loihi_cuba_lif'" in message and message.endswith(", got 'no_such_model'")


def test_broken_yaml_syntax_names_the_file_line_and_column(tmp_path):
    message = error_for(tmp_path, "name: toy\ncores: {count: 4\nformats: x\n")
    assert message.startswith("invalid YAML at line 3, column ")


def test_a_yaml_that_is_not_a_mapping_is_rejected(tmp_path):
    assert error_for(tmp_path, "- one\n- two\n") == "must be a mapping of fields, got list"


def test_a_target_written_anywhere_loads_by_path_with_per_core_overrides(tmp_path):
    data = changed("cores.overrides", [{"cores": [0, 3], "limits": {"neurons": 50}}])
    path = write(tmp_path, data, "my_chip.yaml")
    target = load_target(str(path))
    assert (target.name, target.core_count, target.source) == ("toy", 4, str(path))
    assert target.limits_of(0) == {"neurons": 50, "fan_in_axons": 400}
    assert target.limits_of(1) == {"neurons": 100, "fan_in_axons": 400}
    assert target.cores.uniform is False
    assert check_target_file(path).name == "toy"
    assert target.raw == data


def test_formats_read_like_a_dict_with_defaults():
    formats = load_target("loihi2").formats
    assert formats["weight_bits"] == 8 and formats.get("threshold_shift") == 6
    assert formats.get("no_such_format", 7) == 7 and "no_such_format" not in formats


def test_an_unknown_name_lists_the_shipped_targets():
    with pytest.raises(TargetError) as info:
        load_target("loihi9")
    assert str(info.value) == (f"unknown target 'loihi9'; available: {', '.join(target_names())} "
                               f"(or give a path to a YAML file)")


def test_a_missing_file_is_named():
    with pytest.raises(TargetError, match=r"^nowhere/chip.yaml: no such target file$"):
        load_target("nowhere/chip.yaml")


@pytest.mark.parametrize("name", target_names())
def test_every_shipped_target_validates_and_is_named_like_its_file(name):
    target = load_target(name)
    assert target.name == name
    assert target.source == f"targets/{name}.yaml"


def test_every_yaml_in_targets_is_listed():
    on_disk = sorted(p.stem for p in REPO_TARGETS.glob("*.yaml"))
    assert target_names() == on_disk
    assert [t.name for t in list_targets()] == on_disk


def test_loihi2_is_a_128_core_neuron_partition_chip():
    target = load_target("loihi2")
    assert (target.core_count, target.mapping, target.neuron_model) == (128, "neuron_partition", "loihi_cuba_lif")
    assert target.limits_of(127) == {"neurons": 8192, "synapse_memory_bits": 1048576,
                                     "fan_in_axons": 8192, "fan_out_axons": 8192,
                                     "neuron_profiles": 32}


def run_cli(monkeypatch, *argv) -> int:
    monkeypatch.setattr(cli, "COMMANDS", ["targets"])
    return cli.main(list(argv))


def test_cli_check_accepts_a_valid_file_and_rejects_a_bad_one_with_exit_2(tmp_path, monkeypatch, capsys):
    good = write(tmp_path, base(), "good.yaml")
    assert run_cli(monkeypatch, "targets", "check", str(good)) == 0
    assert capsys.readouterr().out.strip() == (
        f"{good}: valid target 'toy' (neuron_partition, 4 cores, neuron model loihi_cuba_lif)")
    bad = write(tmp_path, changed("cores.limits.neurons", -3), "bad.yaml")
    assert run_cli(monkeypatch, "targets", "check", str(bad)) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {bad}: field 'cores.limits.neurons': must be > 0, got -3\n"
    assert captured.out == ""


def test_cli_lists_every_shipped_target(monkeypatch, capsys):
    assert run_cli(monkeypatch, "targets") == 0
    out = capsys.readouterr().out
    for name in target_names():
        assert name in out
    assert "neuron_partition" in out and "loihi_cuba_lif" in out


def test_aliases_name_shipped_targets_and_load_them():
    aliases = target_aliases()
    names = set(target_names())
    assert not names & set(aliases), "an alias must not shadow a target name"
    for alias, name in aliases.items():
        assert name in names
        assert load_target(alias).name == name
