"""balance_delays: on Loihi-like chips every input of a merge layer arrives with the layer's latency.

Skip and residual graphs (tests/loihi_networks.py) reach their merge layer over
paths of different lengths; every Loihi table adds a step, so without the pass
the short path arrives early. With it, chip step t + latency_steps matches float
step t for every input of every layer, whether the delay is held in the
synapses (loihi2: up to 64 steps) or, beyond the chip's longest delay, in
relay neurons — which must give exactly the same spikes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from nirc import intref
from nirc.driver import compile as compile_model, random_spike_input
from nirc.emulator import Chip
from nirc.ir.nodes import Affine, Input, NIRGraph, Output
from nirc.simulate import simulate
from nirc.target import load_target
from nirc.verify import compare_runs

sys.path.insert(0, str(Path(__file__).parent))
from loihi_networks import cuba_lif, delayed, residual, skip  # noqa: E402

STEPS, SAMPLES = 120, 8


def target_with(tmp_path: Path, name: str = "loihi2", **formats) -> Path:
    """A copy of a shipped target YAML with some formats changed."""
    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "targets" / f"{name}.yaml")
                          .read_text())
    data["formats"].update(formats)
    path = tmp_path / f"{name}_changed.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def unbalanced_target():
    target = load_target("loihi2")
    return target.model_copy(update={"passes": [p for p in target.passes
                                                if p != "balance_delays"]})


def merge_agreement(result, graph, layer: str, inputs) -> float:
    """Fraction of (step, sample, neuron) where the chip at t + latency and the float run at t
    agree on spiking."""
    ran = intref.run(result.network, inputs, batch=True)
    floated = simulate(graph, inputs, dt=result.network.dt, batch=True)
    lag = result.report["pass_reports"]["latency_steps"][layer]
    chip = ran.spikes[layer].reshape(STEPS, SAMPLES, -1)[lag:]
    want = floated.spikes[layer].reshape(STEPS, SAMPLES, -1)[:STEPS - lag]
    return float(np.mean(chip == want))


def arrival_latencies(result, layer: str) -> set[int]:
    """Hardware latency of every table into ``layer``: source latency + delay - float delay."""
    reports = result.report["pass_reports"]
    latency = {**reports["latency_steps"]}
    rows = reports["table_delays"]
    return {latency.get(r["source"], 0) + r["delay"] - r["float_delay"]
            for r in rows if r["target"] == layer and r["float_delay"] is not None}


@pytest.mark.parametrize("graph, layer", [(skip(depth=2), "merge"), (residual(), "res")])
def test_every_input_of_a_merge_layer_arrives_with_its_latency(graph, layer):
    result = compile_model(graph, "loihi2", None, calibration_steps=0)
    latency = result.report["pass_reports"]["latency_steps"][layer]

    assert arrival_latencies(result, layer) == {latency}
    added = result.report["pass_reports"]["delay_balance"]["added_delays"]
    # (split_signs makes each connection an excitatory and an inhibitory table)
    assert {(a["source"], a["target"]) for a in added} == \
        ({("input", "merge")} if layer == "merge" else {("stem", "res")})
    assert all(a["delay"] == a["delay_before"] + a["added_steps"] for a in added)


def test_without_the_pass_the_short_path_arrives_early():
    result = compile_model(skip(depth=2), unbalanced_target(), None, calibration_steps=0)
    latency = result.report["pass_reports"]["latency_steps"]["merge"]
    assert arrival_latencies(result, "merge") == {1, latency}


@pytest.mark.parametrize("graph, layer", [(skip(depth=1, seed=5), "merge"),
                                          (residual(seed=6), "res")])
def test_balancing_raises_merge_layer_agreement_with_the_float_model(graph, layer):
    inputs = random_spike_input(graph, STEPS, seed=1, batch=SAMPLES)
    balanced = compile_model(graph, "loihi2", None, calibration_steps=0)
    unbalanced = compile_model(graph, unbalanced_target(), None, calibration_steps=0)
    before = merge_agreement(unbalanced, graph, layer, inputs)
    after = merge_agreement(balanced, graph, layer, inputs)
    assert after > before
    assert after >= 0.92


def test_relay_neurons_give_exactly_the_spikes_of_synaptic_delays(tmp_path):
    """With a chip that holds no delay beyond its one step, skip paths go through relay
    neurons: the merge layer must spike exactly as with the delay in the synapses."""
    graph = skip(depth=4)
    inputs = random_spike_input(graph, STEPS, seed=2, batch=SAMPLES)
    held = compile_model(graph, "loihi2", None, calibration_steps=0)
    relayed = compile_model(graph, target_with(tmp_path, max_delay_steps=2),
                            tmp_path / "build", calibration_steps=0)

    balance = relayed.report["pass_reports"]["delay_balance"]
    assert [r["delay_steps"] for r in balance["relays"]] == [2, 4]
    assert all(t.delay <= 2 for t in relayed.network.tables)
    want = intref.run(held.network, inputs, batch=True)
    got = intref.run(relayed.network, inputs, batch=True, record=True)
    for layer in ("lif0", "lif3", "merge"):
        assert np.array_equal(got.spikes[layer], want.spikes[layer])
    assert compare_runs(Chip.load(tmp_path / "build").run(inputs, batch=True, record=True),
                        got) == []


def test_a_nir_delay_beyond_the_chips_longest_goes_through_a_relay(tmp_path):
    graph = delayed(delay_s=5e-3)
    inputs = random_spike_input(graph, STEPS, seed=3, batch=SAMPLES)
    held = compile_model(graph, "loihi2", None, calibration_steps=0)
    relayed = compile_model(graph, target_with(tmp_path, max_delay_steps=2), None,
                            calibration_steps=0)
    assert max(t.delay for t in held.network.tables) == 5
    assert len(relayed.report["pass_reports"]["delay_balance"]["relays"]) == 2
    assert np.array_equal(intref.run(relayed.network, inputs, batch=True).spikes["lif2"],
                          intref.run(held.network, inputs, batch=True).spikes["lif2"])


def test_a_loop_over_several_layers_is_reported_unbalanced():
    """lif_b feeds back into lif_a: in float the loop takes one step, on the chip two."""
    rng = np.random.default_rng(0)
    nodes = {"input": Input(shape=np.array([6])),
             "fa": Affine(weight=rng.normal(0, 1, (8, 6)), bias=np.zeros(8)),
             "lif_a": cuba_lif((8,)),
             "fb": Affine(weight=rng.normal(0, 1, (8, 8)), bias=np.zeros(8)),
             "lif_b": cuba_lif((8,)),
             "back": Affine(weight=rng.normal(0, 1, (8, 8)), bias=np.zeros(8)),
             "output": Output(shape=np.array([8]))}
    edges = (("input", "fa"), ("fa", "lif_a"), ("lif_a", "fb"), ("fb", "lif_b"),
             ("lif_b", "back"), ("back", "lif_a"), ("lif_b", "output"))
    result = compile_model(NIRGraph(nodes=nodes, edges=edges), "loihi2", None,
                           calibration_steps=0)
    unbalanced = result.report["pass_reports"]["delay_balance"]["unbalanced"]
    assert {(u["source"], u["target"], u["late_steps"]) for u in unbalanced} == \
        {("lif_b", "lif_a", 1)}


def test_verify_says_when_a_merge_layer_gets_its_inputs_at_different_latencies():
    from nirc.verify import verify

    unbalanced = verify(skip(depth=2), unbalanced_target(), steps=30, samples=2)
    assert unbalanced.bit_exact
    assert any(n.startswith("latency: 'merge' receives its inputs with different latencies "
                            "(from input 2 steps early)") and "add balance_delays" in n
               for n in unbalanced.notes)
    balanced = verify(skip(depth=2), "loihi2", steps=30, samples=2)
    assert not any(n.startswith("latency:") for n in balanced.notes)


def test_compile_says_which_delays_it_added(tmp_path, caplog):
    import logging

    from nirc.cli import main
    from nirc.nirio import write

    write(tmp_path / "skip.nir", skip(depth=2))
    with caplog.at_level(logging.INFO, logger="nirc"):
        assert main(["compile", str(tmp_path / "skip.nir"), "--target", "loihi2",
                     "-o", str(tmp_path / "build")]) == 0
    said = [r.getMessage().strip() for r in caplog.records]
    assert said.count("input -> merge: delay 1 -> 3 steps, so all inputs of merge arrive "
                      "together") == 1
