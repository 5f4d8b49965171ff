"""Spiking outputs kept on Xylo's hidden neurons and counted through the readout's current.

nirc.targets.xylo.relay: one readout neuron per output neuron, weight CHARGE, dash_syn 1,
dash_mem 0, never firing; the host decodes the layer's spikes per step from the readout's
recorded synaptic current. The decode must give back exactly the hidden layer's spike
counts (up to 31 per step, one step later), on nirc's emulator and on xylosim alike.
"""

from __future__ import annotations

import numpy as np
import pytest

from nirc.neuron_models.xylo_lif import MAX_HIDDEN_SPIKES, STATE_MAX, XyloFabric, XyloSpec
from nirc.targets.xylo.relay import CHARGE, PACKED, PACKED_SHIFT, decode_counts


def relay_spec(seed: int = 0, nin: int = 8, nh: int = 12, shift_out: int = 0) -> XyloSpec:
    """Random hidden layer driven hard enough to fire bursts; readout i relays hidden i."""
    rng = np.random.default_rng(seed)
    w_in = np.zeros((nin, nh, 2), np.int64)
    w_in[:, :, 0] = rng.integers(-40, 127, (nin, nh))
    w_out = np.zeros((nh, nh), np.int64)
    np.fill_diagonal(w_out, max(1, CHARGE >> shift_out))
    return XyloSpec(
        weights_in=w_in, weights_rec=np.zeros((nh, nh, 2), np.int64), weights_out=w_out,
        dash_mem=rng.integers(1, 5, nh), dash_syn=rng.integers(1, 4, nh), dash_syn_2=np.ones(nh, np.int64),
        threshold=rng.integers(20, 400, nh), bias=np.zeros(nh, np.int64),
        dash_mem_out=np.zeros(nh, np.int64), dash_syn_out=np.ones(nh, np.int64),
        threshold_out=np.full(nh, STATE_MAX), bias_out=np.zeros(nh, np.int64),
        weight_shift_in=3, weight_shift_rec=0, weight_shift_out=shift_out).validate()


