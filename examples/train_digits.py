"""Train small SNNs on scikit-learn's 8x8 digits in each framework; export with its exporter.

    .venv/bin/python examples/train_digits.py [--only NAME ...] [--out-dir examples/digits]

The models the accuracy table (benchmarks/bench_accuracy.py) runs on every chip that holds
them, trained the way each framework's users train (BPTT with the framework's surrogate
gradient, cross-entropy on output spike counts) and written with the framework's exporter:

- snntorch_mlp:       64 -> Linear -> 96 Leaky -> Linear -> 10 Leaky (snnTorch defaults:
                      beta 0.9, threshold 1, subtract reset, delayed), rate-coded input
- snntorch_cnn:       1x8x8 -> Conv 1->8 3x3 + Leaky -> AvgPool 2 -> Flatten -> Linear -> 10
                      Leaky (defaults as above), rate-coded input
- snntorch_rsynaptic: rows over time -> Linear -> 64 RSynaptic (recurrent, defaults: alpha
                      0.9, beta 0.9, subtract reset) -> Linear -> 10 Synaptic
- sinabs_cnn:         1x8x8 -> Conv 1->8 3x3 + IAF -> SumPool 2 -> Conv 8->16 3x3 + IAF ->
                      SumPool 2 -> Flatten -> Linear -> 10 IAF (Sinabs defaults: MultiSpike,
                      subtract reset, threshold 1; no biases, as for Speck), rate-coded input
- rockpool_lif:       rows over time -> LinearTorch -> 64 LIFTorch with recurrent weights ->
                      LinearTorch -> 10 LIFTorch (dt 1 ms, tau_syn 1.44 ms and tau_mem
                      7.49 ms: decays Xylo's bit shifts hold exactly; at most 31 spikes per
                      step as on Xylo; only weights trained), the network a Xylo user builds
- norse_mlp:          64 -> Linear -> 96 LIFCell -> Linear -> 10 LIFCell (Norse defaults:
                      dt 1 ms, tau_syn 5 ms, tau_mem 10 ms, threshold 1), rate-coded input

Input encodings (the same spikes reach the framework and the chip; both are stored):
- rate: pixel/16 * 0.5 spikes per step (Bernoulli), 25 steps, as (64,) or (1, 8, 8)
- rows: the image's 8 rows one after the other, each held for 3 steps, its 8 pixels as 8
        channels spiking with probability pixel/16 per step (24 steps)

The split is examples/make_examples.py's: torch.randperm(1797) seeded with 0, the first
1400 images for training, the other 397 for testing. Everything is seeded and
single-threaded: re-running writes the same weights. Besides the .nir files it writes
reference.npz: the test inputs of each encoding, the labels, each framework's own
output spike counts on them (its forward pass on exactly these spikes), and 64 encoded
training images per encoding as calibration input (``calibration_rate``/``_rows``); and
manifest.json: per model its file, framework, encoding, input shape, epochs and the
framework's test accuracy. Needs the `frameworks` extra (snnTorch, Sinabs, Rockpool, Norse).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

# Rockpool's import tries to pip-install 'samna'; without an index that fails at once.
os.environ.setdefault("PIP_NO_INDEX", "1")

import torch  # noqa: E402

SEED = 0
TRAIN = 1400
CALIBRATION = 64        # training images stored as calibration input for nirc compile
CLASSES = 10
ENCODINGS = {"rate": {"steps": 25, "max_rate": 0.5}, "rows": {"steps_per_row": 3}}
ROCKPOOL_MAX_SPIKES = 31
# Rockpool's spike counts reach 31 per step: logits are the counts scaled down, or the
# first steps drive every neuron silent (its surrogate gradient is then zero).
LOGIT_SCALE = {"rockpool": 0.1}
# Training choices a NIR file cannot carry, which the user states to nirc (the keyword
# arguments of nirc.convention.resolve; on the command line --max-spikes etc.).
NIRC_OPTIONS = {"rockpool_lif": {"max_spikes": ROCKPOOL_MAX_SPIKES}}
HERE = Path(__file__).resolve().parent


def seeded(seed: int = SEED) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


# --- data -----------------------------------------------------------------------------------


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels); images (N, 8, 8) in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = torch.randperm(len(digits.target),
                           generator=torch.Generator().manual_seed(SEED)).numpy()
    images = (digits.images / 16.0).astype(np.float32)
    train, test = order[:TRAIN], order[TRAIN:]
    return images[train], digits.target[train], images[test], digits.target[test]


def encode(encoding: str, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spikes (T, N, ...) of ``images`` (N, 8, 8): 'rate' gives (25, N, 8, 8), 'rows' (24, N, 8)."""
    if encoding == "rate":
        p = images * ENCODINGS["rate"]["max_rate"]
        return rng.random((ENCODINGS["rate"]["steps"], *p.shape)) < p
    hold = ENCODINGS["rows"]["steps_per_row"]
    p = np.repeat(images.transpose(1, 0, 2), hold, axis=0)      # (8 * hold, N, 8)
    return rng.random(p.shape) < p


