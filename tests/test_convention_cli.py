"""The convention on the command line: inspect shows it with evidence, simulate/compile/verify
take the same options, report.json and verify --json record it.

Files are built here as the exporters write them (tests/test_convention.py); the
frameworks themselves are in tests/test_framework_conventions.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nirc.cli import main
from nirc.ir.nodes import IF, Affine, Input, LIF, NIRGraph, Output
from nirc.nirio.writer import write
from test_convention import snntorch_lif
from test_refusal_hints import snntorch_rnn


def mlp(neuron_out, neuron_hidden, n_in=6, hidden=8, n_out=3, bias=0.0) -> NIRGraph:
    rng = np.random.default_rng(0)
    return NIRGraph(
        nodes={"input": Input(shape=np.array([n_in])),
               "fc1": Affine(weight=rng.normal(0, 1, (hidden, n_in)), bias=np.full(hidden, bias)),
               "h": neuron_hidden,
               "fc2": Affine(weight=rng.normal(0, 1, (n_out, hidden)), bias=np.full(n_out, bias)),
               "o": neuron_out, "output": Output(shape=np.array([n_out]))},
        edges=(("input", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "o"), ("o", "output")))


def sinabs_if(n):
    return IF(r=np.ones(n, np.float32), v_threshold=np.ones(n, np.float32),
              v_reset=np.zeros(n, np.float32))


@pytest.fixture
def snntorch_file(tmp_path):
    path = tmp_path / "snn.nir"
    write(path, mlp(snntorch_lif(0.8, 3), snntorch_lif(0.9, 8)))
    return path


def test_inspect_names_the_exporter_with_its_evidence(snntorch_file, capsys):
    assert main(["inspect", str(snntorch_file)]) == 0
    out = capsys.readouterr().out
    assert "exporter: snntorch 1.0" in out
    assert ("looks like an snnTorch 1.0 export; assuming dt = 0.0001 s, euler, subtract reset "
            "one step late, one spike per step, spike when v > threshold") in out
    assert "r = tau/1e-4 on 2 of 2 neuron nodes" in out


def test_inspect_json_carries_the_convention_and_its_sources(snntorch_file, capsys):
    assert main(["inspect", "--json", str(snntorch_file)]) == 0
    doc = json.loads(capsys.readouterr().out)["convention"]
    assert doc["exporter"] == "snntorch" and doc["dt"] == 1e-4
    assert doc["sources"]["dt"] == "detection" and doc["sources"]["v_min"] == "default"
    assert doc["evidence"] and doc["candidates"] == ["snntorch"]


def test_inspect_says_unknown_with_the_reason_for_a_hand_written_file(tmp_path, capsys):
    lif = LIF(tau=np.full(8, 0.02), r=np.full(8, 2.0), v_leak=np.zeros(8),
              v_threshold=np.ones(8))
    out_lif = LIF(tau=np.full(3, 0.05), r=np.full(3, 2.0), v_leak=np.zeros(3),
                  v_threshold=np.ones(3))
    path = tmp_path / "hand.nir"
    write(path, mlp(out_lif, lif))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "exporter: unknown" in out
    assert "no exporter's pattern fits (not snnTorch: node 'h': r is not tau/1e-4" in out


def test_an_ambiguous_file_warns_naming_the_candidates_and_the_flag(tmp_path, capsys):
    path = tmp_path / "if.nir"
    write(path, mlp(sinabs_if(3), sinabs_if(8)))
    np.savez(tmp_path / "in.npz", input=np.ones((5, 6)))
    assert main(["simulate", str(path), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "out.npz")]) == 0
    err = capsys.readouterr().err
    assert ("warning: " + str(path) + ": ambiguous: the file fits Norse as well; --from sinabs "
            "or --from norse settles it") in err


def test_simulate_options_override_the_detected_rules(tmp_path, capsys):
    path = tmp_path / "if.nir"
    write(path, mlp(sinabs_if(3), sinabs_if(8)))
    x = np.random.default_rng(1).uniform(0, 1.5, (30, 6))
    np.savez(tmp_path / "in.npz", input=x)
    runs = {}
    for name, options in {"detected": [], "single": ["--spikes", "single"],
                          "nir": ["--from", "nir", "--dt", "1"]}.items():
        out = tmp_path / f"{name}.npz"
        assert main(["-q", "simulate", str(path), "--input", str(tmp_path / "in.npz"),
                     "--output", str(out), *options]) == 0
        runs[name] = np.load(out)["output"]
    assert runs["detected"].max() > 1          # Sinabs: several spikes per step
    assert runs["single"].max() == 1
    assert not np.array_equal(runs["single"], runs["nir"])   # subtract and >= vs NIR


def test_bad_option_values_are_one_line_errors(snntorch_file, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", input=np.ones((5, 6)))
    assert main(["simulate", str(snntorch_file), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz"), "--v-min", "nan"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        "error: --v-min must be a finite number, got nan"
    assert main(["simulate", str(snntorch_file), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz"), "--max-spikes", "0"]) == 2
    assert not (tmp_path / "o.npz").exists()


def test_compile_records_the_convention_and_option_sources(tmp_path):
    model = tmp_path / "rnn.nir"
    write(model, snntorch_rnn())
    assert main(["-q", "compile", str(model), "--target", "xylo", "-o", str(tmp_path / "b"),
                 "--reset", "zero", "--no-reset-delay"]) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())["convention"]
    assert (report["exporter"], report["reset"], report["reset_delay"]) == \
        ("snntorch", "zero", False)
    assert report["sources"]["reset"] == "option" and report["sources"]["dt"] == "detection"


def test_verify_compares_with_the_model_as_trained_and_with_nir_semantics(tmp_path, capsys):
    model = tmp_path / "rnn.nir"
    write(model, snntorch_rnn())
    assert main(["verify", str(model), "--target", "xylo", "--json", "--steps", "40",
                 "--samples", "2"]) == 0
    record = json.loads(capsys.readouterr().out)["results"][0]
    row = record["outputs"][0]
    assert "count_correlation" in row and "count_correlation_nir" in row
    assert any("the model as trained (looks like an snnTorch 1.0 export" in n
               for n in record["notes"])


def test_unreadable_metadata_rules_are_one_line_errors_but_inspect_still_shows_the_file(
        tmp_path, capsys):
    graph = mlp(sinabs_if(3), sinabs_if(8))
    path = tmp_path / "meta.nir"
    write(path, NIRGraph(nodes=graph.nodes, edges=graph.edges,
                         metadata={"dt": 1.0, "reset": "sometimes"}))
    np.savez(tmp_path / "in.npz", input=np.ones((5, 6)))
    assert main(["simulate", str(path), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path}: parameter 'reset': reset must be one of zero, subtract, "
                   f"got 'sometimes' (the file's metadata)"]
    assert main(["inspect", str(path)]) == 0
    assert "exporter: unknown" in capsys.readouterr().out
