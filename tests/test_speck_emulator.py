"""The Speck emulator (reads only config.json) against the chip's documented IAF semantics and
against the event-driven integer reference of the hardware network (bit for bit)."""

import copy

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from nirc.errors import NircError
from nirc.ir.nodes import Conv2d
from nirc.nirio import read
from nirc.targets.speck.emulate import SpeckEmulator
from nirc.targets.speck.network import run_reference

from speck_networks import (EXAMPLES, affine, chain, compile_for_speck, conv, iaf, random_events,
                            residual_cnn, small_cnn, sumpool)


def one_neuron(weight, threshold, bias=None):
    """A 1x1 convolution from one input pixel to one IAF neuron."""
    c = Conv2d(weight=np.full((1, 1, 1, 1), weight), stride=np.array([1, 1]),
               padding=np.array([0, 0]), dilation=np.array([1, 1]), groups=1,
               bias=None if bias is None else np.array([bias]))
    return chain((1, 1, 1), [("c", c), ("n", iaf((1, 1, 1), threshold))], (1, 1, 1))


def run_one(g, counts, reset="nir", low_threshold=None):
    _, _, config, _ = compile_for_speck(g, reset=reset, low_threshold=low_threshold)
    out = SpeckEmulator(config).run({"input": np.asarray(counts).reshape(-1, 1, 1, 1)})
    return out["spikes"]["n"][:, 0], out["v"]["n"][:, 0], config["cnn_layers"]


def test_weight_127_threshold_127_one_event_gives_one_spike_like_the_chip():
    spikes, v, layers = run_one(one_neuron(1.0, 1.0), [1, 0])
    core = next(l for l in layers if l["weights"])
    assert (core["weights"], core["threshold_high"], core["threshold_low"]) == ([[[[127]]]], 127,
                                                                                -32768)
    assert spikes.tolist() == [1, 0] and v.tolist() == [0, 0]


def test_every_input_event_can_fire_so_one_step_may_carry_several_spikes():
    spikes, _, _ = run_one(one_neuron(1.0, 1.0), [3])
    assert spikes.tolist() == [3]


def test_a_neuron_left_above_threshold_waits_for_its_next_input():
    # weight 127, threshold round(0.4 * 127) = 51; subtract reset leaves 76 >= 51 but no spike.
    spikes, v, _ = run_one(one_neuron(1.0, 0.4), [1, 0, 1], reset="subtract")
    assert spikes.tolist() == [1, 0, 1] and v.tolist() == [76, 76, 76 + 127 - 51]


def test_low_threshold_minus_threshold_is_a_floor_on_the_membrane_as_in_sinabs():
    spikes, v, _ = run_one(one_neuron(-1.0, 1.0), [1, 1, 2], low_threshold="minus_threshold")
    assert spikes.tolist() == [0, 0, 0] and v.tolist() == [-127, -127, -127]


def test_default_low_threshold_lets_the_membrane_fall_like_nir_if_until_the_16_bit_limit():
    spikes, v, _ = run_one(one_neuron(-1.0, 1.0), [1, 1, 2, 300])
    assert spikes.tolist() == [0, 0, 0, 0] and v.tolist() == [-127, -254, -508, -32768]


def test_bias_is_added_once_per_step_and_can_fire_alone():
    # weight 1 -> 127, bias 0.5 -> round(63.5) = 64 (half to even), threshold 127.
    spikes, v, layers = run_one(one_neuron(1.0, 1.0, bias=0.5), [0, 0, 0, 0])
    core = next(l for l in layers if l["weights"])
    assert core["biases"] == [64] and core["leak_enable"] is True
    assert spikes.tolist() == [0, 1, 0, 1] and v.tolist() == [64, 0, 64, 0]


NETWORKS = {
    "cnn_example": lambda: read(EXAMPLES / "cnn.nir"),
    "small_cnn": lambda: small_cnn(seed=1),
    "stride2_pad2_pool4": lambda: small_cnn(seed=2, size=32, stride=2, padding=2, pool=4, k=5),
    "residual_merge": lambda: residual_cnn(seed=3),
    "mlp_if": lambda: chain((64,), [
        ("fc1", affine(np.random.default_rng(5), 32, 64, scale=0.5)), ("n1", iaf((32,))),
        ("fc2", affine(np.random.default_rng(6), 10, 32, scale=0.5)), ("n2", iaf((10,)))], (10,)),
    "dvs_pooling": lambda: chain((2, 16, 16), [
        ("p", sumpool(2)), ("c", conv(np.random.default_rng(4), 4, 2, 3, padding=1)),
        ("n", iaf((4, 8, 8)))], (4, 8, 8)),
}


# (reset mode, membrane floor): nirc's default, subtract, and sinabs' convention (both).
NEURON_CHOICES = [("nir", "state_min"), ("subtract", "state_min"),
                  ("subtract", "minus_threshold")]
CASES = [pytest.param(name, reset, low, marks=[pytest.mark.slow] if name == "cnn_example" and (
    reset, low) != ("nir", "state_min") else [])
    for name in sorted(NETWORKS) for reset, low in NEURON_CHOICES]


@pytest.mark.parametrize("name, reset, low_threshold", CASES)
def test_emulator_equals_the_integer_reference_on_every_spike_and_state(name, reset,
                                                                        low_threshold):
    hw, _, config, _ = compile_for_speck(NETWORKS[name](), reset=reset,
                                         low_threshold=low_threshold)
    rng = np.random.default_rng(hash(name) % 2**32)
    port = next(iter(hw.inputs.values()))
    counts = random_events(rng, 12, port.shape, rate=0.15, max_count=2)
    ours = SpeckEmulator(config).run({port.name: counts})
    ref = run_reference(hw, {port.name: counts})
    assert sum(int(s.sum()) for s in ref["spikes"].values()) > 0
    for layer in ref["spikes"]:
        assert np.array_equal(ours["spikes"][layer], ref["spikes"][layer]), layer
        assert np.array_equal(ours["v"][layer], ref["v"][layer]), layer
    for out in ref["outputs"]:
        assert np.array_equal(ours["outputs"][out], ref["outputs"][out])