def shaped(x: np.ndarray, input_shape: tuple[int, ...]) -> torch.Tensor:
    """(T, N, ...) spikes as a float tensor (T, N, *input_shape)."""
    return torch.from_numpy(x.reshape(x.shape[0], x.shape[1], *input_shape).astype(np.float32))


# --- one model per framework ----------------------------------------------------------------
# Each builder returns (net, forward, export): forward(x (T, B, *shape)) -> output spikes
# (T, B, 10) with gradients; export() -> the framework exporter's nir.NIRGraph.


def _snntorch_stepper(net):
    import snntorch as snn
    from snntorch import utils

    def forward(x):
        utils.reset(net)
        for m in net:
            if isinstance(m, snn.RSynaptic):
                m.init_rsynaptic()    # snnTorch 1.0's reset keeps RSynaptic's last spikes
        out = []
        for xt in x:
            spk = net(xt)
            out.append(spk[0] if isinstance(spk, tuple) else spk)
        return torch.stack(out)
    return forward


def _leaky(shape, **kw):
    """snnTorch's default Leaky (subtract reset, delayed; threshold 1) with beta 0.9. Per-neuron
    tensors: with scalar beta/threshold snnTorch 1.0's exporter writes 0-d parameters and
    then fails nir 1.0.8's type check itself, so a user has to give tensors."""
    import snntorch as snn

    return snn.Leaky(beta=torch.full(shape, 0.9), threshold=torch.ones(shape),
                     init_hidden=True, **kw)


def snntorch_mlp():
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(torch.nn.Linear(64, 96), _leaky((96,)),
                              torch.nn.Linear(96, CLASSES), _leaky((CLASSES,), output=True))
    return net, _snntorch_stepper(net), lambda: export_to_nir(net, torch.zeros(1, 64),
                                                              ignore_dims=[0])


def snntorch_cnn():
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), _leaky((8, 8, 8)),
                              torch.nn.AvgPool2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 4 * 4, CLASSES),
                              _leaky((CLASSES,), output=True))
    return net, _snntorch_stepper(net), lambda: export_to_nir(net, torch.zeros(1, 1, 8, 8),
                                                              ignore_dims=[0])


def snntorch_rsynaptic():
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    hidden = 64
    net = torch.nn.Sequential(
        torch.nn.Linear(8, hidden),
        snn.RSynaptic(alpha=torch.full((hidden,), 0.9), beta=torch.full((hidden,), 0.9),
                      threshold=torch.ones(hidden), linear_features=hidden, init_hidden=True),
        torch.nn.Linear(hidden, CLASSES),
        snn.Synaptic(alpha=torch.full((CLASSES,), 0.9), beta=torch.full((CLASSES,), 0.9),
                     threshold=torch.ones(CLASSES), init_hidden=True, output=True))
    return net, _snntorch_stepper(net), lambda: export_to_nir(net, torch.zeros(1, 8),
                                                              ignore_dims=[0])


def sinabs_cnn():
    import sinabs
    import sinabs.layers as sl

    def iaf():
        return sl.IAFSqueeze(batch_size=1)     # defaults: MultiSpike, subtract, threshold 1

    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1, bias=False), iaf(), sl.SumPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1, bias=False), iaf(), sl.SumPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 2 * 2, CLASSES, bias=False), iaf())

    def forward(x):
        steps, batch = x.shape[:2]
        for m in net:
            if isinstance(m, sl.StatefulLayer):
                m.batch_size = batch
                m.reset_states()
        # IAFSqueeze takes (batch * time, ...) with the batch outermost.
        flat = x.transpose(0, 1).reshape(batch * steps, *x.shape[2:])
        out = net(flat).reshape(batch, steps, -1)
        return out.transpose(0, 1)

    def export():
        for m in net:
            if isinstance(m, sl.StatefulLayer):
                m.batch_size = 1
                m.reset_states()
        return sinabs.to_nir(net, torch.zeros(1, 1, 8, 8))
    return net, forward, export


