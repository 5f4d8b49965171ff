"""Fidelity-driven Loihi quantization: refinement tables, finer state scales, chosen by agreement.

Loihi stores 8-bit weight mantissas with one exponent per table and floors each table's
shifted sum; through a few layers that moves spikes by a step. The Loihi model offers a
per-population ``precision`` (refinement tables holding what the mantissas rounded away,
and a threshold register 4 or 16 times larger), and the quantize pass chooses it by the
calibration agreement with the source model (nirc.fidelity.search_factors, the search every
quantizer tunes with). These tests fail if the refinement stops carrying the rounding error, if the search
stops choosing it where it pays, or if a refined build stops equalling the integer reference.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from nirc import fidelity, intref
from nirc.driver import compile as compile_model, random_spike_input
from nirc.emulator import Chip
from nirc.hwnet import Population, SynapseTable
from nirc.neuron_models.loihi_cuba_lif import MODEL, LoihiCubaLIF
from nirc.simulate import simulate
from nirc.verify import compare_runs

sys.path.insert(0, str(Path(__file__).parent))
from loihi_networks import skip  # noqa: E402


def _population(n: int) -> Population:
    ones = np.ones(n)
    return Population(name="p", shape=(n,), provenance=("p",), params={
        "i_decay": 0.8 * ones, "v_decay": 0.9 * ones, "v_bias": 0 * ones, "i_bias": 0 * ones,
        "threshold": ones, "v_reset": 0 * ones})


def _table(seed: int = 0) -> SynapseTable:
    w = np.random.default_rng(seed).normal(0, 0.2, (6, 12))
    return SynapseTable(source="in", target="p", weights=sp.csr_array(w), delay=0)


def test_refinement_tables_carry_what_the_8_bit_mantissas_round_away():
    pop, table = _population(6), _table()
    _, coarse, row8 = MODEL.quantize(pop, [table], {}, "layer")
    q, fine, row16 = MODEL.quantize(pop, [table], {}, "layer", choice={"precision": "16-bit"})
    assert len(coarse) == 1 and len(fine) == 3
    # The given table first (same mantissas as at 8 bits), then one refinement per sign.
    assert (fine[0].weights != coarse[0].weights).nnz == 0
    assert [t.kernel["refines"] for t in fine[1:]] == [0, 0]
    assert {t.kernel["sign_mode"] for t in fine[1:]} == {2, 3}
    assert all(0 <= t.kernel["weight_exp"] < fine[0].kernel["weight_exp"] for t in fine[1:])
    # What the three tables deliver together, in float units, against the float weights: every
    # weight to the nearest unit of the input (1/2048 of the threshold at this scale), no table
    # with a negative exponent (whose shift would floor every step's sum).
    s = float(q.v_scale[0]) / 64
    total = sum(t.weights.toarray() * 2.0 ** t.kernel["weight_exp"] for t in fine) / s
    assert np.max(np.abs(total - table.weights.toarray())) <= 0.5 / s + 1e-12
    assert row16["weight_rel_error"] < 0.2 * row8["weight_rel_error"]
    # "x4": the threshold register four times larger, the same threshold in float units.
    q4, _, _ = MODEL.quantize(pop, [table], {}, "layer", choice={"precision": "16-bit x4"})
    assert int(q4.params["vth"][0]) == 4 * int(q.params["vth"][0])


def test_8_bit_rounded_keeps_one_table_and_floors_no_sum():
    """'8-bit rounded' (offered where copies multiply a population's tables): exponents >= 0
    as at 16 bits, so no table's sum is floored, but one table per weight table as at 8 bits
    (no refinement tables: the synapses stay those of 8 bits)."""
    pop = _population(6)
    small = SynapseTable(source="in", target="p", delay=0, weights=sp.csr_array(
        np.random.default_rng(1).normal(0, 0.002, (6, 12))))
    _, coarse, _ = MODEL.quantize(pop, [small], {}, "layer")
    q, rounded, _ = MODEL.quantize(pop, [small], {}, "layer",
                                   choice={"precision": "8-bit rounded"})
    assert coarse[0].kernel["weight_exp"] < 0          # (Lava's rule: this table floors)
    assert len(rounded) == 1 and rounded[0].kernel["weight_exp"] == 0
    s = float(q.v_scale[0]) / 64
    got = rounded[0].weights.toarray() / s
    # (to the nearest even unit: a mixed-sign table stores even values, Lava's rule)
    assert np.max(np.abs(got - small.weights.toarray())) <= 1.0 / s + 1e-12
    assert "8-bit rounded" not in MODEL.choices["precision"]    # (offered with copies only)


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        MODEL.quantize(_population(2), [], {}, "layer", choice={"precision": "12-bit"})


def test_the_search_keeps_a_named_choice_only_when_it_beats_the_margin():
    scores = {("a", "two"): 0.503, ("a", "three"): 0.60, ("b", "two"): 0.70}

    def evaluate(choice):
        picked = [(n, c["k"]) for n, c in sorted(choice.items()) if c["k"] != "one"]
        value = max([scores.get(p, 0.0) for p in picked], default=0.5)
        return value, picked

    found = fidelity.search_factors(
        evaluate, {"a": {"k": ["one", "two", "three"]}, "b": {"k": ["one", "two"]}}, rounds=2,
        defaults={"a": {"k": "one"}, "b": {"k": "one"}}, margin=0.005)
    assert found.baseline == 0.5 and found.score == 0.70
    assert found.factors == {"a": {"k": "three"}, "b": {"k": "two"}}
    assert found.result == [("a", "three"), ("b", "two")]
    # 0.503 did not beat the default by the margin: never kept.
    assert {"population": "a", "knob": "k", "factor": "two", "agreement": 0.503} in found.tried


def _merge_agreement(result, graph, inputs, layer: str) -> float:
    ran = intref.run(result.network, inputs, batch=True)
    floated = simulate(graph, inputs, dt=result.network.dt, batch=True)
    lag = int(result.report["pass_reports"]["latency_steps"].get(layer, 0))
    steps = ran.spikes[layer].shape[0]
    chip = ran.spikes[layer][lag:].astype(bool)
    return float(np.mean(chip == floated.spikes[layer][:steps - lag].astype(bool)))


def test_the_search_lifts_a_skip_graphs_merge_layer_to_the_float_model(tmp_path, monkeypatch):
    graph = skip(depth=2, seed=7)
    inputs = random_spike_input(graph, 200, seed=1, batch=16)
    chosen = compile_model(graph, "loihi2", tmp_path / "build", calibration_steps=0)
    search = chosen.report["pass_reports"]["quantization_search"]
    assert search["agreement"] >= search["agreement_default"]
    assert all(r["choice"]["precision"].startswith("16-bit")
               for r in chosen.report["quantization"])
    assert _merge_agreement(chosen, graph, inputs, "merge") >= 0.97
    # The emitted build (refinement tables included) is what the integer reference runs.
    assert compare_runs(Chip.load(tmp_path / "build").run(inputs, batch=True, record=True),
                        intref.run(chosen.network, inputs, batch=True, record=True)) == []

    monkeypatch.setattr(LoihiCubaLIF, "choices", {"precision": ("8-bit",)})
    plain = compile_model(graph, "loihi2", None, calibration_steps=0)
    assert _merge_agreement(plain, graph, inputs, "merge") < 0.95


def test_a_model_the_chip_cannot_fire_as_trained_is_named_in_the_warning(tmp_path,
                                                                         monkeypatch):
    """Rockpool's LIFTorch (subtract reset, several spikes per step, synaptic current) on
    Loihi (one spike per step, subtracting with its membrane in u; several only by spike
    copies): the damage
    warning says which rules differ, what the layer lost on the calibration input, and how
    to run the model under the chip's rules; with copies (here at most 4, to keep the search
    short), the bound they set."""
    root = Path(__file__).resolve().parents[1]
    with np.load(root / "examples" / "digits" / "reference.npz") as data:
        np.savez(tmp_path / "cal.npz", input=data["calibration_rows"][:, :8])

    def notes(spikes):
        monkeypatch.setattr(LoihiCubaLIF, "SPIKES", spikes)
        monkeypatch.setattr(LoihiCubaLIF, "READOUT_SPIKES", spikes)
        with pytest.warns(Warning) as caught:
            compile_model(root / "examples" / "digits" / "rockpool_lif.nir", "loihi2", None,
                          convention={"exporter": "auto"}, calibration_steps=0,
                          calibration=str(tmp_path / "cal.npz"), partition_method="sequential")
        found = {}
        for w in caught:
            text = str(w.message)
            if "cannot fire as the model was trained" in text:
                found[text.split("population '")[1].split("'")[0]] = text
        return found

    single = notes(("1",))
    assert set(single) == {"1_LIFTorch.lif", "3_LIFTorch"}, single
    for note in single.values():
        # (one copy still subtracts as trained: its membrane in u, its current as taps)
        assert "the chip resets to zero" not in note
        assert "the model fires several spikes per step, the chip at most one" in note
        assert "nirc simulate --reset subtract --spikes single" in note
        assert "calibration agreement" in note and "% lost" in note
    copies = notes(("1", "4"))
    assert copies and all("4 on the chip" in note and "--reset subtract --max-spikes 4" in note
                          for note in copies.values()), copies


def _same_winner(result, name: str, samples: int) -> float:
    """Share of the first ``samples`` stored test digits on which the compiled network (the
    integer reference, = emulator = Lava) predicts what the framework predicted."""
    import json

    digits = Path(__file__).resolve().parents[1] / "examples" / "digits"
    entry = json.loads((digits / "manifest.json").read_text())["models"][name]
    with np.load(digits / "reference.npz") as data:
        x = data[f"input_{entry['encoding']}"][:, :samples].astype(np.float64)
        framework = data[f"counts_{name}"][:samples].argmax(1)
    x = x.reshape(x.shape[0], samples, *entry["input_shape"])
    (port,) = result.network.outputs.values()
    lag = int(result.report["pass_reports"]["latency_steps"].get(port.source, 0))
    padded = np.concatenate([x, np.zeros((lag, *x.shape[1:]))])
    (out,) = intref.run(result.network, {next(iter(result.network.inputs)): padded},
                        batch=True).outputs.values()
    counts = out[lag:lag + x.shape[0]].reshape(x.shape[0], samples, -1).sum(0)
    return float(np.mean(counts.argmax(1) == framework))


def test_a_sinabs_cnn_trained_to_subtract_keeps_its_winners_on_loihi(monkeypatch):
    """Sinabs' IAF subtracts its threshold; Lava's LIF resets to zero. Held in u with a table
    onto itself, the subtraction is exact, and the chip predicts as Sinabs did on at least
    93 % of the first 150 test digits (86 % with the chip's reset to zero)."""
    root = Path(__file__).resolve().parents[1]
    path = root / "examples" / "digits" / "sinabs_cnn.nir"
    result = compile_model(path, "loihi2", None, convention={"exporter": "auto"},
                           calibration_steps=0)
    rows = result.report["quantization"]
    assert all(r["choice"]["reset"] == "subtract" for r in rows)
    assert sum(t.source == t.target for t in result.network.tables) == len(rows)
    fidelity_rows = result.report["pass_reports"]["fidelity"]["layers"]
    assert all(r["chip_rules"]["reset"] == "subtract" for r in fidelity_rows.values())
    assert not any("reset" in d for r in fidelity_rows.values() for d in r["rule_differences"])
    assert _same_winner(result, "sinabs_cnn", 150) >= 0.93

    zero = LoihiCubaLIF.choice_options
    monkeypatch.setattr(LoihiCubaLIF, "choice_options",
                        lambda self, pop, convention=None, **kw: {
                            k: v for k, v in zero(self, pop, convention, **kw).items()
                            if k != "reset"})
    plain = compile_model(path, "loihi2", None, convention={"exporter": "auto"},
                          calibration_steps=0)
    assert _same_winner(plain, "sinabs_cnn", 150) < 0.9


def test_only_a_neuron_without_a_synaptic_current_can_subtract():
    pop = _population(3)
    with pytest.raises(ValueError, match="synaptic current"):
        MODEL.quantize(pop, [], {}, "layer", choice={"reset": "subtract"})
    lif = pop.with_(params={**pop.params, "i_decay": np.zeros(3)})
    q, tables, row = MODEL.quantize(lif, [], {}, "layer", choice={"reset": "subtract late"})
    # The membrane in u (du from the voltage decay 0.9), v a copy of it (dv = 4095), and the
    # threshold subtracted through a table onto itself.
    assert int(q.params["dv"][0]) == 4095 and int(q.params["du"][0]) == 409
    (reset,) = tables
    assert reset.source == reset.target == "p" and reset.kernel["self_reset"]
    assert np.allclose(reset.weights.toarray() * 2.0 ** reset.kernel["weight_exp"],
                       -np.diag(q.params["vth"]))
    assert q.firing == {"reset": "subtract", "reset_delay": True}


def test_a_population_that_cannot_reset_as_trained_keeps_the_default_precision():
    """snnTorch RSynaptic subtracts its threshold; a CubaLIF's u holds its current, so on a
    chip without synaptic delays (its current cannot become taps) the chip resets to zero:
    the search is not offered choices it would only fit to that gap. With delays the
    subtraction is offered (nirc.spike_copies, one copy) at the default precision."""
    from nirc.convention import resolve
    from nirc.nirio import read

    path = Path(__file__).resolve().parents[1] / "examples" / "digits" / "snntorch_rsynaptic.nir"
    convention = resolve(read(path), "auto")
    cuba = _population(4)
    assert MODEL.choice_options(cuba, convention, max_delay=1) == {"precision": ("8-bit",)}
    held = MODEL.choice_options(cuba, convention, max_delay=64)
    assert held["precision"] == ("8-bit",) and held["reset"] == ("subtract late", "zero")
    lif = cuba.with_(params={**cuba.params, "i_decay": np.zeros(4)})
    options = MODEL.choice_options(lif, convention)
    assert options["reset"] == ("subtract late", "zero") and len(options["precision"]) == 4
    assert MODEL.choice_options(cuba, None) == MODEL.choices


def test_a_deep_network_keeps_the_default_precision_and_the_report_says_why(monkeypatch):
    # Every trial runs the whole network: a deep chain would cost trials x populations.
    from nirc.passes import quantize as quantize_pass
    sys.path.insert(0, str(Path(__file__).parent))
    from multichip_networks import chain
    monkeypatch.setattr(quantize_pass, "SEARCH_MAX_POPULATION_RUNS", 20)
    built = compile_model(chain(12), "loihi2", None, calibration_steps=0)
    search = built.report["pass_reports"]["quantization_search"]
    assert "population runs (above 20)" in search["skipped"]
    assert "agreement" not in search
    assert all("choice" not in r for r in built.report["quantization"])
