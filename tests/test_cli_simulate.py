"""`nirc simulate`: NPZ in, NPZ out, with the simulator's results and one-line errors."""

import numpy as np
import pytest

from nirc.cli import main
from nirc.ir.nodes import IF, LI, Input, Linear, NIRGraph, Output
from nirc.nirio import write
from nirc.simulate import simulate


def two_layer(metadata=None):
    w = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 2.0]])
    return NIRGraph(nodes={"in": Input(np.array([3])), "w": Linear(w),
                           "if": IF(r=np.ones(2), v_threshold=np.full(2, 1.5),
                                    v_reset=np.zeros(2)),
                           "out": Output(np.array([2]))},
                    edges=(("in", "w"), ("w", "if"), ("if", "out")), metadata=metadata or {})


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.nir"
    write(path, two_layer())
    return path


def test_simulate_writes_the_simulators_outputs_and_traces(tmp_path, model, capsys):
    x = (np.random.default_rng(0).random((20, 3)) < 0.5).astype(np.float32)
    np.savez(tmp_path / "in.npz", input=x)
    out = tmp_path / "sub" / "out.npz"
    assert main(["simulate", str(model), "--input", str(tmp_path / "in.npz"), "--output",
                 str(out), "--dt", "1", "--record"]) == 0
    expected = simulate(two_layer(), {"in": x}, dt=1.0, record=True)
    with np.load(out) as npz:
        assert sorted(npz.files) == ["output", "spikes_if", "v_if"]
        np.testing.assert_array_equal(npz["output"], expected.outputs["out"])
        np.testing.assert_array_equal(npz["v_if"], expected.states["if"]["v"])
        assert npz["output"].sum() > 0


def test_simulate_takes_dt_from_the_file_metadata_and_names_several_inputs_and_outputs(tmp_path):
    g = NIRGraph(nodes={"a": Input(np.array([1])), "b": Input(np.array([1])),
                        "li": LI(tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1)),
                        "x": Output(np.array([1])), "y": Output(np.array([1]))},
                 edges=(("a", "li"), ("b", "li"), ("li", "x"), ("b", "y")),
                 metadata={"dt": 0.5})
    write(tmp_path / "g.nir", g)
    np.savez(tmp_path / "in.npz", input_a=np.ones((2, 1)), input_b=np.ones((2, 1)))
    assert main(["simulate", str(tmp_path / "g.nir"), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz"), "--method", "exact"]) == 0
    with np.load(tmp_path / "o.npz") as npz:
        assert sorted(npz.files) == ["output_x", "output_y"]
        # dt/tau = 0.5 from the metadata, exact: v = 2 (1 - e^{-t/2}).
        np.testing.assert_allclose(npz["output_x"][:, 0], 2 * (1 - np.exp(-0.5 * np.arange(1, 3))))
        np.testing.assert_array_equal(npz["output_y"][:, 0], [1, 1])


def test_wrong_input_shape_is_one_line_naming_the_array_and_exit_2(tmp_path, model, capsys):
    np.savez(tmp_path / "in.npz", input=np.zeros((10, 4)))
    out = tmp_path / "out.npz"
    assert main(["simulate", str(model), "--input", str(tmp_path / "in.npz"),
                 "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {tmp_path / 'in.npz'}: array 'input' has shape (10, 4), "
                   f"expected (T, 3) for Input node 'in'")
    assert not out.exists()


def test_missing_array_and_unreadable_file_are_errors(tmp_path, model, capsys):
    np.savez(tmp_path / "in.npz", spikes=np.zeros((10, 3)))
    assert main(["simulate", str(model), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz")]) == 2
    assert "no array 'input' for Input node 'in' (expected shape (T, 3)" in capsys.readouterr().err
    (tmp_path / "bad.npz").write_text("not a zip")
    assert main(["simulate", str(model), "--input", str(tmp_path / "bad.npz"),
                 "--output", str(tmp_path / "o.npz")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'bad.npz'}: cannot read")
    (tmp_path / "empty.npz").write_bytes(b"")
    assert main(["simulate", str(model), "--input", str(tmp_path / "empty.npz"),
                 "--output", str(tmp_path / "o.npz")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'empty.npz'}: is empty (0 bytes); "
                                       "expected an .npz archive\n")
    assert not (tmp_path / "o.npz").exists()


def test_a_non_positive_dt_option_is_named_as_the_option(tmp_path, model, capsys):
    np.savez(tmp_path / "in.npz", input=np.zeros((2, 3)))
    assert main(["simulate", str(model), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz"), "--dt", "0"]) == 2
    assert capsys.readouterr().err == "error: --dt must be a positive number of seconds, got 0\n"


def test_batch_option_takes_and_returns_a_batch_axis_after_time(tmp_path, model, capsys):
    x = (np.random.default_rng(1).random((15, 4, 3)) < 0.5).astype(np.float32)
    np.savez(tmp_path / "in.npz", input=x)
    assert main(["simulate", str(model), "--input", str(tmp_path / "in.npz"), "--output",
                 str(tmp_path / "o.npz"), "--dt", "1", "--batch"]) == 0
    with np.load(tmp_path / "o.npz") as npz:
        np.testing.assert_array_equal(
            npz["output"], simulate(two_layer(), {"in": x}, dt=1.0, batch=True).outputs["out"])
    np.savez(tmp_path / "flat.npz", input=x[:, 0])
    assert main(["simulate", str(model), "--input", str(tmp_path / "flat.npz"), "--output",
                 str(tmp_path / "o.npz"), "--batch"]) == 2
    assert "expected (T, B, 3)" in capsys.readouterr().err


def test_an_output_folder_that_cannot_be_created_is_one_line_with_exit_2(tmp_path, model, capsys):
    np.savez(tmp_path / "in.npz", input=np.zeros((4, 3)))
    (tmp_path / "file").write_text("not a folder")
    target = tmp_path / "file" / "sub" / "out.npz"
    assert main(["-q", "simulate", str(model), "--input", str(tmp_path / "in.npz"),
                 "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path / "file") in err
    assert len(err.strip().splitlines()) == 1