@contextlib.contextmanager
def _nir_without_type_check():
    """Rockpool 3.1's exporter keeps the batch dimension in the Input type, which nir
    1.0.8's graph type check refuses; a user gets a file by skipping the check (nirc reads
    it with a warning, nirc.nirio.quirks)."""
    import nir

    original = nir.NIRGraph.__init__

    def init(self, nodes, edges, metadata=dict, type_check=True):
        original(self, nodes, edges, metadata, type_check=False)

    nir.NIRGraph.__init__ = init
    try:
        yield
    finally:
        nir.NIRGraph.__init__ = original


def _bitshift_tau(dash: int, dt: float = 1e-3) -> float:
    """The time constant whose exact decay per step dt is Xylo's 1 - 2^-dash."""
    return dt / -math.log(1.0 - 2.0 ** -dash)


def rockpool_lif():
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules.torch.lif_torch import LIFTorch
    from rockpool.nn.modules.torch.linear_torch import LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    hidden = 64
    # Xylo's neurons fire at most 31 spikes per step; Rockpool's default bound (2^16) lets
    # the recurrent layer run away. The file cannot say this: nirc is told with
    # --max-spikes 31 (manifest "nirc_options"). Time constants Xylo holds exactly (its
    # decays are bit shifts, x -= x >> dash: tau = dt / -ln(1 - 2^-dash)), short enough
    # to learn (with Rockpool's 20 ms defaults the layers integrate the whole 24-step
    # digit, saturate and training stalls): dash 1 (1.44 ms) synapses, dash 3 (7.49 ms)
    # membranes at Rockpool's dt of 1 ms.
    lif = dict(max_spikes_per_dt=ROCKPOOL_MAX_SPIKES, tau_syn=_bitshift_tau(1),
               tau_mem=_bitshift_tau(3))
    net = Sequential(LinearTorch((8, hidden)), LIFTorch(hidden, has_rec=True, **lif),
                     LinearTorch((hidden, CLASSES)), LIFTorch(CLASSES, **lif))

    def forward(x):
        net.reset_state()
        out, _, _ = net(x.transpose(0, 1))     # Rockpool takes (batch, time, channels)
        return out.transpose(0, 1)

    def export():
        with _nir_without_type_check():
            graph = to_nir(net)
        _add_recurrence(graph, "1_LIFTorch", net[1].w_rec.detach().numpy())
        return graph
    return net, forward, export


def _add_recurrence(graph, name: str, w_rec: np.ndarray) -> None:
    """Put back the recurrent weights Rockpool 3.1's exporter leaves out.

    Its exporter writes LIFTorch(has_rec=True) as a plain CubaLIF: w_rec is silently
    dropped (so is a trained bias, which is why only weights are trained here). This
    writes the layer the way Rockpool's own importer (rockpool.nn.modules.torch.nir,
    from_nir) reads a recurrent LIFTorch: a subgraph of the CubaLIF and a Linear from
    its output back to its input, weight = w_rec.T.
    """
    import nir

    lif = graph.nodes[name]
    n = w_rec.shape[0]
    sub = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([n])}), "lif": lif,
               "w_rec": nir.Linear(weight=np.ascontiguousarray(w_rec.T)),
               "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        metadata={}, type_check=False)
    graph.nodes[name] = sub


def norse_mlp():
    import norse.torch as norse
    from norse.torch.utils.export_nir import to_nir

    def cell(n):
        # Norse's default LIFParameters, per neuron: with its 0-d defaults the exported file
        # cannot be written (h5py refuses compressed scalar datasets in nir.write).
        d = norse.LIFParameters()
        return norse.LIFCell(norse.LIFParameters(
            **{k: torch.full((n,), float(getattr(d, k))) for k in
               ("tau_syn_inv", "tau_mem_inv", "v_leak", "v_th", "v_reset")}))

    net = norse.SequentialState(torch.nn.Linear(64, 96), cell(96),
                                torch.nn.Linear(96, CLASSES), cell(CLASSES))

    def forward(x):
        state, out = None, []
        for xt in x:
            z, state = net(xt, state)
            out.append(z)
        return torch.stack(out)
    return net, forward, lambda: to_nir(net, torch.zeros(64))


# name: (builder, framework, encoding, input shape, epochs, learning rate)
MODELS: dict[str, tuple[Callable, str, str, tuple[int, ...], int, float]] = {
    "snntorch_mlp": (snntorch_mlp, "snntorch", "rate", (64,), 10, 2e-3),
    "snntorch_cnn": (snntorch_cnn, "snntorch", "rate", (1, 8, 8), 10, 3e-3),
    "snntorch_rsynaptic": (snntorch_rsynaptic, "snntorch", "rows", (8,), 60, 5e-3),
    "sinabs_cnn": (sinabs_cnn, "sinabs", "rate", (1, 8, 8), 10, 2e-3),
    "rockpool_lif": (rockpool_lif, "rockpool", "rows", (8,), 60, 2e-3),
    "norse_mlp": (norse_mlp, "norse", "rate", (64,), 10, 2e-3),
}


