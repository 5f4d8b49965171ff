"""nirc's Loihi arithmetic agrees bit for bit with Intel Lava's bit-accurate CPU models.

Lava's side is tools/lava/run_lava.py in the Lava venv: PyLifModelBitAcc +
PyDenseModelBitAcc under Loihi2SimCfg(select_tag="fixed_pt"), reading a build
directory. Spikes, u and v of every population on every step must be identical
(docs/oracles.md says how the steps line up). Hand-built integer networks that
reach every branch of the arithmetic (weight truncation per sign mode,
exponents of both signs, per-neuron registers, recurrence, 24-bit wrap and
clip) are checked against nirc's loihi_cuba_lif model stepped directly.
Networks compiled from NIR for loihi2 (the snnTorch MLP and recurrent SNN of
examples/; a CNN, a recurrent network and a non-spiking readout built in
tests/loihi_networks.py, one with a multi-step synaptic delay) are emitted to a build directory and run by nirc's
emulator (nirc.emulator.Chip) and by Lava.

Skipped when .venv-lava is absent (make lava-venv), unless
NIRC_REQUIRE_ORACLES=1, which turns a missing Lava venv into a failure.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from nirc.oracles.lava import (LavaUnavailable, compare_build, emulator_recordings, lava_python,
                               mismatches, run_lava)

sys.path.insert(0, str(Path(__file__).parent))
from loihi_networks import NETWORKS, bernoulli_input  # noqa: E402

pytestmark = pytest.mark.lava

STEPS = 40



@pytest.fixture(autouse=True, scope="module")
def lava_venv():
    """Skip (or, under NIRC_REQUIRE_ORACLES=1, fail) when the Lava venv is missing.

    A fixture rather than a module-level check, so that deselecting the `lava`
    marker (as `make test` does) never collects a failure.
    """
    try:
        lava_python()
    except LavaUnavailable as missing:
        if os.environ.get("NIRC_REQUIRE_ORACLES") == "1":
            pytest.fail(str(missing))
        pytest.skip(f"{missing} (set NIRC_REQUIRE_ORACLES=1 to make this a failure)")

from nirc.neuron_models.loihi_cuba_lif import MODEL as LOIHI  # noqa: E402


# --- Lava runs the loihi_cuba_lif arithmetic (hand-built integer networks, no compiler) -------------


def write_build(build: Path, inputs: dict[str, int], populations: dict[str, dict[str, np.ndarray]],
                tables: list[dict]) -> None:
    """A loihi_cuba_lif build directory in the layout run_lava.py reads (docs/config-format.md)."""
    build.mkdir(parents=True)
    arrays, pops, tabs = {}, [], []
    for name, params in populations.items():
        refs = {}
        for key, value in params.items():
            arrays[f"{name}/{key}"] = value
            refs[key] = f"arrays.npz:{name}/{key}"
        pops.append({"name": name, "shape": [len(params["vth"])], "params": refs})
    for i, table in enumerate(tables):
        rows, cols = np.nonzero(table["weights"])
        for key, value in (("row", rows), ("col", cols), ("value", table["weights"][rows, cols])):
            arrays[f"table{i}/{key}"] = value
        tabs.append({"source": table["source"], "target": table["target"], "delay": 1,
                     "weights": {k: f"arrays.npz:table{i}/{k}" for k in ("row", "col", "value")},
                     **{k: table[k] for k in ("weight_exp", "num_weight_bits", "sign_mode")}})
    np.savez(build / "arrays.npz", **arrays)
    (build / "config.json").write_text(json.dumps({
        "neuron_model": "loihi_cuba_lif",
        "inputs": [{"name": n, "shape": [size]} for n, size in inputs.items()],
        "populations": pops, "tables": tabs}))


def integer_reference(populations, tables, inputs: dict[str, np.ndarray], steps: int):
    """nirc's loihi_cuba_lif model stepped directly: every table delivers one step late."""
    import scipy.sparse as sp
    from nirc.hwnet import SynapseTable

    prepared = []
    for t in tables:
        attrs = {k: t[k] for k in ("weight_exp", "num_weight_bits", "sign_mode")}
        table = SynapseTable(t["source"], t["target"], sp.csr_array(t["weights"]), kernel=attrs)
        prepared.append((t["source"], t["target"], LOIHI.prepare_weights(table), attrs))
    states = {n: LOIHI.init_state(p, batch=1) for n, p in populations.items()}
    previous = {**{n: np.zeros((1, a.shape[1]), np.int64) for n, a in inputs.items()},
                **{n: np.zeros((1, len(p["vth"])), np.int64) for n, p in populations.items()}}
    out = {f"{q}_{n}": [] for n in populations for q in ("spikes", "u", "v")}
    for k in range(steps):
        a_in = {n: np.zeros((1, len(p["vth"])), np.int64) for n, p in populations.items()}
        for source, target, weights, attrs in prepared:
            a_in[target] += LOIHI.accumulate(weights, attrs, previous[source])
        for n, p in populations.items():
            spikes = LOIHI.step(p, states[n], a_in[n])
            previous[n] = spikes.astype(np.int64)
            out[f"spikes_{n}"].append(spikes[0])
            out[f"u_{n}"].append(states[n]["u"][0])
            out[f"v_{n}"].append(states[n]["v"][0])
        previous.update({n: a[k][None].astype(np.int64) for n, a in inputs.items()})
    return {key: np.array(rows, dtype=np.int32) for key, rows in out.items()}


