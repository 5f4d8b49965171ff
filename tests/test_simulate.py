"""The float reference simulator against analytic solutions and hand-written recurrences.

Each neuron test states the closed form it checks; the operator tests compare
with direct loops over output positions. Conventions: docs/semantics.md.
"""

import warnings

import numpy as np
import pytest

from nirc.errors import ModelError, NircError, NircWarning
from nirc.ir.nodes import (CubaLI, CubaLIF, I, IF, LI, LIF, AvgPool2d, Conv1d, Conv2d, Delay,
                           Flatten, Input, Linear, NIRGraph, Output, Scale, SumPool2d, Threshold,
                           Affine)
from nirc.simulate import DEFAULT_DT, simulate


def chain(*named, shape, out_shape=None):
    """Input -> nodes in order -> Output."""
    nodes = {"in": Input(np.array(shape))}
    nodes.update(named)
    last_shape = out_shape if out_shape is not None else shape
    nodes["out"] = Output(np.array(last_shape))
    names = list(nodes)
    return NIRGraph(nodes=nodes, edges=tuple(zip(names, names[1:])))


def arr(*v):
    return np.array(v, dtype=float)


# --- neuron dynamics --------------------------------------------------------------------


def test_li_exact_method_follows_the_analytic_step_response():
    tau, r, current, dt = 0.02, 2.0, 0.7, 1e-3
    g = chain(("li", LI(tau=arr(tau), r=arr(r), v_leak=arr(0.0))), shape=[1])
    out = simulate(g, {"in": np.full((200, 1), current)}, dt=dt, method="exact").outputs["out"]
    t = dt * np.arange(1, 201)
    np.testing.assert_allclose(out[:, 0], r * current * (1 - np.exp(-t / tau)), rtol=1e-12)


def test_li_euler_matches_the_closed_form_recurrence_and_relaxes_to_v_leak():
    tau, r, current, leak, dt = 0.01, 1.5, 0.4, -0.2, 1e-3
    g = chain(("li", LI(tau=arr(tau), r=arr(r), v_leak=arr(leak))), shape=[1])
    out = simulate(g, {"in": np.full((50, 1), current)}, dt=dt).outputs["out"][:, 0]
    a = 1 - dt / tau
    fixed = leak + r * current
    n = np.arange(1, 51)
    np.testing.assert_allclose(out, fixed * (1 - a ** n), rtol=1e-12)
    silent = simulate(g, {"in": np.zeros((2000, 1))}, dt=dt).outputs["out"][:, 0]
    assert silent[-1] == pytest.approx(leak, rel=1e-9)


def test_euler_converges_to_the_exact_solution_at_first_order_as_dt_shrinks():
    tau, horizon = 0.01, 0.02
    g = chain(("li", LI(tau=arr(tau), r=arr(1.0), v_leak=arr(0.0))), shape=[1])
    exact = 1 - np.exp(-horizon / tau)
    errors = []
    for steps in (20, 40, 80):
        out = simulate(g, {"in": np.ones((steps, 1))}, dt=horizon / steps).outputs["out"]
        errors.append(abs(out[-1, 0] - exact))
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(1.9 < r < 2.1 for r in ratios), ratios


def test_integrator_sums_r_dt_times_input():
    g = chain(("i", I(r=arr(3.0, 0.5))), shape=[2])
    x = np.arange(10, dtype=float).reshape(5, 2)
    out = simulate(g, {"in": x}, dt=0.1).outputs["out"]
    np.testing.assert_allclose(out, 0.1 * np.array([3.0, 0.5]) * np.cumsum(x, axis=0))


def test_if_spikes_only_strictly_above_threshold_and_resets_to_v_reset():
    # v climbs 1 per step (dt * r * x = 1); v = 3 equals the threshold and must not spike.
    g = chain(("if", IF(r=arr(1.0), v_threshold=arr(3.0), v_reset=arr(-1.0))), shape=[1])
    res = simulate(g, {"in": np.ones((12, 1))}, dt=1.0, record=True)
    spikes = res.spikes["if"][:, 0]
    # v: 1, 2, 3, 4 > 3 spikes -> -1, then 0, 1, 2, 3, 4 spikes -> -1, ...: spikes at 3 and 8.
    assert np.flatnonzero(spikes).tolist() == [3, 8]
    np.testing.assert_array_equal(res.states["if"]["v"][:, 0],
                                  [1, 2, 3, -1, 0, 1, 2, 3, -1, 0, 1, 2])
    np.testing.assert_array_equal(res.outputs["out"][:, 0], spikes.astype(float))


