"""nirc's simulator against the frameworks that export NIR, on the same input.

Each network is exported with the framework's own exporter, written with
``nir.write`` and read back with ``nirc.nirio.read``, then run in the framework
and in nirc. Where the framework's convention is NIR's, spikes agree exactly
and membranes to float32 rounding (the exporters round parameters to float32,
e.g. snnTorch writes r = 9.999997 for beta = 0.9). Where it is not, the test
pins down the difference (docs/semantics.md has the table):

- snnTorch writes tau = 1e-4/(1-beta), r = tau/1e-4: it is NIR Euler at dt = 1e-4.
  Its default reset subtracts the threshold one step late; NIR resets to v_reset.
- Norse writes tau = dt/tau_inv (= dt*tau): its own dynamics are NIR Euler at
  dt**2. LIFCell adds input to the current unscaled, NIR scales it by dt/tau_syn.
- Sinabs is discrete (dt = 1); IAF fires at v >= threshold (NIR: >), and by
  default emits several spikes per step and subtracts; its LIF (norm_input) is
  NIR's exact method at dt = 1, not Euler.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from nirc.nirio import read
from nirc.simulate import simulate

pytestmark = [pytest.mark.frameworks,
              # The exporters call nirtorch's older entry point; not ours to change.
              pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph:DeprecationWarning")]

try:
    import nir
    import norse.torch as norse
    import sinabs
    import sinabs.layers as sl
    import snntorch as snn
    import torch
    from norse.torch.utils.export_nir import to_nir as norse_to_nir
    from sinabs.activation import MembraneReset, SingleSpike
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir
except ImportError as _error:
    MISSING: ImportError | None = _error
else:
    MISSING = None


@pytest.fixture(autouse=True, scope="module")
def _frameworks_installed(missing_oracle):
    if MISSING is not None:
        missing_oracle(f"an exporting framework is not installed: {MISSING}")


def exported(tmp_path, graph, name="model.nir"):
    path = tmp_path / name
    nir.write(path, graph)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # exporter quirks are nirio's tests' business
        return read(path)


def spike_input(steps, *shape, rate=0.4, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return (rng.random((steps, *shape)) < rate).astype(np.float32) * scale


# --- snnTorch ---------------------------------------------------------------------------



def run_snntorch(net, x):
    """Step an init_hidden snnTorch Sequential (last layer output=True) over x (T, *shape)."""
    snn_utils.reset(net)
    spikes, mems = [], []
    with torch.no_grad():
        for xt in torch.from_numpy(x):
            out = net(xt[None])     # (spk, mem), or (spk, syn, mem) for Synaptic
            spk, mem = out[0], out[-1]
            spikes.append(spk[0].numpy())
            mems.append(mem[0].numpy())
    return np.array(spikes), np.array(mems)


def snntorch_net(neuron, n_in=12, n=6, seed=0):
    torch.manual_seed(seed)
    # Per-neuron beta/threshold tensors: scalar ones export 0-d parameters nir.NIRGraph rejects.
    return torch.nn.Sequential(torch.nn.Linear(n_in, n), neuron)


@pytest.mark.parametrize("kind", ["Leaky", "Synaptic"])
def test_snntorch_reset_to_zero_neurons_are_nir_euler_at_dt_1e_4(tmp_path, kind):
    n = 6
    common = dict(beta=torch.full((n,), 0.8), threshold=torch.full((n,), 0.5),
                  init_hidden=True, output=True, reset_mechanism="zero", reset_delay=False)
    neuron = snn.Leaky(**common) if kind == "Leaky" else \
        snn.Synaptic(alpha=torch.full((n,), 0.6), **common)
    net = snntorch_net(neuron)
    graph = exported(tmp_path, export_to_nir(net, torch.zeros(1, 12), ignore_dims=[0]))
    x = spike_input(60, 12)
    spikes, mems = run_snntorch(net, x)
    res = simulate(graph, {"input": x}, dt=1e-4, record=True)
    lif = next(name for name in res.spikes)
    assert spikes.sum() > 20
    np.testing.assert_array_equal(res.outputs["output"], spikes)
    np.testing.assert_allclose(res.states[lif]["v"], mems, rtol=1e-5, atol=1e-5)


def test_snntorch_default_subtract_reset_differs_after_the_first_spike(tmp_path):
    n = 6
    net = snntorch_net(snn.Leaky(beta=torch.full((n,), 0.9), threshold=torch.full((n,), 0.5),
                                 init_hidden=True, output=True))
    graph = exported(tmp_path, export_to_nir(net, torch.zeros(1, 12), ignore_dims=[0]))
    x = spike_input(80, 12, rate=0.6)
    spikes, mems = run_snntorch(net, x)
    nirc_spikes = simulate(graph, {"input": x}, dt=1e-4).outputs["output"]
    first = np.argmax(spikes.any(axis=1))
    # Identical up to the first spike; then snnTorch subtracts the threshold one step
    # later while NIR (and nirc) resets v to v_reset = 0 at once.
    np.testing.assert_array_equal(nirc_spikes[:first + 1], spikes[:first + 1])
    assert not np.array_equal(nirc_spikes, spikes)
    # snnTorch's own trace is the subtract-reset recurrence (checks the reading above).
    w, b = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    v, z, expected = np.zeros(n), np.zeros(n), []
    for xt in x:
        v = 0.9 * v + w @ xt + b - z * 0.5
        z = (v > 0.5).astype(float)
        expected.append(v)
    np.testing.assert_allclose(mems, expected, rtol=1e-5, atol=1e-5)


def test_snntorch_rleaky_recurrence_is_a_back_edge_carrying_the_previous_step(tmp_path):
    n = 8
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(5, n),
        snn.RLeaky(beta=torch.full((n,), 0.85), threshold=torch.full((n,), 0.4),
                   linear_features=n, init_hidden=True, output=True,
                   reset_mechanism="zero", reset_delay=False))
    with torch.no_grad():
        net[1].recurrent.weight.mul_(3.0)   # make the recurrence matter
    graph = exported(tmp_path, export_to_nir(net, torch.zeros(1, 5), ignore_dims=[0]))
    # nirtorch inlines RLeaky's subgraph as "1.lif" <-> "1.w_rec", a cycle.
    assert {("1.lif", "1.w_rec"), ("1.w_rec", "1.lif")} <= set(graph.edges)
    x = spike_input(60, 5, rate=0.3, seed=2)
    spikes, _ = run_snntorch(net, x)
    assert spikes.sum() > 20
    np.testing.assert_array_equal(simulate(graph, {"input": x}, dt=1e-4).outputs["output"],
                                  spikes)


# --- Norse ------------------------------------------------------------------------------


NORSE_DT = 1e-3


def run_norse(net, x):
    out, state = [], None
    with torch.no_grad():
        for xt in torch.from_numpy(x):
            z, state = net(xt, state)
            out.append(z.numpy())
    return np.array(out)


def norse_net(cell):
    torch.manual_seed(3)
    return norse.SequentialState(torch.nn.Linear(6, 4), cell)


def test_norse_lifbox_export_is_nir_euler_at_dt_squared(tmp_path):
    p = norse.LIFBoxParameters(tau_mem_inv=torch.full((4,), 100.0), v_th=torch.full((4,), 0.3),
                               v_leak=torch.zeros(4), v_reset=torch.zeros(4))
    net = norse_net(norse.LIFBoxCell(p))
    graph = exported(tmp_path, norse_to_nir(net, torch.zeros(6), dt=NORSE_DT))
    assert graph.nodes["1"].tau == pytest.approx(NORSE_DT * 0.01)   # dt * tau, not tau
    x = spike_input(80, 6, rate=0.5, scale=5.0)
    spikes = run_norse(net, x)
    assert spikes.sum() > 20
    np.testing.assert_array_equal(
        simulate(graph, {"input": x}, dt=NORSE_DT ** 2).outputs["output"], spikes)
    # At the dt Norse itself used the export decays 100x too fast to reach threshold.
    assert not np.array_equal(
        simulate(graph, {"input": x}, dt=NORSE_DT, method="exact").outputs["output"], spikes)


def test_norse_lifcell_adds_input_to_the_current_unscaled(tmp_path):
    p = norse.LIFParameters(tau_mem_inv=torch.full((4,), 100.0),
                            tau_syn_inv=torch.full((4,), 200.0), v_th=torch.full((4,), 0.3),
                            v_leak=torch.zeros(4), v_reset=torch.zeros(4))
    net = norse_net(norse.LIFCell(p))
    graph = exported(tmp_path, norse_to_nir(net, torch.zeros(6), dt=NORSE_DT))
    x = spike_input(80, 6, rate=0.5, scale=2.0)
    spikes = run_norse(net, x)
    assert spikes.sum() > 20
    dt = NORSE_DT ** 2
    cuba = graph.nodes["1"]
    # NIR Euler adds dt/tau_syn * w_in * x to i; Norse adds x: w_in = tau_syn/dt reconciles them.
    fixed = dataclasses.replace(cuba, w_in=np.asarray(cuba.tau_syn) / dt)
    same = type(graph)(nodes={**graph.nodes, "1": fixed}, edges=graph.edges)
    np.testing.assert_array_equal(simulate(same, {"input": x}, dt=dt).outputs["output"], spikes)
    assert not np.array_equal(simulate(graph, {"input": x}, dt=dt).outputs["output"], spikes)


# --- Sinabs -----------------------------------------------------------------------------



def sinabs_cnn(**iaf):
    torch.manual_seed(4)
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), sl.IAFSqueeze(batch_size=1, **iaf),
        sl.SumPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, 3, bias=False),
        sl.IAFSqueeze(batch_size=1, **iaf))


def run_sinabs(net, x):
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, sl.StatefulLayer):
                layer.reset_states()
        return net(torch.from_numpy(x)).numpy()   # IAFSqueeze: (batch*time, ...) with batch 1


@pytest.fixture(scope="module")
def cnn_input():
    return spike_input(40, 2, 8, 8, rate=0.5, seed=5, scale=3.0)


def test_sinabs_iaf_with_single_spike_and_reset_is_nir_if_at_dt_1(tmp_path, cnn_input):
    net = sinabs_cnn(spike_fn=SingleSpike, reset_fn=MembraneReset())
    graph = exported(tmp_path, sinabs.to_nir(net, torch.zeros(1, 2, 8, 8)))
    expected = run_sinabs(net, cnn_input)
    res = simulate(graph, {"input": cnn_input}, dt=1.0)
    assert expected.sum() > 10 and res.spikes["1"].sum() > 100
    np.testing.assert_array_equal(res.outputs["output"], expected)


def test_sinabs_default_iaf_fires_several_spikes_and_subtracts(tmp_path, cnn_input):
    net = sinabs_cnn()   # MultiSpike, MembraneSubtract
    graph = exported(tmp_path, sinabs.to_nir(net, torch.zeros(1, 2, 8, 8)))
    expected = run_sinabs(net, cnn_input)
    assert expected.max() > 1   # a count, which NIR's 0/1 spikes cannot express
    assert not np.array_equal(simulate(graph, {"input": cnn_input}, dt=1.0).outputs["output"],
                              expected)


def test_sinabs_fires_at_the_threshold_nir_only_above_it(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(1, 1, bias=False),
                              sl.IAFSqueeze(batch_size=1, spike_fn=SingleSpike,
                                            reset_fn=MembraneReset()))
    with torch.no_grad():
        net[0].weight.fill_(0.5)
    graph = exported(tmp_path, sinabs.to_nir(net, torch.zeros(1, 1)))
    x = np.ones((6, 1), dtype=np.float32)
    # v = 0.5, 1.0 (= threshold) ...: Sinabs spikes at v >= 1, NIR at v > 1.
    assert np.flatnonzero(run_sinabs(net, x)[:, 0]).tolist() == [1, 3, 5]
    assert np.flatnonzero(simulate(graph, {"input": x}, dt=1.0).outputs["output"][:, 0]
                          ).tolist() == [2, 5]


def test_sinabs_lif_is_nir_lif_under_the_exact_method_at_dt_1(tmp_path):
    # Sinabs: v = exp(-1/tau) v + (1 - exp(-1/tau)) x (norm_input), i.e. exact with r = 1.
    torch.manual_seed(6)
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 3, bias=False),
        sl.LIFSqueeze(tau_mem=torch.tensor([4.0, 8.0, 16.0]), batch_size=1,
                      spike_threshold=torch.full((3,), 0.3), spike_fn=SingleSpike,
                      reset_fn=MembraneReset()))
    with torch.no_grad():
        net[0].weight.mul_(6.0)
    graph = exported(tmp_path, sinabs.to_nir(net, torch.zeros(1, 5)))
    x = spike_input(50, 5, rate=0.5)
    expected = run_sinabs(net, x)
    assert expected.sum() > 10
    np.testing.assert_array_equal(
        simulate(graph, {"input": x}, dt=1.0, method="exact").outputs["output"], expected)
    assert not np.array_equal(simulate(graph, {"input": x}, dt=1.0).outputs["output"], expected)


# --- torch as the reference for convolution and pooling -----------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from nirc.ir.nodes import AvgPool2d, Conv2d  # noqa: E402
from nirc.simulate.operators import convolve, pool  # noqa: E402


@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@settings(max_examples=40, deadline=None)
@given(groups=st.sampled_from([1, 2]), k=st.tuples(st.integers(1, 4), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.one_of(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.just("same")),
       seed=st.integers(0, 2 ** 16))
def test_conv2d_equals_torch_for_any_stride_padding_dilation_and_groups(groups, k, stride,
                                                                         dilation, padding, seed):
    if padding == "same":
        stride = (1, 1)       # torch allows 'same' only with stride 1
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(4, 4 // groups, *k))
    bias = rng.normal(size=4)
    x = rng.normal(size=(2, 4, 9, 8))
    node = Conv2d(weight=weight, stride=np.array(stride), padding=padding,
                  dilation=np.array(dilation), groups=groups, bias=bias)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight),
                                          torch.from_numpy(bias), stride=stride, padding=padding,
                                          dilation=dilation, groups=groups).numpy()
    np.testing.assert_allclose(convolve(x, node), expected, rtol=1e-10, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(k=st.integers(1, 3), stride=st.integers(1, 3), pad=st.integers(0, 1),
       seed=st.integers(0, 2 ** 16))
def test_avg_pool_equals_torch_counting_padding_as_zeros(k, stride, pad, seed):
    pad = min(pad, k // 2)    # torch's limit on pooling padding
    x = np.random.default_rng(seed).normal(size=(1, 3, 7, 6))
    node = AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([stride, stride]),
                     padding=np.array([pad, pad]))
    expected = torch.nn.functional.avg_pool2d(torch.from_numpy(x), k, stride, pad,
                                              count_include_pad=True).numpy()
    np.testing.assert_allclose(pool(x, node, average=True), expected, rtol=1e-12)