def random_population(rng, n, du=(0, 4095), dv=(0, 4095), vth=(1, 400), bias=(-200, 200), profiles=3):
    """Neurons drawn from a few random profiles (du, dv, vth, bias_exp), interleaved; bias_mant
    and the initial v per neuron. Lava runs one LIF process per profile."""
    shared = {"du": rng.integers(*du, profiles, endpoint=True), "dv": rng.integers(*dv, profiles, endpoint=True),
              "vth": rng.integers(*vth, profiles, endpoint=True),
              "bias_exp": rng.integers(0, 7, profiles, endpoint=True)}
    which = rng.integers(0, profiles, n)
    return {**{k: v[which] for k, v in shared.items()},
            "bias_mant": rng.integers(*bias, n, endpoint=True),
            "v_init": rng.integers(-5000, 5000, n, endpoint=True)}


def split_by_source_profile(table, source):
    """One table per profile of its source population (columns of the other profiles zeroed), as
    nirc's neuron_profiles pass splits them: each table then reads one LIF process."""
    keys = np.stack([source[k] for k in ("du", "dv", "vth", "bias_exp")], axis=1)
    _, profile = np.unique(keys, axis=0, return_inverse=True)
    profile = profile.ravel()
    return [{**table, "weights": table["weights"] * (profile == k)[None, :]} for k in np.unique(profile)]


def random_table(rng, source, target, n_src, n_tgt, sign_mode, weight_exp, num_weight_bits=8, density=0.5):
    low, high = {1: (-256, 255), 2: (0, 255), 3: (-255, 0)}[sign_mode]
    weights = rng.integers(low, high, (n_tgt, n_src), endpoint=True) * (rng.random((n_tgt, n_src)) < density)
    return {"source": source, "target": target, "weights": weights, "weight_exp": weight_exp,
            "num_weight_bits": num_weight_bits, "sign_mode": sign_mode}