def test_lif_constant_input_fires_with_the_period_of_the_euler_recurrence():
    tau, dt, current, th = 0.01, 1e-3, 2.0, 1.0
    g = chain(("lif", LIF(tau=arr(tau), r=arr(1.0), v_leak=arr(0.0), v_threshold=arr(th),
                          v_reset=arr(0.0))), shape=[1])
    spikes = simulate(g, {"in": np.full((60, 1), current)}, dt=dt).spikes["lif"][:, 0]
    # From v = 0: v_n = current (1 - a^n); first n with v_n > th, then the same again.
    a = 1 - dt / tau
    period = int(np.ceil(np.log(1 - th / current) / np.log(a) + 1e-12))
    assert current * (1 - a ** period) > th >= current * (1 - a ** (period - 1))
    expected = np.arange(period - 1, 60, period)
    assert np.flatnonzero(spikes).tolist() == expected.tolist()


def cuba_graph(tau_syn, tau_mem, w_in=1.0, r=1.0, spiking=False):
    params = dict(tau_syn=arr(tau_syn), tau_mem=arr(tau_mem), r=arr(r), v_leak=arr(0.0),
                  w_in=arr(w_in))
    node = CubaLIF(**params, v_threshold=arr(1e9), v_reset=arr(0.0)) if spiking \
        else CubaLI(**params)
    return chain(("cuba", node), shape=[1])


@pytest.mark.parametrize("tau_syn,tau_mem", [(0.005, 0.02), (0.03, 0.01), (0.01, 0.01)])
def test_cuba_li_exact_method_follows_the_analytic_step_response(tau_syn, tau_mem):
    dt, s, w_in, r = 1e-3, 0.8, 1.5, 2.0
    g = cuba_graph(tau_syn, tau_mem, w_in, r)
    res = simulate(g, {"in": np.full((100, 1), s)}, dt=dt, method="exact", record=True)
    t = dt * np.arange(1, 101)
    if tau_syn == tau_mem:
        shape = 1 - np.exp(-t / tau_mem) * (1 + t / tau_mem)
    else:
        shape = 1 - (tau_syn * np.exp(-t / tau_syn) - tau_mem * np.exp(-t / tau_mem)) \
            / (tau_syn - tau_mem)
    np.testing.assert_allclose(res.outputs["out"][:, 0], r * w_in * s * shape, rtol=1e-10)
    np.testing.assert_allclose(res.states["cuba"]["i"][:, 0],
                               w_in * s * (1 - np.exp(-t / tau_syn)), rtol=1e-12)


def test_cuba_exact_is_continuous_as_tau_syn_approaches_tau_mem():
    x = {"in": np.full((30, 1), 1.0)}
    equal = simulate(cuba_graph(0.01, 0.01), x, dt=1e-3, method="exact").outputs["out"]
    near = simulate(cuba_graph(0.01 * (1 + 1e-9), 0.01), x, dt=1e-3,
                    method="exact").outputs["out"]
    np.testing.assert_allclose(near, equal, rtol=1e-7)


def test_cuba_lif_euler_updates_the_current_first_and_the_membrane_from_the_new_current():
    dt, ts, tm, w_in, r = 1e-3, 0.004, 0.01, 2.0, 3.0
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 1))
    res = simulate(cuba_graph(ts, tm, w_in, r, spiking=True), {"in": x}, dt=dt, record=True)
    alpha, beta = 1 - dt / ts, 1 - dt / tm
    i = v = 0.0
    vs, cs = [], []
    for xt in x[:, 0]:
        i = alpha * i + (dt / ts) * w_in * xt
        v = beta * v + (dt / tm) * r * i
        cs.append(i)
        vs.append(v)
    np.testing.assert_allclose(res.states["cuba"]["i"][:, 0], cs, rtol=1e-12)
    np.testing.assert_allclose(res.states["cuba"]["v"][:, 0], vs, rtol=1e-12)


def test_cuba_lif_resets_only_the_membrane():
    node = CubaLIF(tau_syn=arr(0.002), tau_mem=arr(0.002), r=arr(1.0), v_leak=arr(0.0),
                   v_threshold=arr(0.5), v_reset=arr(0.1), w_in=arr(1.0))
    res = simulate(chain(("c", node), shape=[1]), {"in": np.full((6, 1), 4.0)}, dt=1e-3,
                   record=True)
    # i: 2, 3, 3.5, ...; v: 1 -> spike -> 0.1; then 0.05 + 1.5 = 1.55 -> spike ...
    np.testing.assert_allclose(res.states["c"]["i"][:3, 0], [2.0, 3.0, 3.5])
    np.testing.assert_allclose(res.states["c"]["v"][:3, 0], [0.1, 0.1, 0.1])
    assert res.spikes["c"][:, 0].all()


