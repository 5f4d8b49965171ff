"""neuron_profiles: Loihi builds group neurons into profiles with one du, dv, vth and bias exponent.

A Loihi core (and Lava's LIF process) holds these once per group of neurons,
not per neuron. Every population of a Loihi build must therefore list its
profiles, every neuron's registers must be its profile's, every table must read
one source profile, and a population with more distinct values than a core
holds shares quantized values (reported). The emulator still equals the integer
reference bit for bit, and refuses a config whose neurons contradict their
profiles.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from nirc import intref
from nirc.driver import compile as compile_model, random_spike_input
from nirc.emulator import Chip, ConfigError
from nirc.neuron_models.loihi_cuba_lif import LoihiCubaLIF
from nirc.nirio import read
from nirc.verify import compare_runs

sys.path.insert(0, str(Path(__file__).parent))
from loihi_networks import profiled  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROFILE_PARAMS = ("du", "dv", "vth", "bias_exp")


def target_with_limit(tmp_path: Path, limit: int) -> Path:
    data = yaml.safe_load((ROOT / "targets" / "loihi2.yaml").read_text())
    data["cores"]["limits"]["neuron_profiles"] = limit
    path = tmp_path / "loihi2_profiles.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def check_profiles(net):
    for pop in net.populations.values():
        assert pop.profiles, pop.name
        for key in PROFILE_PARAMS:
            want = np.array([p[key] for p in pop.profiles])[pop.profile]
            assert np.array_equal(pop.params[key], want), (pop.name, key)
    for t in net.tables:
        if t.source in net.populations:
            cols = t.weights.indices
            assert np.unique(net.populations[t.source].profile[cols]).size <= 1


@pytest.mark.parametrize("model", ["mlp.nir", "srnn.nir"])
def test_every_population_of_a_loihi_build_has_one_profile_per_shared_value(model):
    result = compile_model(read(ROOT / "examples" / model), "loihi2", None, calibration_steps=0)
    check_profiles(result.network)
    # One bias exponent per population: these models need a single profile per layer.
    assert all(len(p.profiles) == 1 for p in result.network.populations.values())


def test_individual_time_constants_become_profiles_and_tables_split_by_source(tmp_path,
                                                                              monkeypatch):
    # At 8-bit precision: one table per sign (the quantize search may add refinements).
    monkeypatch.setattr(LoihiCubaLIF, "choices", {"precision": ("8-bit",)})
    graph = profiled()
    result = compile_model(graph, "loihi2", tmp_path / "build", calibration_steps=0)
    net = result.network
    check_profiles(net)
    assert [len(p.profiles) for p in net.populations.values()] == [3, 3]
    report = result.report["pass_reports"]["neuron_profiles"]
    assert [s["into"] for s in report["split_tables"]] == [3, 3]   # fc2: its + and - halves
    config = json.loads((tmp_path / "build" / "config.json").read_text())
    assert [len(p["profiles"]) for p in config["populations"]] == [3, 3]

    inputs = random_spike_input(graph, 60, seed=1, batch=4)
    assert compare_runs(Chip.load(tmp_path / "build").run(inputs, batch=True, record=True),
                        intref.run(net, inputs, batch=True, record=True)) == []


def test_more_distinct_values_than_a_core_holds_share_quantized_values(tmp_path):
    graph = profiled(tau_mems=np.linspace(5e-3, 30e-3, 9))
    result = compile_model(graph, target_with_limit(tmp_path, 4), tmp_path / "build",
                           calibration_steps=0)
    check_profiles(result.network)
    assert all(len(p.profiles) <= 4 for p in result.network.populations.values())
    rows = result.report["pass_reports"]["neuron_profiles"]["populations"]
    shared = [r["shared"] for r in rows if "shared" in r]
    assert shared and all(s["neurons_changed"] > 0 and s["max_change"]["dv"] > 0 for s in shared)
    inputs = random_spike_input(graph, 40, seed=2, batch=2)
    assert compare_runs(Chip.load(tmp_path / "build").run(inputs, batch=True, record=True),
                        intref.run(result.network, inputs, batch=True, record=True)) == []


def test_the_emulator_refuses_a_neuron_that_contradicts_its_profile(tmp_path):
    compile_model(profiled(), "loihi2", tmp_path / "build", calibration_steps=0)
    path = tmp_path / "build" / "config.json"
    config = json.loads(path.read_text())
    config["populations"][0]["profiles"][0]["dv"] += 1
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="profile"):
        Chip.load(tmp_path / "build")


def test_the_partitioner_keeps_each_core_within_its_profile_limit(tmp_path):
    """Cores holding two profiles: each layer's three time constants are shared down to two
    profiles, and no core may hold a third, however few neurons it has (the whole network
    fits one core by neurons)."""
    graph = profiled()
    result = compile_model(graph, target_with_limit(tmp_path, 2), None, calibration_steps=0)
    net, placement = result.network, result.placement
    for core, use in placement.utilisation.items():
        assert use["neuron_profiles"].used <= 2
    held = {}
    for b in placement.blocks:
        profile = net.populations[b.population].profile[b.start:b.stop]
        held.setdefault(b.core, set()).update((b.population, int(p)) for p in profile)
    assert max(len(v) for v in held.values()) <= 2
    assert {use["neuron_profiles"].used for use in placement.utilisation.values()} == {2}
    assert placement.cores_used >= 2
    roomy = compile_model(graph, "loihi2", None, calibration_steps=0)
    assert roomy.placement.cores_used == 1