def arithmetic_cases():
    """Integer networks chosen to reach every branch of Lava's arithmetic."""
    rng = np.random.default_rng(11)
    h = random_population(rng, 20)
    layered = ({"x": 16}, {"h": h, "o": random_population(rng, 6, du=(4095, 4095))},
               [random_table(rng, "x", "h", 16, 20, sign_mode=1, weight_exp=-1),
                *split_by_source_profile(random_table(rng, "h", "o", 20, 6, sign_mode=2, weight_exp=-3,
                                                      num_weight_bits=6), h),
                *split_by_source_profile(random_table(rng, "h", "o", 20, 6, sign_mode=3, weight_exp=1,
                                                      num_weight_bits=5), h)])
    r = random_population(rng, 12, vth=(50, 50))
    recurrent = ({"x": 8}, {"r": r},
                 [random_table(rng, "x", "r", 8, 12, sign_mode=1, weight_exp=0, num_weight_bits=7),
                  *split_by_source_profile(random_table(rng, "r", "r", 12, 12, sign_mode=1, weight_exp=-2), r)])
    # weight_exp 7 with dense full-scale weights drives u past its 24-bit range (Lava's wrap branch is
    # taken 22 times in the 30 steps below) and v to its clip.
    saturating = ({"x": 10}, {"s": random_population(rng, 5, du=(0, 30), dv=(0, 0), vth=(131071, 131071))},
                  [random_table(rng, "x", "s", 10, 5, sign_mode=1, weight_exp=7, density=1.0)])
    return {"layered": layered, "recurrent": recurrent, "saturating": saturating}


@pytest.mark.parametrize("case", sorted(arithmetic_cases()))
def test_lava_runner_equals_loihi_cuba_lif_arithmetic(case, tmp_path):
    inputs_sizes, populations, tables = arithmetic_cases()[case]
    rng = np.random.default_rng(5)
    inputs = {n: (rng.random((30, size)) < 0.5).astype(np.int8) for n, size in inputs_sizes.items()}
    write_build(tmp_path / "build", inputs_sizes, populations, tables)

    ours = integer_reference(populations, tables, inputs, steps=30)
    lava = run_lava(tmp_path / "build", inputs).recordings

    assert mismatches(ours, lava) == []
    if case == "saturating":
        assert (np.abs(lava["u_s"]) > (1 << 22)).any() and (np.abs(lava["v_s"]) == (1 << 23) - 1).any()
    else:
        assert all(lava[k].any() for k in lava if k.startswith("spikes_"))


# --- compiled NIR networks: the emitted build, run by nirc's emulator and by Lava ------------------

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# The snnTorch exports of examples/ (trained MLP; recurrent SNN with an RLeaky loop and a CubaLIF
# readout), the Sinabs CNN of examples/ (1.4M synapses on 31 cores: Lava runs its large tables as
# Sparse processes), and networks built in tests/loihi_networks.py: a small CNN (conv, sum-pool, fc),
# a CubaLIF loop with a LIF readout, a non-spiking CubaLI readout, and a NIR Delay (a table
# delivering 3 steps late: Lava's DelayDense), a skip and a residual graph whose short paths the
# balance_delays pass lengthens (DelayDense again), and an MLP with per-neuron time constants (three
# neuron profiles per layer: one LIF process each, tables split by source profile), and an MLP with
# Affine biases (constant currents delivered from an always-on neuron with no input).
COMPILED_NETWORKS = ["mlp.nir", "srnn.nir", "cnn.nir", "cnn", "recurrent", "readout", "delayed",
                     "skip", "residual", "profiled", "biased"]


def load_network(name: str):
    from nirc.nirio import read

    return read(EXAMPLES / name) if name.endswith(".nir") else NETWORKS[name]()


def compile_to_build(graph, build: Path, target_name: str = "loihi2"):
    """`nirc compile --target loihi2`: the quantized hardware network; the build is written to ``build``."""
    from nirc.driver import compile as compile_model

    return compile_model(graph, target_name, build).network


@pytest.mark.parametrize("name", COMPILED_NETWORKS)
def test_emulator_equals_lava_on_every_spike_and_state(name, tmp_path):
    graph = load_network(name)
    compile_to_build(graph, tmp_path / "build")
    inputs = bernoulli_input(graph, STEPS, rate=0.2, seed=3)

    problems, lava, _ = compare_build(tmp_path / "build", inputs)

    assert problems == []
    config = json.loads((tmp_path / "build" / "config.json").read_text())
    # One LIF process (scalar du, dv, vth, bias_exp) per neuron profile of every population.
    assert lava.lif_processes == sum(len(p["profiles"]) for p in config["populations"])
    recorded = lava.recordings
    assert all(recorded[k].any() for k in recorded if k.startswith("spikes_")), "a population never spikes"
    # (the always-on neuron's v is reset to 0 in every step it fires: every step)
    always_on = {f"v_{p['name']}" for p in config["populations"] if p.get("nodes") == ["always_on"]}
    assert all(recorded[k].any() for k in recorded if k.startswith("v_") and k not in always_on), \
        "a population's voltage never moves"


