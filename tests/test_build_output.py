"""The build directory: byte-identical for identical compiles, never partial, and usable from the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest

from core_graphs import lif, mlp, recurrent, spikes
from nirc.cli import main
from nirc.driver import compile
from nirc.emulator import Chip
from nirc.errors import FitError, TargetError
from nirc.ir.nodes import Input, Linear, NIRGraph, Output
from nirc.nirio import write

TINY = str(Path(__file__).parent / "targets" / "tiny_loihi_4.yaml")


def test_determinism_same_input_and_options_give_byte_identical_builds(tmp_path):
    for name in ("a", "b"):
        compile(recurrent(), TINY, tmp_path / name, calibration_steps=10)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == [".nirc-build", "arrays.npz", "config.json", "report.json", "timings.json"]
    for f in (".nirc-build", "arrays.npz", "config.json", "report.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_atomic_output_a_failing_compile_leaves_no_out_dir(tmp_path):
    big = NIRGraph(nodes={"in": Input(shape=np.array([4])), "w": Linear(weight=np.ones((2000, 4))),
                          "l": lif(2000), "out": Output(shape=np.array([2000]))},
                   edges=(("in", "w"), ("w", "l"), ("l", "out")))
    with pytest.raises(FitError):
        compile(big, TINY, tmp_path / "build", calibration_steps=0)
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_a_failing_compile_keeps_the_previous_build(tmp_path):
    compile(mlp(), TINY, tmp_path / "build", calibration_steps=0, partition_method="sequential")
    before = (tmp_path / "build" / "config.json").read_bytes()
    bad = mlp()
    nodes = dict(bad.nodes, lif1=lif(tau=0.005, thr=0.0, v_reset=0.5))
    with pytest.raises(TargetError, match="node 'lif1'.*not above the reset"):
        compile(NIRGraph(nodes=nodes, edges=bad.edges), TINY, tmp_path / "build",
                calibration_steps=0)
    assert (tmp_path / "build" / "config.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


def test_config_lists_every_neuron_on_exactly_one_core_and_every_synapse_once(tmp_path):
    result = compile(mlp(), TINY, tmp_path / "b", calibration_steps=0,
                     partition_method="sequential")
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["format"] == "nirc-deployment-config" and config["schema_version"] == 1
    for pop in config["populations"]:
        covered = sorted((s, e) for s, e, _ in pop["blocks"])
        assert covered[0][0] == 0 and covered[-1][1] == pop["size"]
        assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))
    stored = sum(s["synapses"] for c in config["cores"] for s in c["synapses"])
    assert stored == sum(t["synapses"] for t in config["tables"]) == result.network.synapse_count
    assert {t["sign_mode"] for t in config["tables"]} <= {1, 2, 3}
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["cores_used"] == len(config["cores"]) >= report["lower_bound"]
    assert {row["population"] for row in report["quantization"]} == {"lif1", "lif2"}


def test_dump_after_writes_the_intermediate_stage(tmp_path):
    compile(mlp(), TINY, tmp_path / "b", calibration_steps=0, partition_method="sequential",
            dump_after="fuse")
    dumped = json.loads((tmp_path / "b" / "dump" / "after-fuse.json").read_text())
    assert dumped["kind"] == "hardware_network" and set(dumped["populations"]) == {"lif1", "lif2"}
    compile(mlp(), TINY, tmp_path / "c", calibration_steps=0, partition_method="sequential",
            dump_after="normalize")
    assert (tmp_path / "c" / "dump" / "after-normalize.nir").is_file()
    compile(mlp(), TINY, tmp_path / "d", calibration_steps=0, partition_method="sequential",
            dump_after="discretize")
    dumped = json.loads((tmp_path / "d" / "dump" / "after-discretize.json").read_text())
    assert dumped["nodes"]["lif1"]["type"] == "nirc.DiscreteNeuron"
    key = dumped["nodes"]["lif1"]["v_decay"]["array"]
    assert np.allclose(np.load(tmp_path / "d" / "dump" / "after-discretize.npz")[key], 0.8)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "rnn.nir"
    write(path, recurrent())
    return path


def test_cli_compile_emulate_verify(tmp_path, model_file, capsys):
    build = tmp_path / "build"
    assert main(["-q", "compile", str(model_file), "--target", TINY, "-o", str(build),
                 "--calibration-steps", "5"]) == 0
    np.savez(tmp_path / "in.npz", input=spikes((6,), steps=20))
    assert main(["-q", "emulate", str(build), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "out.npz"), "--record"]) == 0
    out = np.load(tmp_path / "out.npz")
    assert out["output"].shape == (20, 10) and "v_rlif" in out and "u_rlif" in out
    assert main(["-q", "verify", str(model_file), "--target", TINY, "--steps", "20",
                 "--samples", "2", "--calibration-steps", "5"]) == 0
    assert "bit-exact: yes" in capsys.readouterr().out


def test_cli_verify_exits_1_when_the_emulator_differs(model_file, monkeypatch, capsys):
    original = Chip.run

    def corrupted(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        result.states["rlif"]["v"][5, 0, 0] += 1
        return result

    monkeypatch.setattr(Chip, "run", corrupted)
    assert main(["-q", "verify", str(model_file), "--target", TINY, "--steps", "10",
                 "--samples", "1", "--calibration-steps", "0"]) == 1
    assert "MISMATCH state v of 'rlif': step 5, sample 0, index 0" in capsys.readouterr().out


def test_cli_errors_are_one_line_with_exit_2(tmp_path, model_file, capsys):
    assert main(["compile", str(model_file), "--target", "no_such_chip", "-o",
                 str(tmp_path / "b")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("warning")]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "no_such_chip" in errors[0]
    assert not (tmp_path / "b").exists()
    assert main(["emulate", str(tmp_path / "nothing"), "--input", "x.npz", "--output",
                 str(tmp_path / "o.npz")]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_output_path_that_is_a_file_or_a_foreign_folder_is_never_replaced(tmp_path, model_file,
                                                                          capsys):
    (tmp_path / "notes.txt").write_text("keep")
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "chapter1.tex").write_text("keep")

    for out, message in (("notes.txt", "exists and is not a directory"),
                         ("thesis", "exists and is not a nirc build (no .nirc-build marker)")):
        assert main(["-q", "compile", str(model_file), "--target", TINY, "-o",
                     str(tmp_path / out), "--calibration-steps", "0"]) == 2
        assert f"error: {tmp_path / out}: {message}" in capsys.readouterr().err

    assert (tmp_path / "notes.txt").read_text() == "keep"
    assert (tmp_path / "thesis" / "chapter1.tex").read_text() == "keep"


def test_verify_refuses_zero_steps_as_a_usage_error(model_file, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["verify", str(model_file), "--target", TINY, "--steps", "0"])
    assert exit_.value.code == 2
    assert "argument --steps: must be >= 1, got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_determinism_holds_across_processes_with_different_hash_seeds(tmp_path, model_file):
    import os
    import subprocess
    import sys

    for seed in ("1", "2"):
        subprocess.run([sys.executable, "-m", "nirc", "-q", "compile", str(model_file),
                        "--target", TINY, "-o", str(tmp_path / seed)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed})
    for f in ("arrays.npz", "config.json", "report.json"):
        assert (tmp_path / "1" / f).read_bytes() == (tmp_path / "2" / f).read_bytes(), f


def test_emulate_refuses_a_config_of_another_schema_version_naming_the_field(tmp_path, capsys):
    compile(recurrent(), TINY, tmp_path / "b", calibration_steps=0, partition_method="sequential")
    path = tmp_path / "b" / "config.json"
    config = json.loads(path.read_text())
    config["schema_version"] = 99
    path.write_text(json.dumps(config))
    np.savez(tmp_path / "in.npz", input=spikes((6,), steps=5))
    assert main(["emulate", str(tmp_path / "b"), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz")]) == 2
    assert "parameter 'schema_version': schema_version 99 is not supported" in \
        capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_emulate_warns_that_graded_inputs_count_as_single_spikes(tmp_path, capsys):
    compile(recurrent(), TINY, tmp_path / "b", calibration_steps=0, partition_method="sequential")
    np.savez(tmp_path / "in.npz", input=2.0 * spikes((6,), steps=5))
    assert main(["emulate", str(tmp_path / "b"), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz")]) == 0
    assert "values other than 0 and 1" in capsys.readouterr().err


def test_emulate_batch_mode_reads_and_writes_a_sample_axis(tmp_path):
    compile(mlp(readout=True), TINY, tmp_path / "b", calibration_steps=0,
            partition_method="sequential")
    np.savez(tmp_path / "in.npz", input=spikes((8,), steps=12, batch=5))
    assert main(["-q", "emulate", str(tmp_path / "b"), "--batch", "--input",
                 str(tmp_path / "in.npz"), "--output", str(tmp_path / "o.npz")]) == 0
    out = np.load(tmp_path / "o.npz")
    assert out["output"].shape == (12, 5, 3) and out["output"].dtype.kind == "i"
    assert out["voltage_out"].shape == (12, 5, 3) and out["voltage_out"].dtype.kind == "f"


def test_config_json_text_is_what_json_dumps_with_indent_1_writes():
    from enum import IntEnum

    from nirc.emitter import _json_default, dumps

    class Level(IntEnum):
        HIGH = 3

    doc = {"s": "naïve \"q\" \n", "i": -7, "big": 2 ** 70, "f": 0.1, "g": 1e-300, "t": True,
           "n": None, "e": [], "d": {}, "tuple": (1, "a", [2.5, False]), "level": Level.HIGH,
           "np": [np.int32(5), np.float64(0.25), np.float32(1.5), np.arange(3)],
           1: "int key", 2.5: "float key", None: "none key", False: "bool key",
           "nested": [{"a": [[[]], {}], "b": {"c": [1, {"d": "x"}]}}]}
    assert dumps(doc) == json.dumps(doc, indent=1, default=_json_default, allow_nan=False) + "\n"


def test_config_json_refuses_nan_and_inf_as_one_error():
    from nirc.emitter import dumps
    from nirc.errors import NircError

    for bad in (float("nan"), float("inf"), np.float64(-np.inf)):
        with pytest.raises(NircError, match="overflowed to NaN or Inf"):
            dumps({"x": [1, {"y": bad}]})
