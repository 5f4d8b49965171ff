"""`nirc simulate` on a framework's export reproduces that framework's forward pass.

Every network here is built and exported by the framework itself (tests/framework_nets.py),
read back by nirc, its convention detected from the file alone, and simulated with the
options a user states only for settings the file cannot carry (a non-default reset, spike
rule or membrane floor). Spikes (and multi-spike counts) must agree exactly, membranes of
non-spiking readouts to float32 rounding, over 200+ steps of input strong enough that the
neurons fire repeatedly (reset rules only matter then).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nirc.convention import resolve
from nirc.nirio import read
from nirc.simulate import simulate

pytestmark = [pytest.mark.frameworks,
              pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")]

try:
    import nir  # noqa: F401

    import framework_nets as fn
except ImportError as _error:    # torch or an exporter missing
    MISSING: ImportError | None = _error
else:
    MISSING = None

STEPS = 200


@pytest.fixture(autouse=True, scope="module")
def _frameworks_installed(missing_oracle):
    if MISSING is not None:
        missing_oracle(f"an exporting framework is not installed: {MISSING}")


def nirc_run(tmp_path, export, x):
    """What `nirc simulate FILE --input IN.npz [--reset/--spikes/--v-min]` computes."""
    path = tmp_path / f"{export.name}.nir"
    nir.write(path, export.graph)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # exporter quirks are nirio's tests' business
        graph = read(path)
    convention = resolve(graph, **export.options)
    out = simulate(graph, {"input": x}, convention=convention, record=True)
    return convention, out


def check(tmp_path, export, rate=0.3, scale=1.0, seed=1, min_spikes=20):
    x = fn.spike_input(STEPS, export.input_shape, rate=rate, seed=seed, scale=scale)
    expected = export.run(x)
    convention, result = nirc_run(tmp_path, export, x)
    assert convention.exporter == export.framework, convention.evidence
    got = result.outputs["output"].reshape(expected.shape)
    if export.readout == "membrane":
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        hidden = [s for s in result.spikes.values()]
        assert sum(int(s.sum()) for s in hidden) >= min_spikes
    else:
        assert expected.sum() >= min_spikes, "the framework's network barely fires"
        np.testing.assert_array_equal(got, expected)
    return convention, result, expected


SNNTORCH = [
    dict(kind="leaky"), dict(kind="leaky", reset="zero"),
    dict(kind="leaky", reset_delay=False), dict(kind="leaky", reset="zero", reset_delay=False),
    dict(kind="synaptic"), dict(kind="synaptic", reset="zero"),
    dict(kind="rleaky", gain=4.0), dict(kind="rleaky", reset="zero", gain=5.0),
    dict(kind="rsynaptic"), dict(kind="rsynaptic", reset="zero"),
    dict(kind="leaky", arch="cnn"), dict(kind="synaptic", arch="cnn", reset="zero"),
]


@pytest.mark.parametrize("settings", SNNTORCH, ids=lambda s: "-".join(map(str, s.values())))
def test_snntorch_exports_simulate_as_snntorch_runs_them(tmp_path, settings):
    export = fn.snntorch_export(**settings)
    convention, _, _ = check(tmp_path, export, min_spikes=10)
    assert convention.dt == 1e-4 and convention.source("dt") == "detection"


NORSE = [dict(kind="lifbox"), dict(kind="lif"), dict(kind="iaf"),
         dict(kind="lifbox", readout="li"), dict(kind="lif", arch="cnn")]


@pytest.mark.parametrize("settings", NORSE, ids=lambda s: "-".join(map(str, s.values())))
def test_norse_exports_simulate_as_norse_runs_them(tmp_path, settings):
    convention, _, _ = check(tmp_path, fn.norse_export(**settings))
    assert convention.dt == pytest.approx(1e-6)


SINABS = [
    dict(kind="iaf"), dict(kind="iaf", spikes="single"), dict(kind="iaf", reset="zero"),
    dict(kind="iaf", spikes="single", reset="zero"), dict(kind="iaf", v_min=-0.5),
    dict(kind="lif"), dict(kind="lif", spikes="single", reset="zero", v_min=-1.0),
    dict(kind="iaf", readout="expleak"), dict(kind="iaf", arch="cnn"),
    dict(kind="lif", arch="cnn", spikes="single"),
    dict(kind="lif", norm_input=False),
]


@pytest.mark.parametrize("settings", SINABS, ids=lambda s: "-".join(map(str, s.values())))
def test_sinabs_exports_simulate_as_sinabs_runs_them(tmp_path, settings):
    convention, _, expected = check(tmp_path, fn.sinabs_export(**settings))
    if settings.get("spikes", "multi") == "multi" and settings.get("readout") != "expleak":
        assert convention.spikes == "multi"


ROCKPOOL = [dict(kind="lif"), dict(kind="neuron", gain=3.0), dict(kind="expsyn"),
            dict(kind="lif", dt=5e-4), dict(kind="lif", max_spikes=2)]


@pytest.mark.parametrize("settings", ROCKPOOL, ids=lambda s: "-".join(map(str, s.values())))
def test_rockpool_exports_simulate_as_rockpool_runs_them(tmp_path, settings):
    export = fn.rockpool_export(**settings)
    if "max_spikes" in settings:
        export.options["max_spikes"] = settings["max_spikes"]
    convention, _, expected = check(tmp_path, export)
    assert convention.dt == pytest.approx(settings.get("dt", 1e-3))
    if export.readout == "spikes" and "max_spikes" not in settings:
        assert expected.max() > 1     # several spikes in one step: counts, not 0/1


def test_without_the_convention_nir_semantics_disagree_with_the_framework(tmp_path):
    """The detection matters: read as NIR says, the same files do not reproduce the framework."""
    for export in (fn.snntorch_export("leaky"), fn.sinabs_export("iaf"),
                   fn.norse_export("lifbox")):
        x = fn.spike_input(STEPS, export.input_shape, rate=0.3, seed=1)
        path = tmp_path / f"{export.name}.nir"
        nir.write(path, export.graph)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = read(path)
            plain = simulate(graph, {"input": x}).outputs["output"]
        assert not np.array_equal(plain.reshape(-1), export.run(x).reshape(-1)), export.name


SWEEP = ([(fn.snntorch_export, dict(kind=k, reset=r)) for k in ("leaky", "synaptic", "rleaky",
                                                                "rsynaptic")
          for r in ("subtract", "zero")] if MISSING is None else []) + \
    ([(fn.norse_export, dict(kind=k)) for k in ("lifbox", "lif", "iaf")] +
     [(fn.sinabs_export, dict(kind=k, spikes=s, reset=r)) for k in ("iaf", "lif")
      for s in ("multi", "single") for r in ("subtract", "zero")] +
     [(fn.rockpool_export, dict(kind=k)) for k in ("lif", "neuron", "expsyn")]
     if MISSING is None else [])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [5, 6, 7])
@pytest.mark.parametrize("build,settings", SWEEP,
                         ids=lambda v: "-".join(map(str, v.values())) if isinstance(v, dict)
                         else getattr(v, "__name__", str(v)))
def test_longer_sweep_over_seeds_and_sizes(tmp_path, build, settings, seed):
    """Larger networks, 600 steps, three seeds: still spike for spike."""
    export = build(seed=seed, n_in=24, hidden=48, n_out=6, **settings)
    x = fn.spike_input(600, export.input_shape, rate=0.3, seed=seed)
    expected = export.run(x)
    _, result = nirc_run(tmp_path, export, x)
    got = result.outputs["output"].reshape(expected.shape)
    if export.readout == "membrane":
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_array_equal(got, expected)


def test_a_real_snntorch_recurrent_export_compiles_for_xylo_with_no_options(tmp_path):
    from nirc.cli import main

    export = fn.snntorch_export("rleaky", n_in=16, hidden=32, n_out=4, gain=1.0)
    model = tmp_path / "snntorch_rnn.nir"
    nir.write(model, export.graph)
    assert main(["-q", "compile", str(model), "--target", "xylo", "-o", str(tmp_path / "b")]) == 0
