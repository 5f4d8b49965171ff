"""The shipped example models: readable, small, and spiking in every layer on make_inputs' input."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from nirc.ir.nodes import CubaLIF, IF, LIF
from nirc.nirio import read
from nirc.simulate import simulate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_make_inputs():
    spec = importlib.util.spec_from_file_location("make_inputs", EXAMPLES / "make_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name,neurons,dt", [
    ("mlp", {LIF: 2}, 1e-4), ("cnn", {IF: 3}, 1.0), ("srnn", {LIF: 1, CubaLIF: 1}, 1e-4)])
def test_example_is_under_1mb_and_every_spiking_layer_fires(tmp_path, name, neurons, dt):
    path = EXAMPLES / f"{name}.nir"
    assert path.stat().st_size < 1 << 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the examples need no quirk repairs
        graph = read(path)
    assert graph.metadata["dt"] == dt and graph.metadata["script"] == "examples/make_examples.py"
    kinds = {}
    for node in graph.nodes.values():
        kinds[type(node)] = kinds.get(type(node), 0) + 1
    assert {k: kinds.get(k, 0) for k in neurons} == neurons
    out = tmp_path / "in.npz"
    assert load_make_inputs().main(["--model", str(path), "--steps", "100", "--out",
                                    str(out)]) == 0
    with np.load(out) as npz:
        res = simulate(graph, {next(iter(graph.inputs())): npz["input"]})
    rates = {node: train.mean() for node, train in res.spikes.items()}
    assert all(0.005 < r < 0.5 for r in rates.values()), rates


def test_srnn_hidden_layer_is_recurrent_and_xylo_sized():
    graph = read(EXAMPLES / "srnn.nir")
    (inp,) = graph.inputs().values()
    (out,) = graph.outputs().values()
    assert list(inp.shape) == [16] and list(out.shape) == [8]
    assert ("1.lif", "1.w_rec") in graph.edges and ("1.w_rec", "1.lif") in graph.edges
    assert graph.nodes["1.lif"].tau.shape == (64,)


def test_make_inputs_is_seeded_bernoulli_matching_the_input_shape(tmp_path):
    make_inputs = load_make_inputs()
    a = make_inputs.spike_inputs({"in": (2, 3)}, steps=4000, rate=0.25, seed=3)
    b = make_inputs.spike_inputs({"in": (2, 3)}, steps=4000, rate=0.25, seed=3)
    assert list(a) == ["input"] and a["input"].shape == (4000, 2, 3)
    np.testing.assert_array_equal(a["input"], b["input"])
    assert set(np.unique(a["input"])) == {0.0, 1.0}
    assert abs(a["input"].mean() - 0.25) < 0.01
    several = make_inputs.spike_inputs({"x": (1,), "y": (2,)}, steps=2, rate=0.5, seed=0)
    assert sorted(several) == ["input_x", "input_y"]


def test_make_inputs_reports_an_unreadable_model_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.nir"
    bad.write_text("not hdf5")
    assert load_make_inputs().main(["--model", str(bad), "--steps", "3", "--out",
                                    str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}") and err.count("\n") == 1
    assert not (tmp_path / "x.npz").exists()
