"""`nirc compile/verify --target speck2f`: the build on disk, refusals as one line, verification."""

import json
from pathlib import Path

import numpy as np
import pytest

from nirc.cli import main
from nirc.nirio import write

from speck_networks import chain, conv, iaf

ROOT = Path(__file__).resolve().parents[1]
CNN, MLP = str(ROOT / "examples" / "cnn.nir"), str(ROOT / "examples" / "mlp.nir")
SPECK2F = ROOT / "targets" / "speck2f.yaml"


@pytest.mark.parametrize("target", ["speck2f", "speck2e", "dynapcnn_devkit"])
def test_compile_cnn_example_writes_a_speck_config_and_report(tmp_path, target):
    out = tmp_path / "build"
    assert main(["-q", "compile", CNN, "--target", target, "-o", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert (config["format"], config["backend"], config["chip"]) == ("nirc-speck-config", "speck",
                                                                     target)
    assert config["readout"] == (None if target == "dynapcnn_devkit" else {"enable": False})
    used = [i for i, layer in enumerate(config["cnn_layers"]) if layer["weights"]]
    assert sorted(used) == sorted(config["nirc"]["layers"][n]["core"] for n in ("1", "4", "8"))
    assert [row["population"] for row in report["quantization"]] == ["1", "4", "8"]
    assert all(-128 <= row["weight_range"][0] and row["weight_range"][1] <= 127
               for row in report["quantization"])
    assert report["cores_used"] == 3 and report["lower_bound"] == 3


def test_network_too_big_for_any_core_fails_in_one_line_with_a_fix_and_writes_nothing(tmp_path, capsys):
    rng = np.random.default_rng(0)
    model = tmp_path / "big.nir"
    write(model, chain((16, 64, 64), [("conv1", conv(rng, 32, 16, 3, padding=1)),
                                      ("if1", iaf((32, 64, 64)))], (32, 64, 64)))
    out = tmp_path / "build"
    assert main(["compile", str(model), "--target", "speck2f", "-o", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert err == ["error: node 'if1': layer of NIR nodes conv1 -> if1 on speck2f does not fit: "
                       "neuron memory 128Ki exceeds the 64Ki of core 0 by 64Ki (the best-fitting "
                       "core; largest kernel memory 64Ki, neuron memory 64Ki). To fit: at most 16 "
                       "output channels (now 32); or pool 2x2 earlier or use stride 2 so the "
                       "output map shrinks from 64x64 to 32x32"]
    assert not out.exists()


def test_leaky_lif_mlp_is_refused_naming_node_and_parameter(tmp_path, capsys):
    assert main(["compile", MLP, "--target", "speck2f", "-o",
                 str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert f"error: {MLP}: node '1', parameter 'tau': LIF leaks" in err


def test_speck_neurons_with_the_generic_quantize_pass_are_refused_naming_the_pass(tmp_path, capsys):
    text = SPECK2F.read_text().replace("name: speck2f", "name: speck_generic") \
        .replace("passes: [normalize, speck_lower, speck_quantize]",
                 "passes: [normalize, discretize, fuse, unroll, quantize]") \
        .replace("aliases: [speck]", "aliases: []")
    target = tmp_path / "speck_generic.yaml"
    target.write_text(text)

    assert main(["compile", CNN, "--target", str(target), "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert ("field 'passes.4': pass 'quantize' does not serve the 'speck_iaf' neuron model; the "
            "speck_iaf model runs passes: [normalize, speck_lower, speck_quantize]") in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_verify_cnn_example_is_bit_exact(capsys):
    assert main(["verify", CNN, "--target", "speck2f", "--steps", "10",
                 "--samples", "2"]) == 0
    assert "bit-exact: yes" in capsys.readouterr().out


def test_target_yaml_reset_mode_subtract_gives_subtract_reset(tmp_path):
    text = SPECK2F.read_text().replace("name: speck2f", "name: speck_sub") \
        .replace("reset_mode: nir ", "reset_mode: subtract ").replace("aliases: [speck]", "aliases: []")
    target = tmp_path / "speck_sub.yaml"
    target.write_text(text)
    out = tmp_path / "build"
    assert main(["-q", "compile", CNN, "--target", str(target), "-o", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert [config["cnn_layers"][spec["core"]]["return_to_zero"]
            for spec in config["nirc"]["layers"].values()] == [False, False, False]


@pytest.mark.parametrize("choice, expected", [("state_min", -32768), ("minus_threshold", None)])
def test_target_yaml_low_threshold_sets_every_core_s_membrane_floor(tmp_path, choice, expected):
    text = SPECK2F.read_text().replace("name: speck2f", "name: speck_floor") \
        .replace("low_threshold: state_min ", f"low_threshold: {choice} ") \
        .replace("aliases: [speck]", "aliases: []")
    target = tmp_path / "speck_floor.yaml"
    target.write_text(text)
    out = tmp_path / "build"
    assert main(["-q", "compile", CNN, "--target", str(target), "-o", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    cores = [config["cnn_layers"][spec["core"]] for spec in config["nirc"]["layers"].values()]
    assert [c["threshold_low"] for c in cores] == [
        expected if expected is not None else -c["threshold_high"] for c in cores]


@pytest.mark.parametrize("field, bad", [("reset_mode: nir ", "reset_mode: sideways "),
                                        ("low_threshold: state_min ", "low_threshold: floor ")])
def test_unknown_speck_neuron_option_is_a_one_line_target_error(tmp_path, capsys, field, bad):
    text = SPECK2F.read_text().replace(field, bad)
    target = tmp_path / "bad.yaml"
    target.write_text(text)
    assert main(["compile", CNN, "--target", str(target), "-o",
                 str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {target}: field 'backend_options.neuron.{field.split(':')[0]}'")
    assert err.count("\n") == 1
    assert not (tmp_path / "b").exists()


def test_alias_speck_selects_speck2f(tmp_path):
    out = tmp_path / "build"
    assert main(["-q", "compile", CNN, "--target", "speck", "-o", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["chip"] == "speck2f"
