"""The Speck emulator's compiled event engine against the previous emulator, bit for bit.

The previous emulator (tests/speck_previous_emulator.py, frozen) built each
core's contribution list event by event and applied it in order; the engine
walks the kernel, vectorises a position's channels and applies a run of n
identical events at once. Same spikes, same emission order (checked through
every downstream layer), same membrane values, on the example networks under
every neuron choice and on random cores with random parameters and inputs.
"""

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nirc.neuron_models.speck_iaf import STATE_MAX, STATE_MIN, update, update_repeated
from nirc.targets.speck.emulate import SpeckEmulator
from nirc.targets.speck.engine import BULK_RUN, SHORT_RUN, runs

from speck_networks import compile_for_speck, random_events, small_cnn
from speck_previous_emulator import PreviousSpeckEmulator
from test_speck_emulator import CASES, NETWORKS


def assert_same_run(config, inputs):
    new = SpeckEmulator(config).run(inputs)
    old = PreviousSpeckEmulator(config).run(inputs)
    for key in ("spikes", "v"):
        for layer in old[key]:
            np.testing.assert_array_equal(new[key][layer], old[key][layer],
                                          err_msg=f"{key} of layer {layer}")
    for name in old["outputs"]:
        np.testing.assert_array_equal(new["outputs"][name], old["outputs"][name])
    return old


# The example CNN under the non-default neuron choices is marked slow, as in test_speck_emulator.
@pytest.mark.parametrize("name, reset, low_threshold", CASES)
def test_engine_equals_the_previous_emulator_on_every_example_network(name, reset, low_threshold):
    hw, _, config, _ = compile_for_speck(NETWORKS[name](), reset=reset,
                                         low_threshold=low_threshold)
    port = next(iter(hw.inputs.values()))
    rng = np.random.default_rng(7)
    counts = with_long_runs(rng, random_events(rng, 8, port.shape, rate=0.3, max_count=6))
    old = assert_same_run(config, {port.name: counts})
    assert sum(int(s.sum()) for s in old["spikes"].values()) > 0


def with_long_runs(rng, counts, share=0.02):
    """Counts plus, at a few pixels, a run of 17-40 identical events (the closed-form path;
    runs up to engine.SHORT_RUN are applied event by event)."""
    long = rng.random(counts.shape) < share
    return counts + long * rng.integers(SHORT_RUN + 1, 41, size=counts.shape)


def randomised(config, rng, weight_scale, edge=False):
    """``config`` with every core's neuron parameters, weights and initial state redrawn.

    ``edge`` adds parameters no compiler would emit but a config may hold (a
    threshold at or below zero or at the register's minimum, a floor at or above
    the threshold), where the closed forms must step aside."""
    config = copy.deepcopy(config)
    for layer in config["cnn_layers"]:
        if not layer.get("weights"):
            continue
        shape = np.asarray(layer["weights"]).shape
        w = rng.integers(-weight_scale, weight_scale + 1, size=shape)
        w[rng.random(shape) < 0.3] = 0
        layer["weights"] = np.clip(w, -128, 127).tolist()
        th = int(rng.choice([1, 3, 40, 127, 500, 4000, STATE_MAX]
                            + ([STATE_MIN, -7, 0] if edge else [])))
        layer["threshold_high"] = th
        lows = [STATE_MIN, -th, -1, 0, 2] + ([th, th + 9] if edge else [])
        layer["threshold_low"] = int(min(max(rng.choice(lows), STATE_MIN), STATE_MAX))
        layer["return_to_zero"] = bool(rng.integers(0, 2))
        layer["leak_enable"] = bool(rng.integers(0, 2))
        layer["biases"] = rng.integers(-60, 61, size=len(layer["biases"])).tolist()
        v0 = np.asarray(layer["neurons_initial_value"])
        layer["neurons_initial_value"] = rng.integers(-300, max(300 + th, -299),
                                                      size=v0.shape).tolist()
    return config


BASE_NETWORKS = {"small_cnn": lambda: small_cnn(seed=1, size=10),
                 "stride2_pad2_pool4": NETWORKS["stride2_pad2_pool4"],
                 "residual_merge": NETWORKS["residual_merge"], "mlp_if": NETWORKS["mlp_if"]}