def test_euler_warns_when_dt_exceeds_a_time_constant():
    g = chain(("li", LI(tau=arr(1e-4), r=arr(1.0), v_leak=arr(0.0))), shape=[1])
    with pytest.warns(NircWarning, match="node 'li', parameter 'tau'.*exceeds"):
        simulate(g, {"in": np.ones((2, 1))}, dt=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulate(g, {"in": np.ones((2, 1))}, dt=1e-3, method="exact")


def test_threshold_node_is_a_strict_heaviside():
    g = chain(("th", Threshold(threshold=arr(0.5, 1.0))), shape=[2])
    res = simulate(g, {"in": np.array([[0.5, 1.0], [0.6, 1.1]])}, dt=1e-3)
    np.testing.assert_array_equal(res.outputs["out"], [[0, 0], [1, 1]])
    np.testing.assert_array_equal(res.spikes["th"], [[False, False], [True, True]])


# --- graph structure --------------------------------------------------------------------


def test_recurrent_edge_carries_the_previous_steps_spikes():
    rng = np.random.default_rng(2)
    n, steps, dt = 5, 30, 1e-3
    w_in, w_rec = rng.normal(size=(n, 3)) * 2, rng.normal(size=(n, n))
    lif = LIF(tau=np.full(n, 0.005), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
              v_reset=np.zeros(n))
    g = NIRGraph(nodes={"in": Input(np.array([3])), "fc": Linear(w_in), "lif": lif,
                        "rec": Linear(w_rec), "out": Output(np.array([n]))},
                 edges=(("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"),
                        ("lif", "out")))
    x = (rng.random((steps, 3)) < 0.5).astype(float)
    res = simulate(g, {"in": x}, dt=dt)
    v, z = np.zeros(n), np.zeros(n)
    expected = []
    for xt in x:
        v = v + dt / 0.005 * (-v + w_in @ xt + w_rec @ z)
        z = (v > 1).astype(float)
        v = np.where(z > 0, 0.0, v)
        expected.append(z)
    np.testing.assert_array_equal(res.outputs["out"], expected)
    assert 0 < res.spikes["lif"].sum() < steps * n


def test_before_step_0_a_recurrent_affine_holds_its_value_at_zero_input_its_bias():
    g = NIRGraph(nodes={"in": Input(np.array([1])), "li": I(r=arr(1.0)),
                        "rec": Affine(np.array([[0.0]]), np.array([0.25])),
                        "out": Output(np.array([1]))},
                 edges=(("in", "li"), ("li", "rec"), ("rec", "li"), ("li", "out")))
    out = simulate(g, {"in": np.zeros((3, 1))}, dt=1.0).outputs["out"][:, 0]
    np.testing.assert_array_equal(out, [0.25, 0.5, 0.75])


def test_fan_in_sums_every_incoming_edge_and_fan_out_copies():
    g = NIRGraph(nodes={"a": Input(np.array([2])), "b": Input(np.array([3])),
                        "wa": Linear(np.array([[1.0, 2.0]])),
                        "wb": Affine(np.array([[1.0, 1.0, 1.0]]), np.array([0.5])),
                        "sum": Scale(arr(1.0)),
                        "o1": Output(np.array([1])), "o2": Output(np.array([1]))},
                 edges=(("a", "wa"), ("b", "wb"), ("wa", "sum"), ("wb", "sum"),
                        ("sum", "o1"), ("sum", "o2"), ("wa", "o2")))
    res = simulate(g, {"a": np.array([[1.0, 1.0]]), "b": np.array([[1.0, 2.0, 3.0]])}, dt=1.0)
    assert res.outputs["o1"].tolist() == [[3.0 + 6.5]]
    assert res.outputs["o2"].tolist() == [[9.5 + 3.0]]


def test_nested_graph_simulates_like_its_flattened_form():
    inner = NIRGraph(nodes={"input": Input(np.array([4])), "w": Linear(np.eye(4) * 2),
                            "lif": LIF(tau=np.full(4, 0.01), r=np.ones(4), v_leak=np.zeros(4),
                                       v_threshold=np.ones(4), v_reset=np.zeros(4)),
                            "output": Output(np.array([4]))},
                     edges=(("input", "w"), ("w", "lif"), ("lif", "output")))
    outer = NIRGraph(nodes={"in": Input(np.array([4])), "sub": inner, "out": Output(np.array([4]))},
                     edges=(("in", "sub"), ("sub", "out")))
    x = np.tile(arr(1, 5, 10, 20), (20, 1))
    res = simulate(outer, {"in": x}, dt=1e-3)
    flat = chain(("w", Linear(np.eye(4) * 2)), ("lif", inner.nodes["lif"]), shape=[4])
    np.testing.assert_array_equal(res.outputs["out"], simulate(flat, {"in": x}, dt=1e-3).outputs["out"])
    assert set(res.spikes) == {"sub.lif"}
    assert res.spikes["sub.lif"][:, 3].sum() > res.spikes["sub.lif"][:, 1].sum() > 0


def test_delay_shifts_by_the_rounded_number_of_steps_per_element():
    g = chain(("d", Delay(delay=arr(0.0, 2e-3, 3e-3))), shape=[3])
    x = np.zeros((6, 3))
    x[0] = 1.0
    out = simulate(g, {"in": x}, dt=1e-3).outputs["out"]
    assert [np.flatnonzero(out[:, k]).tolist() for k in range(3)] == [[0], [2], [3]]
    with pytest.warns(NircWarning, match="node 'd', parameter 'delay'.*rounded"):
        simulate(chain(("d", Delay(delay=arr(1.4e-3))), shape=[1]), {"in": x[:, :1]}, dt=1e-3)


def test_batch_axis_gives_the_same_result_as_separate_runs():
    rng = np.random.default_rng(3)
    g = chain(("w", Linear(rng.normal(size=(4, 6)))),
              ("lif", LIF(tau=np.full(4, 0.01), r=np.ones(4) * 10, v_leak=np.zeros(4),
                          v_threshold=np.ones(4), v_reset=np.zeros(4))), shape=[6],
              out_shape=[4])
    x = (rng.random((25, 3, 6)) < 0.3).astype(float)
    batched = simulate(g, {"in": x}, dt=1e-3, batch=True, record=True)
    for b in range(3):
        single = simulate(g, {"in": x[:, b]}, dt=1e-3, record=True)
        np.testing.assert_array_equal(batched.outputs["out"][:, b], single.outputs["out"])
        # BLAS may sum a batch of rows in another order than one row: equal to rounding.
        np.testing.assert_allclose(batched.states["lif"]["v"][:, b], single.states["lif"]["v"],
                                   rtol=1e-12, atol=1e-12)


# --- stateless operators ---------------------------------------------------------------


def reference_conv2d(x, w, bias, stride, pad, dilation, groups):
    """Direct definition: out[o, y, x] = b[o] + sum_{c,i,j} w[o,c,i,j] xpad[g*C+c, sy+di, sx+dj]."""
    c_out, c_in_g, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), pad[0], pad[1]))
    ho = (xp.shape[1] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[2] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((c_out, ho, wo))
    per_group = c_out // groups
    for o in range(c_out):
        g = o // per_group
        for yy in range(ho):
            for xx in range(wo):
                acc = bias[o]
                for c in range(c_in_g):
                    for i in range(kh):
                        for j in range(kw):
                            acc += w[o, c, i, j] * xp[g * c_in_g + c, yy * stride[0] + i * dilation[0],
                                                      xx * stride[1] + j * dilation[1]]
                out[o, yy, xx] = acc
    return out


@pytest.mark.parametrize("stride,padding,dilation,groups", [
    (1, 0, 1, 1), ((2, 1), (1, 2), 1, 1), (1, "same", 2, 2), (3, 1, (1, 2), 4)])
def test_conv2d_matches_the_direct_definition(stride, padding, dilation, groups):
    rng = np.random.default_rng(4)
    node = Conv2d(weight=rng.normal(size=(4, 4 // groups, 3, 2)), stride=stride, padding=padding,
                  dilation=dilation, groups=groups, bias=rng.normal(size=4))
    x = rng.normal(size=(1, 4, 7, 8))
    out_shape = node.output_shape((4, 7, 8))
    res = simulate(chain(("conv", node), shape=[4, 7, 8], out_shape=list(out_shape)),
                   {"in": x}, dt=1.0).outputs["out"][0]
    pad = node.padding_lohi()
    expected = reference_conv2d(x[0], node.weight, node.bias, node.stride_t(), pad,
                                node.dilation_t(), groups)
    np.testing.assert_allclose(res, expected, rtol=1e-12, atol=1e-12)
    if padding == "same":
        assert res.shape[1:] == (7, 8)


def test_conv1d_matches_the_direct_definition():
    rng = np.random.default_rng(5)
    node = Conv1d(weight=rng.normal(size=(3, 2, 3)), stride=2, padding=1, dilation=1, groups=1,
                  bias=np.zeros(3))
    x = rng.normal(size=(1, 2, 9))
    res = simulate(chain(("conv", node), shape=[2, 9], out_shape=[3, 5]), {"in": x},
                   dt=1.0).outputs["out"][0]
    expected = reference_conv2d(x[0][:, None], node.weight[:, :, None], node.bias, (1, 2),
                                ((0, 0), (1, 1)), (1, 1), 1)[:, 0]
    np.testing.assert_allclose(res, expected, rtol=1e-12)


def test_sum_and_average_pooling_windows():
    x = np.arange(32, dtype=float).reshape(1, 2, 4, 4)
    s = SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]))
    a = AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([1, 1]))
    summed = simulate(chain(("p", s), shape=[2, 4, 4], out_shape=[2, 2, 2]), {"in": x},
                      dt=1.0).outputs["out"][0]
    np.testing.assert_array_equal(summed[0], [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7],
                                              [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]])
    averaged = simulate(chain(("p", a), shape=[2, 4, 4], out_shape=[2, 3, 3]), {"in": x},
                        dt=1.0).outputs["out"][0]
    # Padding counts as zeros in the window: the corner window holds x[0,0] and three zeros.
    assert averaged[0, 0, 0] == 0 / 4 and averaged[0, 0, 1] == (1 + 2) / 4
    assert averaged[1, 1, 1] == (16 + 5 + 16 + 6 + 16 + 9 + 16 + 10) / 4


