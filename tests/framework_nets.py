"""Networks built and exported by the frameworks themselves, with their own forward pass.

Shared by tests/test_frameworks.py (small nets, fixed seeds) and
benchmarks/bench_provenance.py (other seeds, sizes and architectures). Each builder
returns an Export: the NIR graph the framework's exporter wrote, a function running
the framework's own forward pass on a (T, *input_shape) array, and the nirc options a
user states for settings the file cannot carry (non-default reset, spike rule, floor).

Weights are random (seeded), scaled by ``gain`` so that neurons fire repeatedly: reset
and spike rules only matter then.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# Importing Rockpool imports a 'samna' shim that tries to pip-install the real package;
# without an index that attempt fails at once instead of retrying the network.
os.environ.setdefault("PIP_NO_INDEX", "1")

import nir  # noqa: E402
import torch  # noqa: E402


@dataclass
class Export:
    name: str
    framework: str
    graph: nir.NIRGraph
    run: Callable[[np.ndarray], np.ndarray]
    input_shape: tuple[int, ...]
    options: dict = field(default_factory=dict)   # nirc --reset/--spikes/--v-min
    readout: str = "spikes"                        # or "membrane" (a non-spiking output)
    gain: float = 1.0


def _quiet():
    stack = contextlib.ExitStack()
    catcher = stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    del catcher
    return stack


def _scale(modules, gain: float) -> None:
    with torch.no_grad():
        for m in modules:
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(gain)
                if m.bias is not None:
                    m.bias.mul_(gain)


def spike_input(steps: int, shape, rate: float = 0.3, seed: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    return (rng.random((steps, *shape)) < rate).astype(np.float32) * np.float32(scale)


# --- snnTorch ----------------------------------------------------------------------------


def snntorch_export(kind: str = "leaky", arch: str = "mlp", seed: int = 0, n_in: int = 12,
                    hidden: int = 16, n_out: int = 5, reset: str = "subtract",
                    reset_delay: bool = True, gain: float = 3.0) -> Export:
    """kind: leaky | synaptic | rleaky | rsynaptic (the hidden layer; readout is the same
    family: Leaky, or Synaptic for synaptic kinds). arch: mlp | cnn (conv hidden layer)."""
    import snntorch as snn
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    def vec(lo, hi, shape):
        return torch.tensor(rng.uniform(lo, hi, size=shape), dtype=torch.float32)

    common = dict(init_hidden=True, reset_mechanism=reset, reset_delay=reset_delay)

    def neuron(shape, output=False, recurrent=False):
        beta, thr = vec(0.7, 0.95, shape), vec(0.5, 1.5, shape)
        synaptic = kind in ("synaptic", "rsynaptic")
        if recurrent:
            cls = snn.RSynaptic if synaptic else snn.RLeaky
            extra = dict(alpha=vec(0.5, 0.9, shape)) if synaptic else {}
            return cls(beta=beta, threshold=thr, linear_features=shape[0], output=output,
                       **extra, **common)
        if synaptic:
            return snn.Synaptic(alpha=vec(0.5, 0.9, shape), beta=beta, threshold=thr,
                                output=output, **common)
        return snn.Leaky(beta=beta, threshold=thr, output=output, **common)

    recurrent = kind.startswith("r")
    if arch == "cnn":
        in_shape, conv_shape = (2, 6, 6), (4, 4, 4)
        layers = [torch.nn.Conv2d(2, 4, 3), neuron(conv_shape), torch.nn.Flatten(),
                  torch.nn.Linear(64, n_out), neuron((n_out,), output=True)]
    else:
        in_shape = (n_in,)
        layers = [torch.nn.Linear(n_in, hidden), neuron((hidden,), recurrent=recurrent),
                  torch.nn.Linear(hidden, n_out), neuron((n_out,), output=True)]
    net = torch.nn.Sequential(*layers)
    _scale(net, gain)
    if recurrent:
        with torch.no_grad():
            net[1].recurrent.weight.mul_(gain)
    with _quiet():
        graph = export_to_nir(net, torch.zeros(1, *in_shape), ignore_dims=[0])

    def run(x: np.ndarray) -> np.ndarray:
        snn_utils.reset(net)
        for m in net:
            if isinstance(m, snn.RSynaptic):
                # snnTorch 1.0's reset leaves RSynaptic's last spikes in place (RLeaky's it
                # clears): without this, a run starts with the spikes of the previous one.
                m.init_rsynaptic()
        out = []
        with torch.no_grad():
            for xt in torch.from_numpy(np.asarray(x, np.float32)):
                out.append(net(xt[None])[0][0].numpy())
        return np.array(out)

    options = {}
    if reset != "subtract":
        options["reset"] = reset
    if not reset_delay:
        options["reset_delay"] = False
    name = f"snntorch-{kind}-{arch}" + ("" if reset == "subtract" else f"-{reset}") + \
        ("" if reset_delay else "-nodelay")
    return Export(name, "snntorch", graph, run, in_shape, options, gain=gain)


# --- Norse -------------------------------------------------------------------------------


def norse_export(kind: str = "lifbox", arch: str = "mlp", seed: int = 0, n_in: int = 10,
                 hidden: int = 16, n_out: int = 5, gain: float = 30.0,
                 readout: str = "spiking") -> Export:
    """kind: lifbox | lif | iaf (hidden and readout cells); readout 'li' ends in LIBoxCell."""
    import norse.torch as norse
    from norse.torch.utils.export_nir import to_nir

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    def vec(lo, hi, shape):
        return torch.tensor(rng.uniform(lo, hi, size=shape), dtype=torch.float32)

    def cell(shape, last=False):
        if last and readout == "li":
            return norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=vec(50, 200, shape),
                                                         v_leak=torch.zeros(shape)))
        if kind == "lifbox":
            return norse.LIFBoxCell(norse.LIFBoxParameters(
                tau_mem_inv=vec(50, 200, shape), v_th=vec(0.2, 0.5, shape),
                v_leak=torch.zeros(shape), v_reset=torch.zeros(shape)))
        if kind == "lif":
            return norse.LIFCell(norse.LIFParameters(
                tau_mem_inv=vec(80, 200, shape), tau_syn_inv=vec(150, 300, shape),
                v_th=vec(0.2, 0.5, shape), v_leak=torch.zeros(shape),
                v_reset=torch.zeros(shape)))
        return norse.IAFCell(norse.IAFParameters(v_th=vec(0.5, 1.5, shape),
                                                 v_reset=torch.zeros(shape)))

    if arch == "cnn":
        in_shape = (2, 6, 6)
        layers = [torch.nn.Conv2d(2, 4, 3), cell((4, 4, 4)), torch.nn.Conv2d(4, 3, 3),
                  cell((3, 2, 2), last=True)]
    else:
        in_shape = (n_in,)
        layers = [torch.nn.Linear(n_in, hidden), cell((hidden,)), torch.nn.Linear(hidden, n_out),
                  cell((n_out,), last=True)]
    _scale(layers, gain / (30.0 if kind == "iaf" else 1.0))
    net = norse.SequentialState(*layers)
    with _quiet():
        graph = to_nir(net, torch.zeros(*in_shape))

    def run(x: np.ndarray) -> np.ndarray:
        out, state = [], None
        with torch.no_grad():
            for xt in torch.from_numpy(np.asarray(x, np.float32)):
                z, state = net(xt, state)
                out.append(z.numpy())
        return np.array(out)

    return Export(f"norse-{kind}-{arch}" + ("-li" if readout == "li" else ""), "norse", graph,
                  run, in_shape, {}, "membrane" if readout == "li" else "spikes", gain)


# --- Sinabs ------------------------------------------------------------------------------


def sinabs_export(kind: str = "iaf", arch: str = "mlp", seed: int = 0, n_in: int = 12,
                  hidden: int = 16, n_out: int = 5, spikes: str = "multi",
                  reset: str = "subtract", v_min: float | None = None, gain: float = 3.0,
                  readout: str = "spiking", norm_input: bool = True) -> Export:
    """kind: iaf | lif (LIF with norm_input); readout 'expleak' ends in ExpLeak (membrane)."""
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, MembraneSubtract, MultiSpike, SingleSpike

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    spike_fn = MultiSpike if spikes == "multi" else SingleSpike
    reset_fn = MembraneSubtract() if reset == "subtract" else MembraneReset()
    opts = dict(batch_size=1, spike_fn=spike_fn, reset_fn=reset_fn, min_v_mem=v_min)

    def layer(shape, last=False):
        if last and readout == "expleak":
            return sl.ExpLeakSqueeze(tau_mem=torch.tensor(rng.uniform(3, 12, size=shape),
                                                          dtype=torch.float32), batch_size=1)
        thr = torch.tensor(rng.uniform(0.5, 1.5, size=shape), dtype=torch.float32)
        if kind == "lif":
            return sl.LIFSqueeze(tau_mem=torch.tensor(rng.uniform(3, 20, size=shape),
                                                      dtype=torch.float32),
                                 spike_threshold=thr, norm_input=norm_input, **opts)
        return sl.IAFSqueeze(spike_threshold=thr, **opts)

    if arch == "cnn":
        in_shape = (2, 8, 8)
        layers = [torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), layer((4, 8, 8)),
                  sl.SumPool2d(2), torch.nn.Flatten(), torch.nn.Linear(64, n_out, bias=False),
                  layer((n_out,), last=True)]
    else:
        in_shape = (n_in,)
        layers = [torch.nn.Linear(n_in, hidden, bias=False), layer((hidden,)),
                  torch.nn.Linear(hidden, n_out, bias=False), layer((n_out,), last=True)]
    net = torch.nn.Sequential(*layers)
    # LIF normalises its input by (1 - alpha): scale up so that it fires as often as IAF.
    _scale(net, gain * (12.0 if kind == "lif" and norm_input else 1.0))
    with _quiet():
        graph = sinabs.to_nir(net, torch.zeros(1, *in_shape))

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            for m in net:
                if isinstance(m, sl.StatefulLayer):
                    m.reset_states()
            return net(torch.from_numpy(np.asarray(x, np.float32))).numpy()

    options = {}
    if spikes != "multi":
        options["spikes"] = spikes
    if reset != "subtract":
        options["reset"] = reset
    if v_min is not None:
        options["v_min"] = v_min
    if not norm_input:
        options["input_scaling"] = "unscaled"
    name = f"sinabs-{kind}-{arch}-{spikes}-{reset}" + ("" if v_min is None else "-vmin") + \
        ("" if norm_input else "-unnormalised") + \
        ("-expleak" if readout == "expleak" else "")
    return Export(name, "sinabs", graph, run, in_shape, options,
                  "membrane" if readout == "expleak" else "spikes", gain)


# --- Rockpool ----------------------------------------------------------------------------


@contextlib.contextmanager
def _nir_without_type_check():
    """Rockpool 3.1's exporter keeps the batch dimension in the Input type, which nir
    1.0.8's graph type check refuses; users get a file by skipping the check."""
    original = nir.NIRGraph.__init__

    def init(self, nodes, edges, metadata=dict, type_check=True):
        original(self, nodes, edges, metadata, type_check=False)

    nir.NIRGraph.__init__ = init
    try:
        yield
    finally:
        nir.NIRGraph.__init__ = original


