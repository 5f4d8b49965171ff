"""The convention record, detection from parameter patterns, and the simulator's rules.

Patterns are built here as each exporter writes them (nirc/provenance.py cites the
exporters); tests/test_frameworks.py checks the same against the frameworks themselves.
"""

from __future__ import annotations

import numpy as np
import pytest

from nirc.convention import Convention, detect, resolve, with_options
from nirc.errors import NircError
from nirc.ir.nodes import IF, LI, LIF, Affine, CubaLIF, Input, Linear, NIRGraph, Output, SumPool2d
from nirc.simulate import simulate


def chain(*middle, n_in=3):
    nodes = {"input": Input(shape=np.array([n_in]))}
    edges, prev = [], "input"
    for i, node in enumerate(middle):
        nodes[str(i)] = node
        edges.append((prev, str(i)))
        prev = str(i)
    nodes["output"] = Output(shape=None)
    edges.append((prev, "output"))
    return NIRGraph(nodes=nodes, edges=tuple(edges))


def affine(n_out, n_in, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return Affine(weight=rng.normal(size=(n_out, n_in)) * scale, bias=np.zeros(n_out))


def lif(tau, r, n=4, threshold=1.0):
    tau = np.full(n, tau, dtype=np.float32)
    return LIF(tau=tau, r=np.full(n, r, dtype=np.float32) if np.isscalar(r) else r,
               v_leak=np.zeros(n), v_threshold=np.full(n, threshold), v_reset=np.zeros(n))


def snntorch_lif(beta, n=4):
    tau = np.float32(1e-4) / (1 - np.full(n, beta, dtype=np.float32))
    return LIF(tau=tau, r=tau / np.float32(1e-4), v_leak=np.zeros(n),
               v_threshold=np.ones(n), v_reset=np.zeros(n))


def rockpool_cuba(tau_mem, tau_syn, dt, n=4):
    tm, ts = np.full(n, tau_mem), np.full(n, tau_syn)
    return CubaLIF(tau_mem=tm, tau_syn=ts, r=(tm * np.exp(-dt / tm) / dt).astype(np.float32),
                   v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n),
                   w_in=np.ones(n))


# --- the record ---------------------------------------------------------------------------


def test_record_is_frozen_and_validates_its_fields():
    c = Convention()
    with pytest.raises(Exception):
        c.dt = 2.0   # frozen
    with pytest.raises(NircError, match="reset must be one of zero, subtract"):
        Convention(reset="reset")
    with pytest.raises(NircError, match="dt must be a positive"):
        Convention(dt=0)


def test_options_override_the_detected_rules_and_say_so():
    c = detect(chain(affine(4, 3), snntorch_lif(0.9)))
    assert (c.exporter, c.reset, c.reset_delay) == ("snntorch", "subtract", True)
    d = with_options(c, reset="zero", spikes="multi", v_min=-1.0, dt=2e-4)
    assert (d.reset, d.reset_delay, d.spikes, d.max_spikes, d.v_min, d.dt) == \
        ("zero", True, "multi", None, -1.0, 2e-4)
    assert {d.source(k) for k in ("reset", "spikes", "v_min", "dt")} == {"option"}
    assert d.source("threshold_test") == "detection"
    doc = d.to_dict()
    assert doc["sources"]["reset"] == "option" and doc["evidence"]


# --- detection ---------------------------------------------------------------------------


def test_snntorch_pattern_names_the_evidence():
    c = detect(chain(affine(4, 3), snntorch_lif(0.9), affine(2, 4), snntorch_lif(0.8, 2)))
    assert c.exporter == "snntorch" and c.dt == 1e-4
    assert "r = tau/1e-4 on 2 of 2 neuron nodes" in c.evidence[0]
    assert c.describe().startswith("looks like an snnTorch 1.0 export; assuming dt = 0.0001 s")


def test_norse_and_sinabs_are_told_apart_by_the_scale_of_tau():
    norse = detect(chain(affine(4, 3), lif(1e-5, 1.0)))
    sinabs = detect(chain(affine(4, 3), lif(10.0, 1.0)))
    assert (norse.exporter, norse.dt) == ("norse", 1e-6)
    assert (sinabs.exporter, sinabs.dt, sinabs.spikes, sinabs.threshold_test) == \
        ("sinabs", 1.0, "multi", ">=")


def test_if_only_file_is_ambiguous_between_norse_and_sinabs_and_says_how_to_settle_it():
    n = 4
    c = detect(chain(affine(n, 3), IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n))))
    assert c.exporter == "sinabs" and set(c.candidates) == {"sinabs", "norse"}
    assert any("--from sinabs or --from norse settles it" in e for e in c.evidence)
    assert resolve(chain(affine(n, 3), IF(r=np.ones(n), v_threshold=np.ones(n))),
                   exporter="norse").exporter == "norse"