def test_flatten_merges_in_c_order():
    x = np.arange(24, dtype=float).reshape(1, 2, 3, 4)
    res = simulate(chain(("f", Flatten(start_dim=0, end_dim=-1)), shape=[2, 3, 4],
                         out_shape=[24]), {"in": x}, dt=1.0).outputs["out"]
    np.testing.assert_array_equal(res[0], np.arange(24))
    partial = simulate(chain(("f", Flatten(start_dim=1, end_dim=2)), shape=[2, 3, 4],
                             out_shape=[2, 12]), {"in": x}, dt=1.0).outputs["out"]
    np.testing.assert_array_equal(partial[0], x[0].reshape(2, 12))


# --- dt and inputs ---------------------------------------------------------------------


def test_dt_comes_from_the_argument_then_the_file_metadata_then_the_default():
    i_node = I(r=arr(1.0))
    g = chain(("i", i_node), shape=[1])
    with_meta = NIRGraph(nodes=g.nodes, edges=g.edges, metadata={"dt": 0.25})
    one = {"in": np.ones((1, 1))}
    assert simulate(with_meta, one).outputs["out"][0, 0] == 0.25
    assert simulate(with_meta, one, dt=0.5).outputs["out"][0, 0] == 0.5
    assert simulate(g, one).outputs["out"][0, 0] == DEFAULT_DT
    with pytest.raises(ModelError, match="parameter 'dt'.*positive"):
        simulate(NIRGraph(nodes=g.nodes, edges=g.edges, metadata={"dt": -1.0}), one)


