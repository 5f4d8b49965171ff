"""The Speck emulator against a plain per-event statement of the chip's rule, on random cores.

The reference below is written from the rule alone (docs/speck.md), one event
and one neuron at a time in Python: per step, layers in processing order; per
layer the bias update of every neuron (ascending (c, y, x)), then each source's
events in emission order (a network input count n is n consecutive events, in
ascending flat index order), each landing at (c, y // pooling, x // pooling) or
dropped beyond the layer's input map; an event updates the output positions it
covers in row-major order, all output channels of a position (ascending) before
the next, skipping zero weights; one update is saturate(v + w) to 16 bits ->
fire if >= threshold_high -> reset (to zero or by subtraction) -> floor at
threshold_low. Configs are built directly (no compiler): random kernel sizes,
strides (x and y apart), paddings and poolings, weights of both signs with
zeros, thresholds, floors, reset modes, biases and initial values, including
corners no compiler emits (floor at or above the threshold, threshold at or
below zero), and inputs from sparse to dense with runs of identical events
long enough for every path of the engine (event by event, bulk, closed form).
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nirc.neuron_models.speck_iaf import STATE_MAX, STATE_MIN
from nirc.targets.speck.config import FORMAT
from nirc.targets.speck.emulate import SpeckEmulator


def chip_update(v, w, threshold_high, threshold_low, return_to_zero):
    value = min(max(v + w, STATE_MIN), STATE_MAX)
    fired = value >= threshold_high
    if fired:
        value = 0 if return_to_zero else value - threshold_high
    return max(value, threshold_low), fired


def reference_run(config, counts):
    """Spike counts and membrane values per layer and step, event by event."""
    nirc = config["nirc"]
    name_in = next(iter(nirc["inputs"]))
    c, h, w = nirc["inputs"][name_in]["shape"]
    T = counts.shape[0]
    by_core = {spec["core"]: name for name, spec in nirc["layers"].items()}
    order = [by_core[core] for core in nirc["processing_order"]]
    cores, state, spikes, vrec, shape_of = {}, {}, {}, {}, {name_in: (c, h, w)}
    for name in order:
        layer = config["cnn_layers"][nirc["layers"][name]["core"]]
        dims = layer["dimensions"]
        c_out = dims["output_shape"]["feature_count"]
        h_out, w_out = dims["output_shape"]["size"]["y"], dims["output_shape"]["size"]["x"]
        k = dims["kernel_size"]
        c_in = dims["input_shape"]["feature_count"]
        weight = np.asarray(layer["weights"]).reshape(c_out, c_in, k, k)   # [c_out][c_in][kx][ky]
        cores[name] = dict(layer=layer, weight=weight, k=k, c_out=c_out, h_out=h_out,
                           w_out=w_out, h_in=dims["input_shape"]["size"]["y"],
                           w_in=dims["input_shape"]["size"]["x"],
                           stride=(dims["stride"]["y"], dims["stride"]["x"]),
                           padding=(dims["padding"]["y"], dims["padding"]["x"]))
        v0 = np.asarray(layer["neurons_initial_value"]).reshape(c_out, w_out, h_out)
        state[name] = [int(x) for x in v0.transpose(0, 2, 1).ravel()]
        spikes[name] = np.zeros((T, c_out * h_out * w_out), dtype=np.int64)
        vrec[name] = np.zeros((T, c_out * h_out * w_out), dtype=np.int64)
        shape_of[name] = (c_out, h_out, w_out)
    for t in range(T):
        emitted = {name_in: [p for p in range(c * h * w) for _ in range(counts[t].ravel()[p])]}
        for name in order:
            core, v = cores[name], state[name]
            layer = core["layer"]
            th, tl, rz = layer["threshold_high"], layer["threshold_low"], layer["return_to_zero"]
            plane = core["h_out"] * core["w_out"]
            out = []
            if layer["leak_enable"]:
                for j in range(len(v)):
                    b = layer["biases"][j // plane]
                    if b != 0:
                        v[j], fired = chip_update(v[j], b, th, tl, rz)
                        if fired:
                            out.append(j)
            for source in nirc["layers"][name]["sources"]:
                _, hs, ws = shape_of[source["source"]]
                pool = source["pooling"]
                for event in emitted[source["source"]]:
                    ci, rest = divmod(event, hs * ws)
                    yi, xi = rest // ws // pool, rest % ws // pool
                    if yi >= core["h_in"] or xi >= core["w_in"]:
                        continue
                    for yo in range(core["h_out"]):
                        ky = yi - (yo * core["stride"][0] - core["padding"][0])
                        if not 0 <= ky < core["k"]:
                            continue
                        for xo in range(core["w_out"]):
                            kx = xi - (xo * core["stride"][1] - core["padding"][1])
                            if not 0 <= kx < core["k"]:
                                continue
                            for co in range(core["c_out"]):
                                wt = int(core["weight"][co, ci, kx, ky])
                                if wt == 0:
                                    continue
                                j = co * plane + yo * core["w_out"] + xo
                                v[j], fired = chip_update(v[j], wt, th, tl, rz)
                                if fired:
                                    out.append(j)
            emitted[name] = out
            for j in out:
                spikes[name][t, j] += 1
            vrec[name][t] = v
    return spikes, vrec


def random_config(rng, c_in, h, w, layers):
    """A chain of ``layers`` cores on a (c_in, h, w) input, every choice drawn from ``rng``."""
    cnn_layers, specs, order = [], {}, []
    source, shape = None, (c_in, h, w)
    for index in range(layers):
        pooling = int(rng.choice([1, 1, 2])) if min(shape[1:]) >= 2 else 1
        hp, wp = shape[1] // pooling, shape[2] // pooling
        k = int(rng.integers(1, min(4, hp + 2, wp + 2) + 1))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = (int(rng.integers(0, k)), int(rng.integers(0, k)))
        h_out = (hp + 2 * padding[0] - k) // stride[0] + 1
        w_out = (wp + 2 * padding[1] - k) // stride[1] + 1
        if h_out < 1 or w_out < 1:
            padding, stride = (k - 1, k - 1), (1, 1)
            h_out, w_out = hp + k - 1, wp + k - 1
        c_out = int(rng.integers(1, 6))
        scale = int(rng.choice([3, 40, 128]))
        weight = rng.integers(-scale, scale + 1, size=(c_out, shape[0], k, k))
        weight[rng.random(weight.shape) < 0.3] = 0
        th = int(rng.choice([1, 3, 40, 127, 500, STATE_MAX, 0, -7, STATE_MIN]))
        low = int(rng.choice([STATE_MIN, -abs(th), -1, 0, 2, th, th + 9]))
        cnn_layers.append({
            "dimensions": {"input_shape": {"size": {"x": wp, "y": hp}, "feature_count": shape[0]},
                           "output_shape": {"size": {"x": w_out, "y": h_out},
                                            "feature_count": c_out},
                           "padding": {"x": padding[1], "y": padding[0]},
                           "stride": {"x": stride[1], "y": stride[0]}, "kernel_size": k},
            "weights": np.clip(weight, -128, 127).tolist(),
            "biases": rng.integers(-60, 61, size=c_out).tolist(),
            "leak_enable": bool(rng.integers(0, 2)),
            "neurons_initial_value": rng.integers(-300, 300 + max(th, 0) + 1,
                                                  size=(c_out, w_out, h_out)).tolist(),
            "threshold_high": th, "threshold_low": min(max(low, STATE_MIN), STATE_MAX),
            "return_to_zero": bool(rng.integers(0, 2)),
            "destinations": [{"layer": index + 1, "enable": index + 1 < layers,
                              "pooling": 1, "feature_shift": 0}, {"layer": 0, "enable": False,
                                                                 "pooling": 1, "feature_shift": 0}],
        })
        name = f"L{index}"
        specs[name] = {"core": index, "sources": [{
            "source": "input" if source is None else source, "is_input": source is None,
            "core": None if source is None else index - 1, "pooling": pooling}]}
        if source is not None:
            cnn_layers[index - 1]["destinations"][0]["pooling"] = pooling
        order.append(index)
        source, shape = name, (c_out, h_out, w_out)
    return {"format": FORMAT, "cnn_layers": cnn_layers, "nirc": {
        "layers": specs, "processing_order": order,
        "inputs": {"input": {"shape": [c_in, h, w]}},
        "outputs": {"out": {"layer": source, "shape": list(shape)}}}}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), layers=st.integers(1, 3),
       rate=st.sampled_from([0.05, 0.3, 0.9]), max_count=st.sampled_from([1, 3, 12, 25]))
def test_emulator_equals_the_per_event_rule_on_random_cores_and_inputs(seed, layers, rate,
                                                                      max_count):
    rng = np.random.default_rng(seed)
    c_in, h, w = int(rng.integers(1, 4)), int(rng.integers(2, 8)), int(rng.integers(2, 8))
    config = random_config(rng, c_in, h, w, layers)
    counts = rng.binomial(max_count, rate, size=(4, c_in, h, w)).astype(np.int64)
    spikes, v = reference_run(config, counts)
    got = SpeckEmulator(config).run({"input": counts}, record=True)
    for name in spikes:
        np.testing.assert_array_equal(got["spikes"][name], spikes[name], err_msg=f"spikes {name}")
        np.testing.assert_array_equal(got["v"][name], v[name], err_msg=f"v {name}")
    np.testing.assert_array_equal(got["outputs"]["out"].reshape(4, -1), spikes[f"L{layers - 1}"])
