"""What each chip's neuron model tells the user: when spikes arrive (nirc verify's latency note)
and which input values it takes as they are (nirc emulate's input warning)."""

from pathlib import Path

import numpy as np
import pytest

from core_graphs import mlp, spikes
from nirc.cli import main
from nirc.driver import compile
from nirc.neuron_models import get_model
from nirc.verify import verify
from speck_networks import affine, chain, iaf

TINY = str(Path(__file__).parent / "targets" / "tiny_loihi_4.yaml")
ALIGNED = "; fidelity compares integer step t + latency_steps with float step t"


def speck_mlp():
    rng = np.random.default_rng(0)
    return chain((8,), [("fc1", affine(rng, 6, 8, scale=0.8)), ("if1", iaf((6,))),
                        ("fc2", affine(rng, 3, 6, scale=0.8)), ("if2", iaf((3,)))], (3,))


def test_verify_on_loihi_notes_that_every_table_delivers_one_step_late():
    report = verify(mlp(), TINY, steps=12, samples=1, calibration_steps=0,
                    partition_method="sequential")
    assert report.notes == [
        "integer runs lag the float simulation where the hardware adds synaptic delay (Loihi's "
        "synapses buffer one step: every table delivers a spike one step after it is sent)"
        + ALIGNED]
    assert {row["output"]: row["latency_steps"] for row in report.outputs} == {"out": 2}


def test_verify_on_xylo_notes_same_step_inputs_and_one_step_between_neurons():
    report = verify(mlp(), "xylo", steps=12, samples=1)
    assert report.notes == [
        "integer runs lag the float simulation where the hardware adds synaptic delay (Xylo: "
        "input events reach hidden neurons in the same step; hidden spikes reach hidden and "
        "readout neurons one step later)" + ALIGNED]
    # input -> hidden is same-step on Xylo; only hidden -> readout adds a step
    assert {row["output"]: row["latency_steps"] for row in report.outputs} == {"out": 1}
    assert report.bit_exact


def test_verify_on_speck_notes_event_driven_delivery_and_adds_no_step():
    report = verify(speck_mlp(), "speck2f", steps=12, samples=1, dt=1.0)
    assert report.notes == ["Speck is event-driven: a spike reaches the next layer within its "
                            "step, no step is added; integer and float runs are compared step "
                            "for step"]
    assert all(row["latency_steps"] == 0 for row in report.outputs)


def test_emulate_on_loihi_warns_that_counts_above_one_are_single_spikes(tmp_path, capsys):
    compile(mlp(), TINY, tmp_path / "b", calibration_steps=0, partition_method="sequential")
    np.savez(tmp_path / "in.npz", input=2.0 * spikes((8,), steps=5))
    assert main(["emulate", str(tmp_path / "b"), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz")]) == 0
    assert (f"{tmp_path / 'in.npz'}: array 'input' holds values other than 0 and 1; the chip's "
            f"inputs are binary spikes (non-zero counts as one spike)") in capsys.readouterr().err


def test_emulate_on_xylo_takes_up_to_15_events_per_channel_without_warning(tmp_path, capsys):
    compile(mlp(), "xylo", tmp_path / "b")
    counts = np.random.default_rng(0).integers(0, 16, size=(5, 8))
    assert counts.max() == 15
    np.savez(tmp_path / "in.npz", input=counts)
    assert main(["emulate", str(tmp_path / "b"), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz")]) == 0
    assert "warning" not in capsys.readouterr().err.lower()
    assert np.load(tmp_path / "o.npz")["output"].shape == (5, 3)


def test_emulate_on_xylo_warns_that_counts_above_15_are_capped(tmp_path, capsys):
    compile(mlp(), "xylo", tmp_path / "b")
    counts = np.zeros((5, 8), np.int64)
    counts[2, 3] = 16
    np.savez(tmp_path / "in.npz", input=counts)
    assert main(["emulate", str(tmp_path / "b"), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz")]) == 0
    assert (f"{tmp_path / 'in.npz'}: array 'input' holds counts above 15; Xylo takes at most 15 "
            f"input events per channel and step (more are capped)") in capsys.readouterr().err


@pytest.mark.parametrize("model, values, notice", [
    ("loihi_cuba_lif", [0, 1, 1], None),
    ("loihi_cuba_lif", [0, 0.5], "holds values other than 0 and 1; the chip's inputs are binary "
                                 "spikes (non-zero counts as one spike)"),
    ("xylo_lif", [0, 7, 15], None),
    ("xylo_lif", [0, 16], "holds counts above 15; Xylo takes at most 15 input events per "
                          "channel and step (more are capped)"),
    ("speck_iaf", [0, 3, 40], None),
])
def test_each_neuron_model_says_which_input_values_it_reads_differently(model, values, notice):
    assert get_model(model).input_notice(np.asarray(values)) == notice


def test_speck_refuses_fractional_input_naming_the_array(tmp_path, capsys):
    cnn = str(Path(__file__).resolve().parents[1] / "examples" / "cnn.nir")
    assert main(["-q", "compile", cnn, "--target", "speck", "-o", str(tmp_path / "b")]) == 0
    events = np.zeros((3, 2, 34, 34))
    events[1, 0, 5, 5] = 1.5
    np.savez(tmp_path / "in.npz", input=events)

    assert main(["emulate", str(tmp_path / "b"), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("input array for 'input' holds 1.5: Speck inputs are event counts, "
                        "non-negative integers per step")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "o.npz").exists()
