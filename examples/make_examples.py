"""Build the example NIR models in this folder with the frameworks' own exporters.

    .venv/bin/python examples/make_examples.py [--only mlp|cnn|srnn] [--out-dir examples]

- mlp.nir:  snnTorch, 64 -> 128 LIF -> 10 LIF, trained on scikit-learn's 8x8 digits
            (rate-coded), exported with snntorch.export_to_nir (dt = 1e-4 convention).
- cnn.nir:  Sinabs, a spiking CNN for 2x34x34 events (Conv+IAF, SumPool, Flatten,
            Linear+IAF) within Speck's per-core memory limits, exported with sinabs.to_nir.
- srnn.nir: snnTorch, 16 inputs -> recurrent LIF (RLeaky) 64 -> CubaLIF (Synaptic) readout 8,
            the size of a Xylo chip, exported with snntorch.export_to_nir.

Everything is seeded and single-threaded, so re-running gives the same weights. The
untrained networks (cnn, srnn) are random-initialised and their weight layers scaled, one
after the other, until each spiking layer fires at about TARGET_RATE on the Bernoulli input
examples/make_inputs.py writes (rate 0.1). Each file's metadata says which dt the exporter's
convention implies (docs/semantics.md), where it came from, and the seed.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

SEED = 0
TARGET_RATE = 0.1      # spikes per neuron per step the untrained layers are scaled to
INPUT_RATE = 0.1       # make_inputs.py's default Bernoulli rate
CALIBRATION_STEPS = 100


def seeded(seed: int = SEED) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def bernoulli(shape, rate: float, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.random(shape) < rate).astype(np.float32))


def scale_to_rate(layer: torch.nn.Module, rate_of, target: float = TARGET_RATE) -> float:
    """Multiply ``layer``'s weights by the factor (bisection in log space) that makes
    ``rate_of()`` - the firing rate of the layer it drives - about ``target``."""
    weight = layer.weight.detach().clone()
    lo, hi = math.log(1e-2), math.log(1e3)
    for _ in range(18):
        mid = (lo + hi) / 2
        with torch.no_grad():
            layer.weight.copy_(weight * math.exp(mid))
        if rate_of() < target:
            lo = mid
        else:
            hi = mid
    with torch.no_grad():
        layer.weight.copy_(weight * math.exp(hi))
    return math.exp(hi)


# --- snnTorch MLP, trained on digits ------------------------------------------------------


def snntorch_run(net, x: torch.Tensor) -> list[torch.Tensor]:
    """Step a Sequential of init_hidden snnTorch layers over x (T, B, ...); spikes per layer."""
    import snntorch as snn
    from snntorch import utils

    utils.reset(net)
    records: list[list[torch.Tensor]] = []
    for xt in x:
        h, layer_spikes = xt, []
        for module in net:
            h = module(h)
            if isinstance(h, tuple):      # the output layer returns (spk, [syn,] mem)
                h = h[0]
            if isinstance(module, (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)):
                layer_spikes.append(h)
        records.append(layer_spikes)
    return [torch.stack(r) for r in zip(*records)]


def lif(n: int, output: bool = False, beta: float = 0.9):
    import snntorch as snn

    # Per-neuron tensors: scalar beta/threshold export 0-d parameters nir rejects.
    return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.ones(n), init_hidden=True,
                     output=output, reset_mechanism="zero", reset_delay=False)


def make_mlp(path: Path) -> dict:
    from sklearn.datasets import load_digits
    from snntorch.export_nir import export_to_nir

    seeded()
    digits = load_digits()
    images = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    labels = torch.tensor(digits.target)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SEED))
    train, test = order[:1400], order[1400:]
    steps, max_rate = 25, 0.5
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), lif(128), torch.nn.Linear(128, 10),
                              lif(10, output=True))
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(SEED + 1)

    def encode(idx):
        p = images[idx] * max_rate
        return (torch.rand((steps, *p.shape), generator=gen) < p).float()

    for epoch in range(12):
        for batch in train[torch.randperm(len(train), generator=gen)].split(100):
            counts = snntorch_run(net, encode(batch))[-1].sum(0)
            loss = torch.nn.functional.cross_entropy(counts, labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        test_input = encode(test)
        counts = snntorch_run(net, test_input)[-1].sum(0)
    graph = export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0])
    graph.metadata.update(dt=1e-4, source="snntorch 1.0.0 export_to_nir, trained on "
                                          "sklearn digits (8x8, rate-coded, 25 steps)",
                          script="examples/make_examples.py", seed=SEED)
    write(path, graph)
    return {"torch_test_accuracy": float((counts.argmax(1) == labels[test]).float().mean()),
            "test_input": test_input.numpy(), "test_labels": labels[test].numpy()}


# --- Sinabs CNN for Speck --------------------------------------------------------------------


def make_cnn(path: Path) -> dict:
    import sinabs
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    seeded()
    iaf = dict(batch_size=1, spike_fn=SingleSpike, reset_fn=MembraneReset())
    # Speck per-core memory (sinabs' accounting, sinabs.backend.dynapcnn), words:
    #   conv1 2->8 3x3 on 34x34: kernel 2*2^(4+3) = 256, neurons 8*2^(6+6) = 32Ki (cores 0-2: 64Ki)
    #   conv2 8->16 3x3 on 17x17: kernel 8*2^(4+4) = 2Ki, neurons 16*2^(5+5) = 16Ki
    #   fc 16x8x8 -> 10 (a conv whose 8x8 kernel covers its input): kernel 16*2^(6+4) = 16Ki
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 8, 3, padding=1, bias=False), sl.IAFSqueeze(**iaf), sl.SumPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1, bias=False), sl.IAFSqueeze(**iaf), sl.SumPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 8 * 8, 10, bias=False), sl.IAFSqueeze(**iaf))
    x = bernoulli((CALIBRATION_STEPS, 2, 34, 34), INPUT_RATE, SEED)

    def rate_after(index):
        def rate():
            for layer in net:
                if isinstance(layer, sl.StatefulLayer):
                    layer.reset_states()
            with torch.no_grad():
                return float(net[:index + 1](x).mean())
        return rate

    scales = [scale_to_rate(net[i], rate_after(i + 1)) for i in (0, 3, 7)]
    graph = sinabs.to_nir(net, torch.zeros(1, 2, 34, 34))
    graph.metadata.update(dt=1.0, source="sinabs 3.1.3 to_nir, random init (seeded), weights "
                                         f"scaled to ~{TARGET_RATE} spikes/step on Bernoulli("
                                         f"{INPUT_RATE}) input",
                          script="examples/make_examples.py", seed=SEED)
    write(path, graph)
    return {"weight_scales": scales}


# --- snnTorch recurrent SNN for Xylo -----------------------------------------------------------


def make_srnn(path: Path) -> dict:
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    seeded()
    n_in, n_hidden, n_out = 16, 64, 8
    common = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    # RLeaky, not RSynaptic: snnTorch 1.0's RSynaptic crashes with reset_delay=False, and
    # its delayed reset-to-zero also drops the input of the step after a spike (not NIR).
    hidden = snn.RLeaky(beta=torch.full((n_hidden,), 0.9), threshold=torch.ones(n_hidden),
                        linear_features=n_hidden, **common)
    readout = snn.Synaptic(alpha=torch.full((n_out,), 0.8), beta=torch.full((n_out,), 0.9),
                           threshold=torch.ones(n_out), output=True, **common)
    net = torch.nn.Sequential(torch.nn.Linear(n_in, n_hidden, bias=False), hidden,
                              torch.nn.Linear(n_hidden, n_out, bias=False), readout)
    with torch.no_grad():
        hidden.recurrent.bias.zero_()          # Xylo's recurrent weights carry no bias
        hidden.recurrent.weight.mul_(0.5)
    x = bernoulli((CALIBRATION_STEPS, 1, n_in), INPUT_RATE, SEED)

    def rate_of(layer):
        def rate():
            with torch.no_grad():
                return float(snntorch_run(net, x)[layer].mean())
        return rate

    scales = [scale_to_rate(net[0], rate_of(0)), scale_to_rate(net[2], rate_of(1))]
    graph = export_to_nir(net, torch.zeros(1, n_in), ignore_dims=[0])
    graph.metadata.update(dt=1e-4, source="snntorch 1.0.0 export_to_nir (RLeaky hidden, "
                                          "Synaptic readout), random init (seeded), weights "
                                          f"scaled to ~{TARGET_RATE} spikes/step on "
                                          f"Bernoulli({INPUT_RATE}) input",
                          script="examples/make_examples.py", seed=SEED)
    write(path, graph)
    return {"weight_scales": scales}


def write(path: Path, graph) -> None:
    import nir

    # nirtorch lists edges in set order, which changes with Python's string hashing.
    graph.edges = sorted(graph.edges)
    nir.write(path, graph)


MAKERS = {"mlp": make_mlp, "cnn": make_cnn, "srnn": make_srnn}


def check(path: Path, info: dict) -> None:
    """Read the file back with nirc and report sizes and firing rates under nirc's semantics."""
    import warnings

    from nirc.nirio import read
    from nirc.simulate import simulate

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = read(path)
    for w in caught:
        print(f"  warning: {w.message}")
    size = path.stat().st_size
    if size >= 1 << 20:
        sys.exit(f"{path}: {size} bytes, over the 1 MB budget")
    (name, node), = graph.inputs().items()
    shape = tuple(int(d) for d in node.shape)
    x = bernoulli((CALIBRATION_STEPS, *shape), INPUT_RATE, SEED + 7).numpy()
    res = simulate(graph, {name: x})
    rates = ", ".join(f"{n} {s.mean():.3f}" for n, s in res.spikes.items())
    print(f"{path}: {size} bytes, dt {graph.metadata['dt']} s; nirc spike rates on "
          f"Bernoulli({INPUT_RATE}): {rates}")
    if "test_input" in info:
        out = simulate(graph, {name: info["test_input"]}, batch=True).outputs
        counts = next(iter(out.values())).sum(0)
        accuracy = float((counts.argmax(1) == info["test_labels"]).mean())
        print(f"  test accuracy on {len(info['test_labels'])} digits: snnTorch "
              f"{info['torch_test_accuracy']:.3f}, nirc simulate {accuracy:.3f}")
    elif "weight_scales" in info:
        print(f"  weight scales: {', '.join(f'{s:.3g}' for s in info['weight_scales'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(MAKERS), action="append",
                        help="build only this model (repeatable)")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.only or MAKERS:
        path = args.out_dir / f"{name}.nir"
        info = MAKERS[name](path)
        check(path, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