def trainable(framework: str, parameter: str) -> bool:
    """Rockpool: only the weights (its exporter drops trained biases, and Xylo takes one tau
    and threshold per population); the other frameworks: every parameter torch sees."""
    return framework != "rockpool" or parameter.endswith(("weight", "w_rec"))


def train(name: str, data, test_inputs: dict[str, np.ndarray], epochs: int | None = None
          ) -> tuple[object, np.ndarray, dict]:
    """Train ``name``; (NIR graph, framework output counts on the test inputs, manifest entry)."""
    builder, framework, encoding, shape, default_epochs, lr = MODELS[name]
    epochs = default_epochs if epochs is None else epochs
    seeded()
    net, forward, export = builder()
    x_train, y_train, _, y_test = data
    rng = np.random.default_rng(SEED + 1)
    gen = torch.Generator().manual_seed(SEED + 1)
    params = [p for n, p in torch.nn.Module.named_parameters(net) if trainable(framework, n)]
    optimiser = torch.optim.Adam(params, lr=lr)
    labels = torch.from_numpy(y_train)
    started = time.perf_counter()
    for _ in range(epochs):
        spikes = encode(encoding, x_train, rng)         # a fresh draw every epoch
        for batch in torch.randperm(len(labels), generator=gen).split(100):
            counts = forward(shaped(spikes[:, batch.numpy()], shape)).sum(0)
            loss = torch.nn.functional.cross_entropy(counts * LOGIT_SCALE.get(framework, 1.0),
                                                     labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        counts = forward(shaped(test_inputs[encoding], shape)).sum(0).numpy()
    for p in torch.nn.Module.parameters(net):
        p.requires_grad_(False)     # some exporters write parameters without detaching
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            graph = export()
    if not isinstance(graph.metadata, dict):
        graph.metadata = {}      # nir 1.0.8's NIRGraph defaults metadata to the dict class
    accuracy = float(np.mean(counts.argmax(1) == y_test))
    entry = {"file": f"{name}.nir", "framework": framework, "encoding": encoding,
             "input_shape": list(shape), "epochs": epochs,
             "nirc_options": NIRC_OPTIONS.get(name, {}),
             "framework_accuracy": accuracy}
    graph.metadata.update(source=f"{framework} exporter, trained on sklearn digits ({encoding} "
                                 f"encoding, {epochs} epochs)",
                          script="examples/train_digits.py", seed=SEED)
    print(f"{name:20s} {framework:9s} test accuracy {100 * accuracy:.1f} % "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    return graph, counts.astype(np.float32), entry


def write(path: Path, graph) -> None:
    import nir

    graph.edges = sorted(graph.edges)       # nirtorch lists edges in set order
    nir.write(path, graph)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(MODELS), action="append",
                        help="train only this model (repeatable; the others keep their files)")
    parser.add_argument("--out-dir", type=Path, default=HERE / "digits")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override every model's epoch count (quick trials)")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    data = digits_split()
    rng = np.random.default_rng(SEED)
    test_inputs = {enc: encode(enc, data[2], rng) for enc in ENCODINGS}

    manifest_path = args.out_dir / "manifest.json"
    reference_path = args.out_dir / "reference.npz"
    manifest = json.loads(manifest_path.read_text()) if args.only and \
        manifest_path.exists() else {"models": {}}
    reference = dict(np.load(reference_path)) if args.only and reference_path.exists() else {}
    reference.update({f"input_{enc}": x for enc, x in test_inputs.items()}, labels=data[3])
    # Calibration samples for nirc compile --calibration: training images, not test ones.
    cal_rng = np.random.default_rng(SEED + 2)
    reference.update({f"calibration_{enc}": encode(enc, data[0][:CALIBRATION], cal_rng)
                      for enc in ENCODINGS})
    manifest.update(calibration={"samples": CALIBRATION, "from": "the first training images"},
                    split={"seed": SEED, "train": TRAIN, "test": int(len(data[3]))},
                    encodings=ENCODINGS, script="examples/train_digits.py")
    for name in args.only or MODELS:
        graph, counts, entry = train(name, data, test_inputs, args.epochs)
        write(args.out_dir / entry["file"], graph)
        reference[f"counts_{name}"] = counts
        manifest["models"][name] = entry
    manifest["models"] = dict(sorted(manifest["models"].items(),
                                     key=lambda kv: list(MODELS).index(kv[0])))
    np.savez_compressed(reference_path, **reference)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