@pytest.mark.parametrize("name", ["snntorch_mlp.nir", "sinabs_cnn.nir"])
def test_trained_models_with_a_subtracting_reset_run_on_lava_as_on_the_emulator(name, tmp_path):
    """Models trained to subtract their threshold hold the membrane in u, with a table from each
    population to itself (and the precision search's refinement tables): Lava runs the build
    exactly as the emulator does."""
    from nirc.driver import compile as compile_model
    from nirc.nirio import read

    graph = read(EXAMPLES / "digits" / name)
    result = compile_model(EXAMPLES / "digits" / name, "loihi2", tmp_path / "build",
                           convention={"exporter": "auto"})
    assert any(t.source == t.target for t in result.network.tables)
    inputs = bernoulli_input(graph, STEPS, rate=0.2, seed=3)

    problems, lava, _ = compare_build(tmp_path / "build", inputs)

    assert problems == []
    assert all(lava.recordings[k].any() for k in lava.recordings if k.startswith("spikes_"))


def test_lava_sparse_synapses_equal_dense_ones_and_the_emulator(tmp_path):
    """Large tables go to Lava's Sparse process; it must compute exactly what Dense and the emulator do."""
    graph = load_network("cnn")
    compile_to_build(graph, tmp_path / "build")
    inputs = bernoulli_input(graph, STEPS, rate=0.2, seed=5)

    ours = emulator_recordings(tmp_path / "build", inputs)
    sparse = run_lava(tmp_path / "build", inputs, synapses="sparse").recordings

    assert mismatches(ours, sparse) == []


def test_the_comparison_catches_a_changed_weight_exponent(tmp_path):
    """The oracle can fail: raising the first table's weight_exp in the build changes what Lava computes."""
    graph = load_network("mlp.nir")
    compile_to_build(graph, tmp_path / "build")
    inputs = bernoulli_input(graph, STEPS, rate=0.2, seed=3)
    ours = emulator_recordings(tmp_path / "build", inputs)
    config_path = tmp_path / "build" / "config.json"
    config = json.loads(config_path.read_text())
    config["tables"][0]["weight_exp"] += 1
    config_path.write_text(json.dumps(config))

    lava = run_lava(tmp_path / "build", inputs).recordings

    first_layer = config["tables"][0]["target"]
    assert any(line.startswith(f"u_{first_layer}: first differs") for line in mismatches(ours, lava))


def test_relay_neurons_run_on_lava_as_on_the_emulator(tmp_path):
    """A chip holding delays of at most 2 steps: the skip path of a 5-table graph goes through
    relay neurons (LIF processes of their own), which Lava must run exactly as the emulator."""
    import yaml
    from nirc.driver import compile as compile_model

    data = yaml.safe_load((EXAMPLES.parent / "targets" / "loihi2.yaml").read_text())
    data["formats"]["max_delay_steps"] = 2
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(data))
    graph = NETWORKS["skip"](depth=4)
    result = compile_model(graph, tmp_path / "short.yaml", tmp_path / "build")
    assert result.report["pass_reports"]["delay_balance"]["relays"]
    inputs = bernoulli_input(graph, STEPS, rate=0.2, seed=3)

    problems, _, _ = compare_build(tmp_path / "build", inputs)

    assert problems == []


