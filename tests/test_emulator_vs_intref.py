"""The emulator, reading only the emitted files, agrees bit for bit with the integer reference
running the hardware network before placement: every spike, every u and v, every step."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_graphs import cnn, mlp, random_graphs, recurrent, skip_and_delay, spikes
from nirc import intref
from nirc.driver import compile
from nirc.emulator import Chip
from nirc.verify import compare_runs

TARGETS = Path(__file__).parent / "targets"
TINY = str(TARGETS / "tiny_loihi_4.yaml")


def inputs_for(graph, steps=30, batch=3, seed=1):
    return {name: spikes(tuple(int(d) for d in node.shape), steps=steps, batch=batch, seed=seed)
            for name, node in graph.inputs().items()}


def emulate_and_reference(graph, target=TINY, method="sequential", discretisation="euler", **kw):
    with tempfile.TemporaryDirectory() as tmp:
        result = compile(graph, target, Path(tmp) / "build", calibration_steps=10,
                         partition_method=method, method=discretisation, **kw)
        chip = Chip.load(Path(tmp) / "build")
        x = inputs_for(graph)
        return result, chip.run(x, batch=True, record=True), \
            intref.run(result.network, x, batch=True, record=True)


@pytest.mark.parametrize("make", [mlp, recurrent, cnn, skip_and_delay, lambda: mlp(readout=True)])
def test_emulator_matches_integer_reference_on_every_state(make):
    result, emulated, reference = emulate_and_reference(make())
    assert result.placement.cores_used > 1
    assert compare_runs(emulated, reference) == []
    assert set(emulated.states) == set(result.network.populations)
    assert any(s.any() for s in emulated.spikes.values())


def test_emulator_matches_integer_reference_after_cpsat_placement():
    result, emulated, reference = emulate_and_reference(mlp(), method=None)
    assert result.placement.cores_used > 1
    assert compare_runs(emulated, reference) == []


def test_single_sample_run_equals_the_same_sample_in_a_batch():
    graph = recurrent()
    with tempfile.TemporaryDirectory() as tmp:
        compile(graph, TINY, Path(tmp) / "b", calibration_steps=0, partition_method="sequential")
        chip = Chip.load(Path(tmp) / "b")
        x = inputs_for(graph, batch=4)
        batched = chip.run(x, batch=True, record=True)
        single = chip.run({k: v[:, 2] for k, v in x.items()}, record=True)
    assert np.array_equal(single.states["rlif"]["v"], batched.states["rlif"]["v"][:, 2])
    assert np.array_equal(single.outputs["out"], batched.outputs["out"][:, 2])


def test_compare_runs_reports_the_first_differing_step_and_neuron():
    _, emulated, reference = emulate_and_reference(recurrent())
    v = emulated.states["rlif"]["v"]
    v[7, 1, 3] += 1
    (m,) = compare_runs(emulated, reference)
    assert (m.what, m.step, m.sample, m.index) == ("state v of 'rlif'", 7, 1, 3)


# --- random graphs (core_graphs.random_graphs) --------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=random_graphs(), granularity=st.sampled_from(["layer", "channel"]),
       method=st.sampled_from(["euler", "exact"]))
def test_random_graphs_emulate_bit_exactly(graph, granularity, method):
    _, emulated, reference = emulate_and_reference(graph, granularity=granularity,
                                                   discretisation=method)
    assert compare_runs(emulated, reference) == []


@pytest.mark.slow
def test_a_million_synapse_cnn_emulates_bit_exactly_on_many_cores():
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from bench_compile import TARGET, cnn

    graph = cnn(8, 28)
    with tempfile.TemporaryDirectory() as tmp:
        result = compile(graph, str(TARGET), Path(tmp) / "b", calibration_steps=5,
                         partition_method="sequential")
        chip = Chip.load(Path(tmp) / "b")
        x = {"in": spikes((8, 28, 28), steps=8, batch=2)}
        emulated = chip.run(x, batch=True, record=True)
    assert result.network.synapse_count > 800_000 and result.placement.cores_used > 10
    reference = intref.run(result.network, x, batch=True, record=True)
    assert compare_runs(emulated, reference) == []
    assert emulated.spikes["l2"].any()


def test_recorded_states_come_in_population_order_as_in_the_integer_reference():
    # `nirc emulate --record` writes them in this order: it must not depend on string hashing.
    result, emulated, reference = emulate_and_reference(mlp(readout=True))
    assert list(emulated.states) == list(result.network.populations) == list(reference.states)
