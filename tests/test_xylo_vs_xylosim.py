"""Our Xylo arithmetic agrees bit for bit with SynSense's xylosim on every step, state and spike.

Each network is a XyloSpec in rockpool's vocabulary; xylosim.v2.XyloLayer is
built from it the way rockpool's XyloSim.from_specification does, both run the
same input events, and every recording (hidden and readout spikes, membrane
potentials, both synaptic currents) must be identical. Skipped without
xylosim unless NIRC_REQUIRE_ORACLES=1, which turns a missing xylosim into a failure.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nirc.neuron_models.xylo_lif import (MAX_HIDDEN_SPIKES, XyloFabric,
                                         XyloSpec, bitshift_decay, compose_saturating_adds, fire)

from nirc.targets.xylo.xylosim_bridge import run_xylosim

pytestmark = [pytest.mark.xylosim, pytest.mark.usefixtures("xylosim_v2")]

RECORDINGS = ["spikes", "spikes_out", "v_mem", "i_syn", "i_syn2", "v_mem_out", "i_syn_out"]


def random_spec(seed: int, nin=16, nh=60, nout=8, density=0.2, recurrent=True, two_synapses=True,
                weight_range=(-128, 127), shifts=(2, 2, 2), dash=(1, 6), threshold=(200, 2000),
                bias=None, aliases=()) -> XyloSpec:
    rng = np.random.default_rng(seed)

    def weights(shape):
        w = rng.integers(weight_range[0], weight_range[1] + 1, size=shape)
        return np.where(rng.random(shape) < density, w, 0)

    w_in = weights((nin, nh, 2))
    w_rec = weights((nh, nh, 2)) if recurrent else np.zeros((nh, nh, 2), np.int64)
    if not two_synapses:
        w_in[:, :, 1] = 0
        w_rec[:, :, 1] = 0
    bias_h = rng.integers(bias[0], bias[1] + 1, nh) if bias else np.zeros(nh, np.int64)
    bias_o = rng.integers(bias[0], bias[1] + 1, nout) if bias else np.zeros(nout, np.int64)
    alias_lists = [[] for _ in range(nh)]
    for src, dst in aliases:
        alias_lists[src].append(dst)
    return XyloSpec(
        weights_in=w_in, weights_rec=w_rec, weights_out=weights((nh, nout)),
        dash_mem=rng.integers(dash[0], dash[1] + 1, nh), dash_syn=rng.integers(dash[0], dash[1] + 1, nh),
        dash_syn_2=rng.integers(dash[0], dash[1] + 1, nh),
        threshold=rng.integers(threshold[0], threshold[1] + 1, nh), bias=bias_h,
        dash_mem_out=rng.integers(dash[0], dash[1] + 1, nout),
        dash_syn_out=rng.integers(dash[0], dash[1] + 1, nout),
        threshold_out=rng.integers(threshold[0], threshold[1] + 1, nout), bias_out=bias_o,
        weight_shift_in=shifts[0], weight_shift_rec=shifts[1], weight_shift_out=shifts[2],
        aliases=tuple(tuple(a) for a in alias_lists)).validate()


def random_events(seed: int, steps: int, nin: int, rate=0.3, max_count=3) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    counts = rng.integers(1, max_count + 1, size=(steps, nin))
    return np.where(rng.random((steps, nin)) < rate, counts, 0)


NETWORKS = {
    # Feed-forward, one synapse: input -> hidden -> readout only.
    "feed_forward": (random_spec(1, recurrent=False, two_synapses=False), random_events(1, 80, 16)),
    # Recurrent with both synaptic time constants in use.
    "recurrent_two_synapses": (random_spec(2), random_events(2, 80, 16)),
    # Weights at the rails shifted by 7 with many events: partial sums leave 16 bits,
    # so the order of saturating additions decides the result.
    "saturating_inputs": (random_spec(3, weight_range=(-128, 127), shifts=(7, 7, 7), density=0.5,
                                      dash=(3, 8), threshold=(20000, 32767)),
                          random_events(3, 60, 16, rate=0.6, max_count=12)),
    # Low thresholds and strong drive: hidden neurons hit the 31-spike cap.
    "multi_spike_up_to_31": (random_spec(4, weight_range=(60, 127), shifts=(6, 3, 1), threshold=(1, 40),
                                         density=0.4), random_events(4, 40, 16, rate=0.8, max_count=8)),
    # More than 15 events per channel and step (up to 255): the input cap applies.
    "input_event_cap": (random_spec(5, shifts=(3, 2, 2)), random_events(5, 50, 16, rate=0.5, max_count=255)),
    # Inhibition and negative biases drive states far below zero (biases switch on).
    "negative_states": (random_spec(6, weight_range=(-128, 20), shifts=(5, 4, 4), bias=(-3000, 500),
                                    dash=(2, 9)), random_events(6, 60, 16, rate=0.5, max_count=6)),
    # Alias chains: spikes copied to other hidden neurons, before and after them in index order.
    "aliases": (random_spec(7, nh=30, threshold=(50, 600), shifts=(4, 3, 3),
                            aliases=[(0, 5), (5, 9), (12, 3), (20, 21), (21, 20), (29, 0)]),
                random_events(7, 60, 16, rate=0.5, max_count=4)),
    # Corner values: no decay protection (dash 0), zero and negative thresholds, int16 extremes of bias.
    "corner_values": (dataclasses.replace(
        random_spec(8, nh=20, nout=4, dash=(0, 15), shifts=(7, 0, 7), bias=(-32768, 32767)),
        threshold=np.array([0, -1, -300, 1, 32767, -32768] + [100] * 14),
        threshold_out=np.array([0, -5, 1, 32767])), random_events(8, 40, 16, rate=0.5, max_count=20)),
    # The full XyloAudio 2 fabric: 16 inputs, 1000 hidden, 8 readout.
    "xylo_audio2_full_size": (random_spec(9, nh=1000, density=0.03, threshold=(100, 800), shifts=(4, 3, 3)),
                              random_events(9, 30, 16, rate=0.4, max_count=5)),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_emulator_matches_xylosim_on_every_step_and_state(name):
    spec, counts = NETWORKS[name]
    ours, _ = XyloFabric.build(spec).run(counts)
    theirs = run_xylosim(spec, counts)
    for field in RECORDINGS:
        np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field),
                                      err_msg=f"{name}: {field} differs from xylosim")
    assert ours.spikes.sum() > 0, "the network must be active for the comparison to mean anything"


def test_oracle_networks_reach_the_edge_cases_they_are_named_after():
    spec, counts = NETWORKS["multi_spike_up_to_31"]
    rec, _ = XyloFabric.build(spec).run(counts)
    assert rec.spikes.max() == MAX_HIDDEN_SPIKES
    spec, counts = NETWORKS["saturating_inputs"]
    rec, _ = XyloFabric.build(spec).run(counts)
    assert rec.saturated_currents > 100
    spec, counts = NETWORKS["negative_states"]
    rec, _ = XyloFabric.build(spec).run(counts)
    assert rec.v_mem.min() < -10000
    assert NETWORKS["input_event_cap"][1].max() > 15


def test_state_carries_over_between_runs_like_xylosim():
    from nirc.targets.xylo.xylosim_bridge import xylosim_layer

    spec, counts = NETWORKS["recurrent_two_synapses"]
    fabric, layer = XyloFabric.build(spec), xylosim_layer(spec)
    first, state = fabric.run(counts[:40])
    run_xylosim(spec, counts[:40], layer)
    second, _ = fabric.run(counts[40:], state)
    theirs = run_xylosim(spec, counts[40:], layer)
    for field in RECORDINGS:
        np.testing.assert_array_equal(getattr(second, field), getattr(theirs, field))


def test_a_batch_runs_each_sample_as_if_alone():
    spec, _ = NETWORKS["saturating_inputs"]
    batch = np.stack([random_events(s, 30, 16, rate=0.6, max_count=12) for s in range(5)])
    fabric = XyloFabric.build(spec)
    together, _ = fabric.run(batch)
    for b in range(5):
        alone, _ = fabric.run(batch[b])
        for field in RECORDINGS:
            np.testing.assert_array_equal(getattr(together, field)[b], getattr(alone, field)[0])


def test_bitshift_decay_floors_and_never_stalls():
    x = np.array([0, 1, -1, 15, 16, -16, -17, 32767, -32768])
    np.testing.assert_array_equal(bitshift_decay(x, 4), [0, 1, -1, 1, 1, -1, -2, 2047, -2048])


def test_saturating_adds_depend_on_order():
    assert compose_saturating_adds(np.array(32000), np.array([1000, -1000])) == 31767
    assert compose_saturating_adds(np.array(32000), np.array([-1000, 1000])) == 32000
    assert compose_saturating_adds(np.array(-32000), np.array([-5000, 100, 200])) == -32468


def test_fire_subtracts_threshold_per_spike_up_to_the_limit():
    count, v = fire(np.array([99, 100, 350, 5000, 350]), np.array([100, 100, 100, 100, 100]), 31,
                    np.array([0, 0, 0, 0, 30]))
    np.testing.assert_array_equal(count, [0, 1, 3, 31, 31])
    np.testing.assert_array_equal(v, [99, 0, 50, 1900, 250])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64])
def test_composed_saturating_adds_equal_one_add_at_a_time(n):
    rng = np.random.default_rng(n)
    contributions = rng.integers(-20000, 20000, (200, n))
    current = rng.integers(-32768, 32768, 200)
    expected = current.copy()
    for j in range(n):
        expected = np.clip(expected + contributions[:, j], -32768, 32767)
    np.testing.assert_array_equal(compose_saturating_adds(current, contributions), expected)


def test_xylosim_built_from_the_emitted_srnn_config_agrees_with_nirc_emulate(tmp_path):
    """examples/srnn.nir compiled by `nirc compile`, run by `nirc emulate` and by xylosim from the same files."""
    from pathlib import Path

    from nirc.cli import main
    from nirc.targets.xylo.config import read_config

    example = Path(__file__).resolve().parents[1] / "examples" / "srnn.nir"
    build = tmp_path / "build"
    assert main(["-q", "compile", str(example), "--target", "xylo", "-o", str(build)]) == 0
    counts = random_events(21, 200, 16, rate=0.15, max_count=1).astype(np.uint8)
    np.savez(tmp_path / "in.npz", input=counts)
    assert main(["-q", "emulate", str(build), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "out.npz"), "--record"]) == 0
    spec, manifest = read_config(build)
    theirs = run_xylosim(spec, counts)
    with np.load(tmp_path / "out.npz") as ours:
        hidden = manifest["hidden"][0]["name"]
        np.testing.assert_array_equal(ours["output"], theirs.spikes_out[0])
        np.testing.assert_array_equal(ours[f"spikes_{hidden}"], theirs.spikes[0])
        np.testing.assert_array_equal(ours[f"v_mem_{hidden}"], theirs.v_mem[0])
        np.testing.assert_array_equal(ours[f"i_syn_{hidden}"], theirs.i_syn[0])
        assert ours["output"].sum() > 0
