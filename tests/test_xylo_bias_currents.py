"""Constant input currents on Xylo (nirc.targets.xylo.bias): an always-on hidden neuron.

A Linear bias before a current-based neuron is a current added every step; Xylo's own
bias adds to v. The Xylo lowering carries such currents as synapses from one hidden
neuron that fires once per step, which in the float model changes nothing and on the
chip is an ordinary neuron xylosim runs like any other.
"""

import warnings
from pathlib import Path

import numpy as np
import pytest

from nirc import intref
from nirc.driver import compile as compile_model
from nirc.targets.xylo import backend
from nirc.targets.xylo.bias import current_biased, is_bias_source, with_bias_source
from nirc.targets.xylo.config import read_config

HERE = Path(__file__).resolve().parent
RSYNAPTIC = HERE / "fidelity" / "rsynaptic.nir"
RSYNAPTIC_DATA = HERE / "fidelity" / "rsynaptic_data.npz"


def compiled(out_dir=None, target="xylo"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile_model(RSYNAPTIC, target, out_dir, convention={"exporter": "auto"},
                             calibration_steps=0)


@pytest.fixture(scope="module")
def build():
    result = compiled()
    return result.report, result


def test_moving_the_currents_onto_an_always_on_neuron_leaves_the_float_model_unchanged():
    from nirc.driver import run_passes
    from nirc.passes.context import PassContext
    from nirc.neuron_models import get_model
    from nirc.nirio import read

    graph = read(RSYNAPTIC)
    ctx = PassContext(model=get_model("float"), dt=1e-4)
    net = run_passes(graph, ["normalize", "discretize", "fuse", "unroll"], ctx)
    assert current_biased(net) == ["1.lif", "3"]
    moved = with_bias_source(net)
    (source,) = [p for p in moved.populations.values() if is_bias_source(p)]
    assert list(moved.populations)[-1] == source.name and source.size == 1
    assert all(not np.any(moved.populations[n].params["i_bias"]) for n in ("1.lif", "3"))
    x = {"input": np.load(RSYNAPTIC_DATA)["input"][:, :8].astype(float)}
    before, after = intref.run(net, x, batch=True), intref.run(moved, x, batch=True)
    np.testing.assert_array_equal(after.spikes[source.name], 1)      # fires in every step
    for name in net.populations:
        np.testing.assert_allclose(after.spikes[name], before.spikes[name])
    assert with_bias_source(moved) is moved                            # nothing left to move


def test_the_always_on_neuron_fires_once_per_step_on_the_chip_and_the_report_says_why(build):
    report, result = build
    net = result.network
    assert "always_on" in net.populations
    assert any("always-on hidden neuron" in note for note in report["pass_reports"]["quantize"]["notes"])
    run = intref.run(net, {"input": np.zeros((30, 12))}, record=True)
    np.testing.assert_array_equal(run.spikes["always_on"], 1)
    # Hidden neurons receive the current from the second step: their lag is unchanged.
    assert report["pass_reports"]["latency_steps"]["1.lif"] == 0


def test_xylosim_runs_a_build_with_bias_currents_like_nirc_emulate(tmp_path, xylosim_v2):
    from nirc.targets.xylo.xylosim_bridge import run_xylosim

    compiled(tmp_path / "build")
    spec, manifest = read_config(tmp_path / "build")
    x = np.load(RSYNAPTIC_DATA)["input"][:, 0].astype(float)
    ours = backend.emulate(tmp_path / "build", {"input": x}, record=True)
    counts = x.astype(np.int64)
    theirs = run_xylosim(spec, counts)
    np.testing.assert_array_equal(ours.outputs["output"], theirs.spikes_out[0])
    start = 0
    for p in manifest["hidden"]:
        a, b = p["neurons"]
        np.testing.assert_array_equal(ours.spikes[p["name"]].reshape(len(x), -1), theirs.spikes[0][:, a:b])
        np.testing.assert_array_equal(ours.states[p["name"]]["v_mem"].reshape(len(x), -1),
                                      theirs.v_mem[0][:, a:b])
        start = b
    assert start == spec.n_hidden and ours.spikes["always_on"].sum() == len(x)