def test_config_uses_samna_vocabulary_with_kernels_transposed_as_sinabs_writes_them():
    hw, placement, config, _ = compile_for_speck(small_cnn(seed=1))
    core = {b.population: b.core for b in placement.blocks}
    w = np.asarray(hw.tables_into("if1")[0].kernel["weight"])
    layer = config["cnn_layers"][core["if1"]]
    assert np.array_equal(np.asarray(layer["weights"]), w.transpose(0, 1, 3, 2))
    assert layer["dimensions"] == {"input_shape": {"size": {"x": 16, "y": 16}, "feature_count": 2},
                                   "output_shape": {"size": {"x": 16, "y": 16}, "feature_count": 4},
                                   "padding": {"x": 1, "y": 1}, "stride": {"x": 1, "y": 1},
                                   "kernel_size": 3}
    assert layer["destinations"][0] == {"layer": core["if2"], "enable": True, "pooling": 2,
                                        "feature_shift": 0}
    assert layer["destinations"][1]["enable"] is False
    assert config["cnn_layers"][core["if3"]]["monitor_enable"] is True
    assert len(config["cnn_layers"]) == 9


def test_compiling_twice_gives_the_same_config():
    assert compile_for_speck(small_cnn(seed=1))[2] == compile_for_speck(small_cnn(seed=1))[2]


def test_emulator_refuses_a_config_whose_routing_lost_a_destination():
    _, placement, config, _ = compile_for_speck(small_cnn(seed=1))
    broken = copy.deepcopy(config)
    src = {b.population: b.core for b in placement.blocks}["if1"]
    broken["cnn_layers"][src]["destinations"][0]["enable"] = False
    with pytest.raises(NircError, match="has no destination to core"):
        SpeckEmulator(broken)


@st.composite
def two_layer_nets(draw):
    """Input -> conv/IF -> [pool] -> conv/IF with random geometry Speck accepts."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    c_in, c1, c2 = (draw(st.integers(1, 3)) for _ in range(3))
    size = draw(st.integers(4, 14))
    k1 = draw(st.integers(1, min(4, size)))
    s1 = draw(st.sampled_from([1, 2, 4]))
    p1 = draw(st.integers(0, k1 - 1))
    h1 = (size + 2 * p1 - k1) // s1 + 1
    pool = draw(st.sampled_from([p for p in (1, 2) if h1 // p >= 1]))
    hp = h1 // pool
    k2 = draw(st.integers(1, hp))
    p2 = draw(st.integers(0, min(k2 - 1, 7)))        # Speck pads at most 7
    h2 = hp + 2 * p2 - k2 + 1
    nodes = [("c1", conv(rng, c1, c_in, k1, s1, p1, scale=2.0)), ("i1", iaf((c1, h1, h1)))]
    if pool > 1:
        nodes.append(("p", sumpool(pool)))
    nodes += [("c2", conv(rng, c2, c1, k2, 1, p2, scale=1.0)), ("i2", iaf((c2, h2, h2)))]
    return (chain((c_in, size, size), nodes, (c2, h2, h2)),
            draw(st.sampled_from(["nir", "subtract"])),
            draw(st.sampled_from(["state_min", "minus_threshold"])))


@settings(max_examples=25, deadline=None)
@given(case=two_layer_nets(), seed=st.integers(0, 1000))
def test_emulator_equals_reference_on_random_geometries(case, seed):
    g, reset, low_threshold = case
    hw, _, config, _ = compile_for_speck(g, reset=reset, low_threshold=low_threshold)
    port = next(iter(hw.inputs.values()))
    counts = random_events(np.random.default_rng(seed), 6, port.shape, rate=0.3, max_count=3)
    ours = SpeckEmulator(config).run({port.name: counts})
    ref = run_reference(hw, {port.name: counts})
    for layer in ref["spikes"]:
        assert np.array_equal(ours["spikes"][layer], ref["spikes"][layer]), layer
        assert np.array_equal(ours["v"][layer], ref["v"][layer]), layer


def test_a_config_missing_a_field_of_a_used_core_is_a_config_error(tmp_path):
    import json

    from nirc.emulator import Chip, ConfigError

    _, placement, config, _ = compile_for_speck(small_cnn(seed=1))
    core = placement.blocks[0].core
    del config["cnn_layers"][core]["dimensions"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="config.json: missing field 'dimensions'"):
        Chip.load(tmp_path)


def test_nirc_emulator_runs_a_speck_build_like_the_speck_emulator(tmp_path):
    import json

    from nirc.emulator import Chip

    hw, _, config, _ = compile_for_speck(small_cnn(seed=1))
    (tmp_path / "config.json").write_text(json.dumps(config))
    counts = random_events(np.random.default_rng(0), 8, (2, 16, 16), rate=0.2)
    chip = Chip.load(tmp_path)
    assert chip.inputs == {"input": (2, 16, 16)}
    result = chip.run({"input": counts[:, None]}, batch=True, record=True)
    direct = SpeckEmulator(config).run({"input": counts})
    assert np.array_equal(result.outputs["output"][:, 0], direct["outputs"]["output"])
    assert np.array_equal(result.states["if1"]["v"][:, 0].reshape(8, -1), direct["v"]["if1"])