COMPILED = {}


def compiled(name):
    if name not in COMPILED:
        hw, _, config, _ = compile_for_speck(BASE_NETWORKS[name]())
        COMPILED[name] = (next(iter(hw.inputs.values())), config)
    return COMPILED[name]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(BASE_NETWORKS)), seed=st.integers(0, 2**32 - 1),
       weight_scale=st.sampled_from([3, 40, 128]), rate=st.sampled_from([0.05, 0.3, 0.9]),
       max_count=st.sampled_from([1, 2, 9]), long_runs=st.booleans())
def test_engine_equals_the_previous_emulator_on_random_cores_and_inputs(name, seed, weight_scale,
                                                                       rate, max_count,
                                                                       long_runs):
    port, config = compiled(name)
    rng = np.random.default_rng(seed)
    counts = random_events(rng, 5, port.shape, rate=rate, max_count=max_count)
    if long_runs:
        counts = with_long_runs(rng, counts)
    assert_same_run(randomised(config, rng, weight_scale), {port.name: counts})


@settings(max_examples=400, deadline=None)
@given(v=st.integers(STATE_MIN, STATE_MAX), weight=st.integers(-128, 127).filter(bool),
       n=st.one_of(st.integers(1, 40), st.integers(41, 3000)),
       threshold=st.sampled_from([STATE_MIN, -7, 0, 1, 2, 7, 127, 300, STATE_MAX]),
       low=st.sampled_from([STATE_MIN, -1, 0, 5, "minus", "at", "above"]),
       reset=st.integers(0, 1))
def test_update_repeated_equals_the_update_applied_n_times(v, weight, n, threshold, low, reset):
    low = {"minus": -threshold, "at": threshold, "above": threshold + 9}.get(low, low)
    low = min(max(low, STATE_MIN), STATE_MAX)
    expected, fired = v, []
    for r in range(n):
        expected, spike = update(expected, weight, threshold, low, reset)
        if spike:
            fired.append(r)
    buffer = np.zeros(n, dtype=np.int64)
    got, k = update_repeated(v, weight, n, threshold, low, reset, buffer, 0)
    assert (got, buffer[:k].tolist()) == (expected, fired)


@pytest.mark.parametrize("reset", [0, 1])
def test_update_repeated_fires_from_a_floor_at_or_above_the_threshold(reset):
    # A falling weight cannot fire from below threshold, but a floor above the threshold
    # lifts the neuron back over it after every update: no closed form applies.
    for low in (10, 20):
        expected, fired = 5, []
        for r in range(6):
            expected, spike = update(expected, -1, 10, low, reset)
            if spike:
                fired.append(r)
        buffer = np.zeros(6, dtype=np.int64)
        got, k = update_repeated(5, -1, 6, 10, low, reset, buffer, 0)
        assert (got, buffer[:k].tolist()) == (expected, fired)
        assert len(fired) == (5 if low == 20 else 0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(BASE_NETWORKS)), seed=st.integers(0, 2**32 - 1),
       weight_scale=st.sampled_from([3, 40, 128]), rate=st.sampled_from([0.05, 0.3]),
       count=st.sampled_from([BULK_RUN, 10, SHORT_RUN, 60]), edge=st.booleans())
def test_engine_equals_the_previous_emulator_on_runs_of_identical_events(name, seed,
                                                                        weight_scale, rate,
                                                                        count, edge):
    # Every input count is a run of `count` +- a few identical events: the bulk path for
    # runs on stride-1 cores, the closed forms of update_repeated elsewhere, and the
    # floor/threshold corners (edge) where both must fall back to event-by-event updates.
    port, config = compiled(name)
    rng = np.random.default_rng(seed)
    active = random_events(rng, 3, port.shape, rate=rate, max_count=1)
    counts = active * rng.integers(max(count - 3, 1), count + 4, size=active.shape)
    assert_same_run(randomised(config, rng, weight_scale, edge=edge), {port.name: counts})


def test_runs_merge_consecutive_equal_events_and_sum_their_counts():
    pixels, counts = runs(np.array([4, 4, 1, 4, 4, 4]), np.array([1, 2, 1, 1, 1, 3]))
    assert pixels.tolist() == [4, 1, 4] and counts.tolist() == [3, 1, 5]
