"""Fidelity-driven Speck quantization (passes/speck_quantize.py) and the search it shares
(nirc.fidelity.search_factors): factors searched from sinabs' integers on calibration input,
kept only when they agree measurably better with the model as trained; ``sinabs`` keeps
sinabs' rule integer for integer."""

import json
from pathlib import Path

import numpy as np
import pytest

from nirc import fidelity
from nirc.cli import main
from nirc.passes.speck_quantize import MIN_GAIN
from nirc.targets.speck.lower import Source, SpeckLayer, SpeckNetwork
from nirc.targets.speck.quantize import quantize_network

ROOT = Path(__file__).resolve().parents[1]
CNN = str(ROOT / "examples" / "cnn.nir")
SPECK2F = ROOT / "targets" / "speck2f.yaml"


def test_search_factors_finds_each_knobs_best_and_records_every_trial():
    best = {"a": {"threshold": 2.0, "scale": 1.0}, "b": {"threshold": 0.5, "scale": 1.0}}

    def evaluate(factors):
        miss = sum(abs(np.log2(factors[n][k] / best[n][k])) for n in best for k in best[n])
        return -miss, dict(factors)

    grid = {"threshold": [0.5, 2.0], "scale": [2.0]}
    search = fidelity.search_factors(evaluate, {"a": grid, "b": grid})
    assert search.factors == best and search.result == best
    assert search.baseline == -2.0 and search.score == 0.0
    assert {(t["population"], t["knob"], t["factor"]) for t in search.tried} >= {
        ("a", "threshold", 2.0), ("b", "threshold", 0.5), ("a", "scale", 2.0)}
    # A second, finer search continues from the first and keeps its baseline and trials.
    finer = fidelity.search_factors(evaluate, {"a": {"threshold": [2.0 ** 0.5]}}, start=search)
    assert finer.factors == best and finer.baseline == -2.0
    assert len(finer.tried) == len(search.tried) + 1


def one_layer(weight, threshold=1.0):
    layer = SpeckLayer(name="n", provenance=("c", "n"), input_shape=(1, 1, 1),
                       weight=np.asarray(weight, np.float64).reshape(-1, 1, 1, 1), bias=None,
                       stride=(1, 1), padding=(0, 0), threshold_high=threshold,
                       threshold_low=-threshold, return_to_zero=False,
                       sources=(Source("input", 1, True),))
    return SpeckNetwork(layers=(layer,), inputs={"input": (1, 1, 1)}, outputs={}, dt=1.0)


def test_threshold_factor_moves_both_thresholds_and_scale_factor_clips_weights_and_counts():
    net = one_layer([0.5, -0.25, 0.1])
    plain, _ = quantize_network(net)
    assert plain.layers[0].weight.ravel().tolist() == [127, -64, 25]
    assert plain.layers[0].threshold_high == 254
    q, rows = quantize_network(net, factors={"n": {"threshold": 1.5, "scale": 1.0}})
    assert q.layers[0].weight.ravel().tolist() == [127, -64, 25]
    assert (q.layers[0].threshold_high, q.layers[0].threshold_low) == (381, -381)
    assert rows[0]["threshold_factor"] == 1.5 and rows[0]["weights_clipped"] == 0
    q, rows = quantize_network(net, factors={"n": {"threshold": 1.0, "scale": 2.0}})
    assert q.layers[0].weight.ravel().tolist() == [127, -127, 51]      # 254 clips to 127
    assert q.layers[0].threshold_high == 508 and rows[0]["weights_clipped"] == 1


def compile_cnn(tmp_path, rule: str | None) -> dict:
    target = "speck2f"
    if rule is not None:
        text = SPECK2F.read_text().replace("name: speck2f", f"name: speck_{rule}") \
            .replace("aliases: [speck]", "aliases: []") \
            .replace("quantization: fidelity ", f"quantization: {rule} ")
        target = str(tmp_path / f"speck_{rule}.yaml")
        Path(target).write_text(text)
    out = tmp_path / f"build_{rule}"
    assert main(["-q", "compile", CNN, "--target", target, "-o", str(out)]) == 0
    return {"report": json.loads((out / "report.json").read_text()),
            "config": json.loads((out / "config.json").read_text())}