def rockpool_export(kind: str = "lif", seed: int = 0, n_in: int = 10, hidden: int = 16,
                    n_out: int = 5, dt: float = 1e-3, gain: float = 1.0,
                    max_spikes: int | None = None) -> Export:
    """kind: lif (LIFTorch, CubaLIF) | neuron (LIFNeuronTorch, LIF) | expsyn (LIFTorch hidden,
    ExpSynTorch readout: a membrane output)."""
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules.torch.exp_syn_torch import ExpSynTorch
    from rockpool.nn.modules.torch.lif_neuron_torch import LIFNeuronTorch
    from rockpool.nn.modules.torch.lif_torch import LIFTorch
    from rockpool.nn.modules.torch.linear_torch import LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    def neuron(n, last=False):
        tau_mem = torch.tensor(rng.uniform(0.005, 0.03, size=n), dtype=torch.float32)
        thr = torch.tensor(rng.uniform(0.5, 1.5, size=n), dtype=torch.float32)
        extra = {} if max_spikes is None else {"max_spikes_per_dt": max_spikes}
        if last and kind == "expsyn":
            return ExpSynTorch(n, tau=tau_mem, dt=dt)
        if kind == "neuron":
            return LIFNeuronTorch(n, tau_mem=tau_mem, threshold=thr, dt=dt)
        tau_syn = torch.tensor(rng.uniform(0.002, 0.01, size=n), dtype=torch.float32)
        return LIFTorch(n, tau_mem=tau_mem, tau_syn=tau_syn, threshold=thr, dt=dt, **extra)

    lin1, lin2 = LinearTorch((n_in, hidden)), LinearTorch((hidden, n_out))
    with torch.no_grad():
        lin1.weight.mul_(gain)
        lin2.weight.mul_(gain)
    net = Sequential(lin1, neuron(hidden), lin2, neuron(n_out, last=True))
    for p in torch.nn.Module.parameters(net):
        # Rockpool's exporter writes ExpSynTorch's tau without detaching it (h5py refuses).
        p.requires_grad_(False)
    with _quiet(), _nir_without_type_check():
        graph = to_nir(net)

    def run(x: np.ndarray) -> np.ndarray:
        net.reset_state()
        with torch.no_grad():
            out, _, _ = net(torch.from_numpy(np.asarray(x, np.float32))[None])
        return out[0].numpy()

    options = {}
    name = f"rockpool-{kind}" + ("" if max_spikes is None else f"-max{max_spikes}")
    return Export(name, "rockpool", graph, run, (n_in,), options,
                  "membrane" if kind == "expsyn" else "spikes", gain)


def nirc_options(export: Export) -> dict:
    """The export's options as keyword arguments of nirc.convention.resolve/with_options."""
    return dict(export.options)