def test_input_of_the_wrong_shape_is_one_error_naming_the_input_and_the_expected_shape():
    g = chain(("s", Scale(arr(1.0, 1.0))), shape=[2])
    with pytest.raises(NircError) as err:
        simulate(g, {"in": np.zeros((5, 3))}, dt=1.0)
    assert str(err.value) == "node 'in': input 'in' has shape [5, 3], expected (T, 2)"
    with pytest.raises(NircError, match=r"missing input\(s\) \['in'\]"):
        simulate(g, {"x": np.zeros((5, 2))}, dt=1.0)
    with pytest.raises(NircError, match=r"expected \(T, B, 2\)"):
        simulate(g, {"in": np.zeros((5, 2))}, dt=1.0, batch=True)


def test_record_returns_every_neuron_state_and_spikes_are_always_returned():
    g = chain(("w", Linear(np.ones((2, 2)))),
              ("c", CubaLIF(tau_syn=np.full(2, 0.01), tau_mem=np.full(2, 0.01), r=np.ones(2),
                            v_leak=np.zeros(2), v_threshold=np.full(2, 0.1),
                            v_reset=np.zeros(2))),
              ("li", LI(tau=np.full(2, 0.01), r=np.ones(2), v_leak=np.zeros(2))), shape=[2])
    x = {"in": np.ones((4, 2))}
    plain = simulate(g, x, dt=1e-3)
    assert plain.states == {} and set(plain.spikes) == {"c"} and plain.spikes["c"].dtype == bool
    rec = simulate(g, x, dt=1e-3, record=True)
    assert {k: sorted(v) for k, v in rec.states.items()} == {"c": ["i", "v"], "li": ["v"]}
    np.testing.assert_array_equal(rec.states["li"]["v"], rec.outputs["out"])
    assert rec.states["c"]["v"].shape == (4, 2)