def test_rockpool_dt_is_read_back_from_r():
    c = detect(chain(Linear(weight=np.ones((4, 3))), rockpool_cuba(0.02, 0.01, 1e-3)))
    assert c.exporter == "rockpool" and c.dt == pytest.approx(1e-3, rel=1e-9)
    assert c.source("dt") == "detection"
    c = detect(chain(Linear(weight=np.ones((4, 3))), rockpool_cuba(0.05, 0.002, 5e-4)))
    assert c.dt == pytest.approx(5e-4, rel=1e-9)


def test_hand_written_file_without_metadata_is_unknown_with_the_reason():
    c = detect(chain(affine(4, 3), lif(0.02, 3.0)))
    assert c.exporter == "unknown" and c.is_nir
    assert "no exporter's pattern fits" in c.evidence[0]
    assert c.source("dt") == "default"


def test_metadata_dt_means_nir_semantics_from_the_file():
    g = chain(affine(4, 3), snntorch_lif(0.9))
    g = NIRGraph(nodes=g.nodes, edges=g.edges, metadata={"dt": 1e-4, "reset": "subtract"})
    c = detect(g)
    assert (c.exporter, c.dt, c.reset, c.reset_delay) == ("nir", 1e-4, "subtract", False)
    assert c.source("dt") == "file" and c.source("reset") == "file"


def test_a_node_type_the_exporter_never_writes_rules_it_out():
    g = chain(affine(4, 3), snntorch_lif(0.9))
    nodes = dict(g.nodes)
    assert detect(g).exporter == "snntorch"
    nodes["0"] = Linear(weight=np.ones((4, 3)))
    assert detect(NIRGraph(nodes=nodes, edges=g.edges)).exporter == "snntorch"
    assert SumPool2d  # (Sinabs-only node type; used in test_frameworks)


# --- the simulator's rules ----------------------------------------------------------------


def one_neuron(node):
    return NIRGraph(nodes={"input": Input(shape=np.array([1])), "n": node,
                           "output": Output(shape=np.array([1]))},
                    edges=(("input", "n"), ("n", "output")))


def test_delayed_subtract_reset_is_snntorchs_recurrence():
    g = one_neuron(snntorch_lif(0.9, n=1))
    x = np.full((30, 1), 0.4)
    c = detect(g)
    out = simulate(g, {"input": x}, convention=c).outputs["output"][:, 0]
    v, z, expected = 0.0, 0.0, []
    for xt in x[:, 0]:
        v = 0.9 * v + xt - z * 1.0
        z = float(v > 1.0)
        expected.append(z)
    np.testing.assert_array_equal(out, expected)


def test_multi_spike_subtract_counts_and_floor():
    g = one_neuron(IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1)))
    x = np.array([[2.5], [0.0], [-5.0], [1.0]])
    c = with_options(resolve(g, exporter="sinabs"), v_min=-1.0)
    res = simulate(g, {"input": x}, convention=c, record=True)
    np.testing.assert_array_equal(res.outputs["output"][:, 0], [2, 0, 0, 0])
    # v: 2.5 -> 0.5 after two spikes; 0.5; -4.5 floored to -1; 0 (not >= 1).
    np.testing.assert_allclose(res.states["n"]["v"][:, 0], [0.5, 0.5, -1.0, 0.0])
    # The spike record holds the count (what a multi-spike chip is compared with), not a flag.
    np.testing.assert_array_equal(res.spikes["n"][:, 0], [2, 0, 0, 0])
    assert simulate(g, {"input": x}).spikes["n"].dtype == bool     # one spike per step: flags


def test_runaway_multi_spike_counts_saturate_instead_of_wrapping():
    # A count past int32 (a deep chain with gain > 1 reaches 1e80) must not wrap negative:
    # rates computed from it would be refused downstream.
    g = one_neuron(IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1)))
    x = np.array([[1e12], [1e300], [3.0]])
    res = simulate(g, {"input": x}, convention=resolve(g, exporter="sinabs"))
    top = np.iinfo(np.int32).max
    assert res.spikes["n"][:, 0].tolist()[:2] == [top, top]
    assert (res.spikes["n"] >= 0).all()


def test_euler_overshoot_warning_says_which_dt_avoids_it():
    from nirc.errors import NircWarning

    g = one_neuron(snntorch_lif(0.5, n=1))        # tau = 2e-4 s
    with pytest.warns(NircWarning, match=r"--dt 0\.0002 or less avoids it"):
        simulate(g, {"input": np.ones((3, 1))}, dt=1e-3)
