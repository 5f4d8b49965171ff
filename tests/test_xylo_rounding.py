"""Xylo's integer precision, used to the full: weights filling 8 bits under the matrices' shifts,
and a bias that cancels the upward drift of the flooring bit-shift decays
(nirc.targets.xylo.quantize: fill_factors, rounding_compensation; chosen per population by the
xylo_quantize search)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from nirc.neuron_models import get_model
from nirc.neuron_models.xylo_lif import XyloFabric, XyloSpec
from nirc.passes.context import PassContext
from nirc.passes.registry import get_pass
from nirc.target import load_target
from nirc.targets.xylo import backend
from nirc.targets.xylo.quantize import rounding_compensation

from test_xylo_compile import DT, graph, lower

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"


def one_neuron(weight: int, bias: int, dash_syn: int, dash_mem: int) -> XyloSpec:
    """A hidden neuron that never fires, fed +weight by input 0 and -weight by input 1."""
    return XyloSpec(weights_in=np.array([[[weight, 0]], [[-weight, 0]]]),
                    weights_rec=np.zeros((1, 1, 2), int), weights_out=np.zeros((1, 1), int),
                    dash_mem=np.array([dash_mem]), dash_syn=np.array([dash_syn]),
                    dash_syn_2=np.array([dash_syn]), threshold=np.array([32767]), bias=np.array([bias]),
                    dash_mem_out=np.array([0]), dash_syn_out=np.array([1]),
                    threshold_out=np.array([32767]), bias_out=np.array([0]))


def float_membrane(x: np.ndarray, weight: float, dash_syn: int, dash_mem: int) -> np.ndarray:
    alpha, beta = 1 - 2.0 ** -dash_syn, 1 - 2.0 ** -dash_mem
    i = v = 0.0
    out = []
    for t in range(len(x)):
        i = alpha * (i + weight * (x[t, 0] - x[t, 1]))
        v = beta * v + i
        out.append(v)
    return np.asarray(out)


def test_rounding_compensation_is_the_mean_excess_the_floors_leave():
    # dash_syn 1, dash_mem 3 (Rockpool's digits model): 0.5 from the current, 7/16 from v -> -1.
    dm, ds = np.array([3, 4, 3, 0]), np.array([1, 3, 1, 1])
    fed = np.array([True, True, False, True])
    np.testing.assert_array_equal(rounding_compensation(dm, [ds], [fed]), [-1, -4, 0, -0])
    # Two fed synapses carry two currents' excess.
    np.testing.assert_array_equal(rounding_compensation(np.array([3]), [np.array([2]), np.array([2])],
                                                        [np.array([True]), np.array([True])]), [-3])


@pytest.mark.parametrize("dash_syn,dash_mem", [(1, 3), (2, 4), (3, 5), (4, 2)])
def test_the_compensating_bias_keeps_a_fluctuating_membrane_on_the_float_one(dash_syn, dash_mem):
    rng = np.random.default_rng(dash_syn * 10 + dash_mem)
    x = (rng.random((4000, 2)) < [0.5, 0.3]).astype(np.int64)
    exact = float_membrane(x, 37, dash_syn, dash_mem)
    bias = int(rounding_compensation(np.array([dash_mem]), [np.array([dash_syn])], [np.array([True])])[0])
    drift = {}
    for b in (0, bias):
        rec, _ = XyloFabric.build(one_neuron(37, b, dash_syn, dash_mem)).run(x)
        drift[b] = float(np.mean(rec.v_mem[0, :, 0] - exact))
    # Without it v sits about 2**dash_mem * (the excess) above the float membrane.
    assert drift[0] > 0.8 * (-bias) * 2 ** dash_mem
    assert abs(drift[bias]) < drift[0] / 8


def stage_before_quantize(g):
    t = load_target("xylo")
    ctx = PassContext(model=get_model("float"), dt=DT, target_name="xylo")
    stage = g
    for name in t.passes[:t.passes.index("xylo_quantize")]:
        stage = get_pass(name)(stage, ctx)
    return stage, backend.device_for(t)


def test_a_layer_with_small_weights_fills_8_bits_under_the_shift_its_neighbour_sets():
    g = graph(hidden=(20, 20), seed=4)
    # The second layer's weights (W_rec, shared with the first's recurrent ones) a quarter as large.
    g.nodes["w1"] = g.nodes["w1"].__class__(weight=g.nodes["w1"].weight / 4, bias=g.nodes["w1"].bias)
    stage, device = stage_before_quantize(g)
    plain, rep_plain = backend.quantized_network(stage, device, "layer")
    filled, rep_filled = backend.quantized_network(stage, device, "layer", fill={"h1": 1.0})
    assert rep_plain["weight_shift_rec"] == rep_filled["weight_shift_rec"]

    def peak(net, layer):
        (t,) = [t for t in net.tables if t.source == "h0" and t.target == layer]
        return int(np.abs(t.weights.data).max())

    row = {r["population"]: r for r in rep_filled["layers"]}
    assert peak(plain, "h1") < 100 and peak(filled, "h1") == 127
    assert peak(filled, "h0") == peak(plain, "h0")            # not named: unchanged
    assert row["h1"]["fill_factor"] > 1.3 and row["h0"]["fill_factor"] == 1.0
    # Thresholds rise with the weights: the ratio the model trained is kept, more finely.
    th_plain = plain.populations["h1"].params["threshold"][0]
    th_filled = filled.populations["h1"].params["threshold"][0]
    assert th_filled / th_plain == pytest.approx(row["h1"]["fill_factor"], rel=0.01)


def test_the_search_tries_each_population_without_fill_and_rounding_bias():
    _, report, _ = lower(graph())
    q = report["quantize"]
    knobs = {(t["population"], t["knob"]) for t in q["search"]["tried"]}
    for pop in ("h0", "h1", "readout"):
        assert (pop, "fill") in knobs and (pop, "rounding") in knobs
    for row in q["layers"]:
        assert row["fill_factor"] >= 1.0 and row["rounding_bias"] in (0.0, 1.0)


@pytest.mark.xylosim
def test_the_rockpool_digits_build_with_rounding_biases_runs_on_xylosim_as_emulated(tmp_path, xylosim_v2):
    from nirc.driver import compile as compile_model
    from nirc.emulator import Chip
    from nirc.targets.xylo.config import read_config
    from nirc.targets.xylo.inputs import input_events
    from nirc.targets.xylo.xylosim_bridge import run_xylosim

    entry = json.loads((DIGITS / "manifest.json").read_text(encoding="utf-8"))["models"]["rockpool_lif"]
    with np.load(DIGITS / "reference.npz") as data:
        cal = data["calibration_rows"].astype(np.float64)
        x = data["input_rows"][:, :3].astype(np.float64)
    np.savez(tmp_path / "cal.npz", input=cal)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compile_model(DIGITS / entry["file"], "xylo", tmp_path / "build",
                      convention={"exporter": "auto", **entry["nirc_options"]},
                      calibration=str(tmp_path / "cal.npz"), calibration_steps=0)
    spec, manifest = read_config(tmp_path / "build")
    assert np.any(spec.bias != 0)           # the search kept a compensating bias
    chip = Chip.load(tmp_path / "build")
    for b in range(x.shape[1]):
        ours = chip.run({"input": x[:, b]}, record=True)
        counts = input_events(manifest, {"input": x[:, b]}, False, spec.n_inputs)[0]
        theirs = run_xylosim(spec, counts)
        hidden = manifest["hidden"][0]["name"]
        np.testing.assert_array_equal(ours.spikes[hidden], theirs.spikes[0][:, :ours.spikes[hidden].shape[1]])
        np.testing.assert_array_equal(ours.states[hidden]["v_mem"],
                                      theirs.v_mem[0][:, :ours.spikes[hidden].shape[1]])