def test_fidelity_search_agrees_better_than_sinabs_on_the_cnn_example_and_says_so(tmp_path):
    searched, sinabs = compile_cnn(tmp_path, None), compile_cnn(tmp_path, "sinabs")
    found = searched["report"]["pass_reports"]["speck_quantize"]
    assert found["equals_sinabs"] is False
    assert found["agreement"] > found["agreement_sinabs"] + MIN_GAIN
    assert sinabs["report"]["pass_reports"]["speck_quantize"]["equals_sinabs"] is True
    # The driver's own measurement (report.json fidelity) sees the same gain.
    measured = searched["report"]["pass_reports"]["fidelity"]["agreement"]
    assert measured > sinabs["report"]["pass_reports"]["fidelity"]["agreement"]
    rows = searched["report"]["quantization"]
    assert {r["population"] for r in rows} == {"1", "4", "8"}
    for row in rows:
        assert row["rule"] in ("sinabs", "fidelity search")
        assert row["threshold_factor"] > 0 and row["scale_factor"] >= 1
        assert 0 <= row["calibration"]["agreement"] <= 1 and row["limited_by"]
        assert 0 <= row["calibration_chip_rule_float"]["agreement"] <= 1
    # The chip's rule on the model's own weights and thresholds: the rule's share of the loss
    # (the search's thresholds offset much of it on this example).
    assert 0 < found["agreement_chip_rule_float"] <= 1
    assert any(r["rule"] == "fidelity search" for r in rows)
    # The chosen thresholds are the emitted ones.
    cores = {name: searched["config"]["cnn_layers"][spec["core"]]
             for name, spec in searched["config"]["nirc"]["layers"].items()}
    assert {r["population"]: r["threshold_high"] for r in rows} == \
        {name: c["threshold_high"] for name, c in cores.items()}


@pytest.mark.parametrize("rule", [None, "sinabs"])
def test_sinabs_rule_emits_sinabs_integers_and_fidelity_keeps_them_unless_it_pays(tmp_path, rule):
    """``quantization: sinabs`` writes exactly quantize_network's sinabs integers (equal to
    sinabs' discretize, tests/test_speck_vs_sinabs.py); the default writes them too for any
    layer the search left at factor 1."""
    from nirc.nirio import read
    from nirc.targets.speck.chip import load_chip
    from nirc.targets.speck.lower import lower_to_speck

    built = compile_cnn(tmp_path, rule)
    float_net = lower_to_speck(read(CNN), load_chip("speck2f"), dt=built["report"]["dt"])
    plain = {layer.name: layer for layer in quantize_network(float_net)[0].layers}
    rows = {r["population"]: r for r in built["report"]["quantization"]}
    for name, spec in built["config"]["nirc"]["layers"].items():
        core = built["config"]["cnn_layers"][spec["core"]]
        expected = plain[name]
        kept = rule == "sinabs" or rows[name]["rule"] == "sinabs"
        assert kept == (rule == "sinabs" or (rows[name]["threshold_factor"] == 1.0
                                             and rows[name]["scale_factor"] == 1.0))
        if kept:
            weight = np.asarray(core["weights"]).transpose(0, 1, 3, 2)
            assert np.array_equal(weight, expected.weight)
            assert core["threshold_high"] == expected.threshold_high
            assert core["threshold_low"] == expected.threshold_low


def test_limited_by_names_within_step_rises_when_no_weight_reaches_the_threshold():
    from nirc.passes.speck_quantize import _limited_by

    below = {"threshold_high": 332, "weight_range": [-128, 127], "bias_range": [0, 0]}
    lossy = {"agreement": 0.97, "burst_share": 0.0}
    assert "later negative inputs cancel" in _limited_by(below, lossy)
    # Beside zeroed weights, the rule's share is named when the float run shows it costs.
    zeroed = {**below, "weights_zeroed": 4}
    assert _limited_by(zeroed, lossy) == "weights: 4 round to zero at 8 bits"
    named = _limited_by(zeroed, lossy, {"agreement": 0.964})
    assert named.startswith("weights: 4 round to zero") and "float weights agrees 0.964, " \
        "the integers 0.970" in named
    above = {**below, "threshold_high": 100}
    assert "at most one spike per event" in _limited_by(above, lossy)
    assert _limited_by(below, {"agreement": 1.0}) == "nothing measurable"


def test_chip_rule_in_float_equals_the_integer_reference_when_the_integers_are_exact():
    from nirc.targets.speck.network import run_chip_rule_float, run_reference, to_hwnet

    net = one_layer([511.0, -64.0, 25.0], threshold=254.0)    # 511: 2 spikes owed per event
    q, _ = quantize_network(net, weight_bits=10)
    assert q.layers[0].scale == 1.0 and q.layers[0].threshold_high == 254
    counts = np.random.default_rng(1).integers(0, 4, size=(30, 1, 1, 1))
    chip = run_reference(to_hwnet(q), {"input": counts})
    rule = run_chip_rule_float(to_hwnet(net), {"input": counts})
    assert rule["spikes"]["n"].sum() > 0
    for name in ("spikes", "v"):
        assert np.array_equal(rule[name]["n"], chip[name]["n"])
    with pytest.raises(ValueError, match="float network"):
        run_chip_rule_float(to_hwnet(q), {"input": counts})