def events(seed: int, steps: int = 80, nin: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return (rng.random((1, steps, nin)) < 0.4) * rng.integers(1, 16, (1, steps, nin))


@pytest.mark.parametrize("shift_out", [0, 3, 7])
def test_decoded_readout_current_is_the_hidden_layers_spikes_one_step_later(shift_out):
    spec = relay_spec(seed=shift_out, shift_out=shift_out)
    rec, _ = XyloFabric.build(spec).run(events(shift_out))
    hidden = rec.spikes[0]
    assert hidden.max() > 10, "the test needs bursts of many spikes per step"
    assert rec.spikes_out.sum() == 0
    decoded = decode_counts(rec.i_syn_out[0], [max(1, CHARGE >> shift_out) << shift_out])
    assert np.array_equal(decoded[1:], hidden[:-1])
    assert np.array_equal(decoded[0], np.zeros(spec.n_outputs))


def test_decode_holds_at_31_spikes_per_step_every_step():
    spec = relay_spec()
    spec = XyloSpec(**{**spec.__dict__, "threshold": np.ones(spec.n_hidden, np.int64)}).validate()
    rec, _ = XyloFabric.build(spec).run(np.full((1, 30, spec.n_inputs), 15))
    assert rec.spikes[0].max() == MAX_HIDDEN_SPIKES
    decoded = decode_counts(rec.i_syn_out[0], [CHARGE])
    assert np.array_equal(decoded[1:], rec.spikes[0][:-1])


def packed_spec(seed: int = 0, nin: int = 8, nh: int = 12) -> XyloSpec:
    """As relay_spec, two hidden neurons per readout neuron with charges PACKED."""
    spec = relay_spec(seed, nin, nh)
    w_out = np.zeros((nh, nh // 2), np.int64)
    w_out[np.arange(0, nh, 2), np.arange(nh // 2)] = PACKED[0] >> PACKED_SHIFT
    w_out[np.arange(1, nh, 2), np.arange(nh // 2)] = PACKED[1] >> PACKED_SHIFT
    half = {k: v[: nh // 2] for k, v in spec.__dict__.items() if k in ("dash_mem_out", "dash_syn_out", "threshold_out", "bias_out")}
    return XyloSpec(**{**spec.__dict__, **half, "weights_out": w_out,
                       "weight_shift_out": PACKED_SHIFT}).validate()


@pytest.mark.parametrize("seed", [0, 1])
def test_two_outputs_per_readout_neuron_decode_exactly(seed):
    spec = packed_spec(seed)
    rec, _ = XyloFabric.build(spec).run(events(seed, steps=120))
    assert rec.spikes[0].max() > 10
    decoded = decode_counts(rec.i_syn_out[0], PACKED)
    assert np.array_equal(decoded[1:], rec.spikes[0][:-1])
    saturating = XyloSpec(**{**spec.__dict__, "threshold": np.ones(spec.n_hidden, np.int64)}).validate()
    rec, _ = XyloFabric.build(saturating).run(np.full((1, 30, spec.n_inputs), 15))
    assert rec.spikes[0].max() == MAX_HIDDEN_SPIKES
    assert np.array_equal(decode_counts(rec.i_syn_out[0], PACKED)[1:], rec.spikes[0][:-1])


@pytest.mark.xylosim
def test_xylosim_reports_the_same_current(xylosim_v2):
    from nirc.targets.xylo.xylosim_bridge import run_xylosim

    spec = relay_spec(seed=5)
    counts = events(5)
    ours, _ = XyloFabric.build(spec).run(counts)
    theirs = run_xylosim(spec, counts[0])
    assert np.array_equal(theirs.i_syn_out.reshape(ours.i_syn_out.shape), ours.i_syn_out)
    assert np.array_equal(decode_counts(theirs.i_syn_out.reshape(ours.i_syn_out.shape)[0],
                                        [CHARGE])[1:], ours.spikes[0][:-1])


def test_a_spiking_layer_straight_after_the_input_runs_on_hidden_neurons(tmp_path):
    """Xylo's readout listens to hidden neurons only, so one spiking layer fed by the input
    was a FitError; counted through relays it runs as a hidden layer, and the build's output
    is its spike counts one step later."""
    from nirc.driver import compile as compile_model
    from nirc.emulator import Chip
    from nirc.ir.nodes import LIF, Affine, Input, NIRGraph, Output

    n = 4
    rng = np.random.default_rng(0)
    graph = NIRGraph(nodes={"input": Input(shape=np.array([3])),
                            "fc": Affine(weight=rng.uniform(0.5, 2.0, (n, 3)), bias=np.zeros(n)),
                            "layer": LIF(tau=np.full(n, 0.004), r=np.ones(n), v_leak=np.zeros(n),
                                         v_threshold=np.ones(n), v_reset=np.zeros(n)),
                            "output": Output(shape=np.array([n]))},
                     edges=(("input", "fc"), ("fc", "layer"), ("layer", "output")))
    result = compile_model(graph, "xylo_imu", tmp_path / "b", dt=1e-3)
    readout = result.report["pass_reports"]["quantize"]["readout"]
    assert readout["mode"] == "counts" and readout["spikes"]["fits"] is False
    assert result.report["pass_reports"]["latency_steps"]["layer.count"] == 1
    x = (rng.random((40, 2, 3)) < 0.5).astype(np.float64)
    run = Chip.load(tmp_path / "b").run({"input": x}, batch=True, record=True)
    assert run.spikes["layer"].sum() > 0
    assert np.array_equal(run.outputs["output"][1:], run.spikes["layer"][:-1])


def test_nine_spiking_outputs_fit_eight_readout_neurons_and_seventeen_do_not():
    from nirc.driver import compile as compile_model
    from nirc.errors import FitError
    from nirc.ir.nodes import LIF, Affine, Input, NIRGraph, Output

    def net(n_out):
        rng = np.random.default_rng(n_out)
        return NIRGraph(nodes={"input": Input(shape=np.array([4])),
                               "w0": Affine(weight=rng.uniform(0, 2, (8, 4)), bias=np.zeros(8)),
                               "h": LIF(tau=np.full(8, 0.004), r=np.ones(8), v_leak=np.zeros(8),
                                        v_threshold=np.ones(8), v_reset=np.zeros(8)),
                               "w1": Affine(weight=rng.uniform(0, 1, (n_out, 8)), bias=np.zeros(n_out)),
                               "out": LIF(tau=np.full(n_out, 0.004), r=np.ones(n_out),
                                          v_leak=np.zeros(n_out), v_threshold=np.ones(n_out),
                                          v_reset=np.zeros(n_out)),
                               "output": Output(shape=np.array([n_out]))},
                        edges=(("input", "w0"), ("w0", "h"), ("h", "w1"), ("w1", "out"),
                               ("out", "output")))

    result = compile_model(net(9), "xylo", None, dt=1e-3)
    assert result.report["pass_reports"]["quantize"]["readout"]["counts"][
        "outputs_per_readout_neuron"] == 2
    with pytest.raises(FitError, match="output_neurons"):
        compile_model(net(17), "xylo", None, dt=1e-3)
