"""The emulator, reading only the emitted files, agrees bit for bit with the integer reference
running the hardware network before placement: every spike, every u and v, every step."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core_graphs import a, cnn, mlp, recurrent, skip_and_delay, spikes
from nirc import intref
from nirc.driver import compile
from nirc.emulator import Chip
from nirc.ir.nodes import IF, LI, LIF, Affine, CubaLI, CubaLIF, Input, Linear, NIRGraph, Output
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


# --- random graphs -----------------------------------------------------------------------

NEURONS = ["LIF", "CubaLIF", "IF"]


@st.composite
def random_graphs(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 7)) for _ in range(n_layers + 1)]
    kinds = [draw(st.sampled_from(NEURONS)) for _ in range(n_layers)]
    readout = draw(st.booleans())
    recurrent_at = draw(st.one_of(st.none(), st.integers(0, n_layers - 1)))
    nodes = {"in": Input(shape=np.array([sizes[0]]))}
    edges = []
    prev = "in"
    for k in range(n_layers):
        n, m = sizes[k + 1], sizes[k]
        w = rng.normal(0, 2.0, (n, m)) * (rng.random((n, m)) < 0.8)
        nodes[f"w{k}"] = Affine(weight=w, bias=rng.normal(0, 0.2, n)) if rng.random() < 0.5 \
            else Linear(weight=w)
        thr = rng.uniform(0.2, 1.0, n)
        reset = rng.uniform(-0.2, 0.1, n) * (rng.random() < 0.5)
        tau = rng.uniform(0.002, 0.02, n)
        kind = kinds[k]
        if kind == "LIF":
            node = LIF(tau=tau, r=a(rng.uniform(0.5, 2)), v_leak=a(rng.uniform(-0.1, 0.1)),
                       v_threshold=thr, v_reset=reset)
        elif kind == "CubaLIF":
            node = CubaLIF(tau_syn=rng.uniform(0.002, 0.01, n), tau_mem=tau, r=a(1.0),
                           v_leak=a(0.0), v_threshold=thr, v_reset=reset,
                           w_in=a(rng.uniform(0.5, 2)))
        else:
            node = IF(r=a(rng.uniform(50, 300)), v_threshold=thr, v_reset=reset)
        nodes[f"n{k}"] = node
        edges += [(prev, f"w{k}"), (f"w{k}", f"n{k}")]
        if recurrent_at == k:
            nodes[f"rec{k}"] = Linear(weight=rng.normal(0, 0.8, (n, n)))
            edges += [(f"n{k}", f"rec{k}"), (f"rec{k}", f"n{k}")]
        prev = f"n{k}"
    last = prev
    if readout:
        n = draw(st.integers(1, 4))
        nodes["wr"] = Linear(weight=rng.normal(0, 1.0, (n, sizes[-1])))
        nodes["ro"] = LI(tau=a(0.01), r=a(1.0), v_leak=a(0.0)) if rng.random() < 0.5 else \
            CubaLI(tau_syn=a(0.005), tau_mem=a(0.01), r=a(1.0), v_leak=a(0.0), w_in=a(1.0))
        edges += [(prev, "wr"), ("wr", "ro")]
        last, sizes = "ro", sizes + [n]
    nodes["out"] = Output(shape=np.array([sizes[-1]]))
    edges.append((last, "out"))
    return NIRGraph(nodes=nodes, edges=tuple(edges))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=random_graphs(), granularity=st.sampled_from(["layer", "channel"]),
       method=st.sampled_from(["euler", "exact"]))
def test_random_graphs_emulate_bit_exactly(graph, granularity, method):
    _, emulated, reference = emulate_and_reference(graph, granularity=granularity,
                                                   discretisation=method)
    assert compare_runs(emulated, reference) == []