def test_spike_copies_run_on_lava_as_on_the_emulator(tmp_path, monkeypatch):
    """A population trained to fire several spikes per step is fired by copies (thresholds
    theta .. c theta, one membrane in u, its current as delayed taps: DelayDense): Lava must
    run the emitted build exactly as the emulator does."""
    from nirc.driver import compile as compile_model
    from nirc.neuron_models.loihi_cuba_lif import LoihiCubaLIF
    from test_loihi_spike_copies import MULTI, _bursting_graph

    # (uniform copies, which this input drives to fire all: levels have their own test)
    monkeypatch.setattr(LoihiCubaLIF, "READOUT_SPIKES", ("1", "4", "8", "16"))

    graph = _bursting_graph()
    result = compile_model(graph, "loihi2", tmp_path / "build", convention=MULTI,
                           calibration_steps=0)
    rows = [r for r in result.report["quantization"] if r.get("spike_copies")]
    assert rows, "the search chose no copies: this test would not exercise them"
    inputs = bernoulli_input(graph, STEPS, rate=0.3, seed=2)

    problems, lava, _ = compare_build(tmp_path / "build", inputs)

    assert problems == []
    assert all(lava.recordings[k].any() for k in lava.recordings if k.startswith("spikes_"))


@pytest.mark.parametrize("target", ["loihi2", "spinnaker2"])
def test_a_subtracting_reset_with_a_synaptic_current_runs_on_lava_as_on_the_emulator(
        target, tmp_path):
    """A population trained to subtract its threshold a step late (snnTorch's RSynaptic) with a
    synaptic current holds its membrane in u: its current as 44 delayed taps of every input
    table (DelayDense), its bias ramping up through taps from an always-on neuron, a table
    onto itself subtracting the threshold. Lava must run the build exactly as the emulator;
    on SpiNNaker-2 (delays up to 15 steps) the later taps leave from relay neurons."""
    from nirc.driver import compile as compile_model
    from test_loihi_current_reset import LATE, rsynaptic

    graph = rsynaptic()
    result = compile_model(graph, target, tmp_path / "build", convention=LATE,
                           calibration_steps=0)
    (row,) = [r for r in result.report["quantization"] if r["population"] == "lif"]
    assert row.get("current_taps"), "the search kept the zero reset: this test would not run taps"
    assert row["current_taps"]["taps"] == 44
    assert bool(result.report["pass_reports"]["delay_balance"]["relays"]) == (target == "spinnaker2")
    # (past the last tap, which carries the current's tail, at delay 44)
    inputs = bernoulli_input(graph, 60, rate=0.3, seed=2)

    problems, lava, _ = compare_build(tmp_path / "build", inputs)

    assert problems == []
    assert all(lava.recordings[k].any() for k in lava.recordings if k.startswith("spikes_"))


def test_spike_levels_run_on_lava_as_on_the_emulator(tmp_path, monkeypatch):
    """Copies standing for spike levels (thresholds between levels, tables and resets weighted
    by each level's step, the output counting them so) are ordinary LIF processes and
    Dense/DelayDense tables: Lava must run the emitted build exactly as the emulator does."""
    from nirc import spike_copies
    from nirc.driver import compile as compile_model
    from nirc.neuron_models.loihi_cuba_lif import LoihiCubaLIF
    from test_loihi_spike_copies import MULTI, _bursting_graph

    # (three copies for levels 1, 2, 4: few processes, as Lava builds one per table)
    monkeypatch.setitem(spike_copies.LEVELS, (4, 3), (1, 2, 4))
    monkeypatch.setattr(LoihiCubaLIF, "READOUT_SPIKES", ("4/3",))
    graph = _bursting_graph()
    result = compile_model(graph, "loihi2", tmp_path / "build", convention=MULTI,
                           calibration_steps=0)
    (row,) = [r for r in result.report["quantization"] if r.get("spike_copies")]
    assert row["spike_copy_weights"] == [1, 2]
    inputs = bernoulli_input(graph, STEPS, rate=0.3, seed=2)

    problems, lava, _ = compare_build(tmp_path / "build", inputs)

    assert problems == []
    assert all(lava.recordings[k].any() for k in lava.recordings if k.startswith("spikes_"))
