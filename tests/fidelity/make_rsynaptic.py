"""Train and export the snnTorch recurrent CubaLIF network of issue 10's Xylo case (RSynaptic 12-38-7).

    .venv/bin/python tests/fidelity/make_rsynaptic.py [--out-dir tests/fidelity]

snnTorch 1.0 defaults (subtract reset, reset delay), 12 inputs -> RSynaptic 38 (all-to-all
recurrent Linear) -> Linear -> Synaptic 7 readout, trained with BPTT to tell 7 rate
patterns apart (Bernoulli spikes, 40 steps), with a small penalty on hidden activity as
users add to keep chips sparse. Writes:

- rsynaptic.nir: ``export_to_nir`` (dt = 1e-4 by snnTorch's convention), edges sorted;
- rsynaptic_data.npz: ``input`` (T, B, 12) held-out samples with ``labels``, and
  snnTorch's own forward pass on them: ``hidden`` and ``output`` spikes (T, B, n) - the
  framework's reference the fidelity tests compare the chip against;
- rsynaptic_calibration.npz: 16 other samples of the task, for ``--calibration``.

Seeded and single-threaded: re-running gives the same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

N_IN, N_HIDDEN, N_OUT, STEPS, SEED = 12, 38, 7, 40, 0


def network():
    import snntorch as snn

    hidden = snn.RSynaptic(alpha=torch.full((N_HIDDEN,), 0.8), beta=torch.full((N_HIDDEN,), 0.9),
                           threshold=torch.ones(N_HIDDEN), linear_features=N_HIDDEN, init_hidden=True)
    readout = snn.Synaptic(alpha=torch.full((N_OUT,), 0.8), beta=torch.full((N_OUT,), 0.9),
                           threshold=torch.ones(N_OUT), init_hidden=True, output=True)
    return torch.nn.Sequential(torch.nn.Linear(N_IN, N_HIDDEN), hidden,
                               torch.nn.Linear(N_HIDDEN, N_OUT), readout)


def run(net, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden and output spikes (T, B, n) of snnTorch's forward pass from rest."""
    for layer in (net[1], net[3]):
        # snnTorch's reset leaves RSynaptic's recurrent spikes; new shapes re-zero every state.
        for state in ("spk", "syn", "mem"):
            if hasattr(layer, state):
                setattr(layer, state, torch.zeros(0))
    hidden, output = [], []
    for xt in x:
        h = net[1](net[0](xt))
        output.append(net[3](net[2](h))[0])
        hidden.append(h)
    return torch.stack(hidden), torch.stack(output)


def data(n: int, seed: int, prototypes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_OUT, n)
    x = (rng.random((STEPS, n, N_IN)) < prototypes[labels][None]).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(labels)


def make(out_dir: Path, iterations: int = 600, activity_penalty: float = 1.0) -> dict:
    import nir
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    prototypes = np.random.default_rng(SEED).random((N_OUT, N_IN)) * 0.5
    net = network()
    optimiser = torch.optim.Adam(net.parameters(), lr=5e-3)
    for it in range(iterations):
        x, y = data(64, SEED + 1 + it, prototypes)
        hidden, output = run(net, x)
        loss = torch.nn.functional.cross_entropy(output.sum(0), y) + activity_penalty * hidden.mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    calibration, _ = data(16, SEED + 200_000, prototypes)     # other samples of the task
    x, y = data(64, SEED + 100_000, prototypes)
    with torch.no_grad():
        hidden, output = run(net, x)
    graph = export_to_nir(net, torch.zeros(1, N_IN), ignore_dims=[0])
    graph.edges = sorted(graph.edges)
    # No metadata dt: snnTorch writes none, and nirc recognises its convention from the parameters.
    graph.metadata.update(source="snntorch 1.0 export_to_nir: RSynaptic 12-38-7, trained "
                                          "(tests/fidelity/make_rsynaptic.py)", seed=SEED)
    out_dir.mkdir(parents=True, exist_ok=True)
    nir.write(out_dir / "rsynaptic.nir", graph)
    np.savez_compressed(out_dir / "rsynaptic_data.npz", input=x.numpy(), labels=y.numpy(),
                        hidden=hidden.numpy().astype(np.uint8), output=output.numpy().astype(np.uint8))
    np.savez_compressed(out_dir / "rsynaptic_calibration.npz", input=calibration.numpy())
    return {"accuracy": float((output.sum(0).argmax(1) == y).float().mean()),
            "hidden_spikes": int(hidden.sum()), "output_spikes": int(output.sum())}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent)
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--activity-penalty", type=float, default=1.0)
    args = parser.parse_args()
    print(make(args.out_dir, args.iterations, args.activity_penalty))
