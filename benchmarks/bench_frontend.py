"""Front-end benchmark: loading a NIR file, and simulating it with the float reference simulator.

    .venv/bin/python benchmarks/bench_frontend.py [--steps 500] [--repeats 5]

1. Load: a 1024 -> 1024 LIF -> 1024 LIF -> 10 LIF network (2.1M synapses, float32 weights,
   gzip as nir.write does) written once by nir.write; median time of nirc.nirio.read vs
   nir.read on that same file, and their ratio.
2. Simulate: nirc.simulate on that network and on examples/cnn.nir with Bernoulli(0.1)
   input; neuron-steps/s and synaptic events/s (an event is one spike reaching one
   synapse: spikes into a layer times its fan-out, convolutions counted per tap),
   for batch sizes 1 and 32.

Prints a table and writes benchmarks/results/frontend.json. BLAS runs on one thread
unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS say otherwise: on a shared machine,
OpenBLAS's spinning worker threads turn timings into noise.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from _timing import median_time  # noqa: E402

from nirc.ir.graph import flatten, infer_shapes  # noqa: E402
from nirc.ir.nodes import NEURON_TYPES, Affine, Conv2d, Input, Linear, NIRGraph, SumPool2d  # noqa: E402
from nirc.nirio import read  # noqa: E402
from nirc.simulate import simulate  # noqa: E402

HERE = Path(__file__).resolve().parent
LAYERS = (1024, 1024, 1024, 10)


def dense_network(seed: int = 0):
    """The benchmark MLP as a nir.NIRGraph (written by the reference package itself)."""
    import nir

    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type=np.array([LAYERS[0]]))}
    edges, previous = [], "input"
    for k, (n_in, n_out) in enumerate(zip(LAYERS, LAYERS[1:])):
        # Scaled so that each layer keeps firing at roughly the input's rate.
        weight = (rng.normal(size=(n_out, n_in)) * 1.2 / np.sqrt(n_in * 0.1)).astype(np.float32)
        nodes[f"fc{k}"] = nir.Affine(weight=weight, bias=np.zeros(n_out, dtype=np.float32))
        nodes[f"lif{k}"] = nir.LIF(tau=np.full(n_out, 2e-3, np.float32), r=np.ones(n_out, np.float32),
                                   v_leak=np.zeros(n_out, np.float32),
                                   v_threshold=np.ones(n_out, np.float32),
                                   v_reset=np.zeros(n_out, np.float32))
        edges += [(previous, f"fc{k}"), (f"fc{k}", f"lif{k}")]
        previous = f"lif{k}"
    nodes["output"] = nir.Output(output_type=np.array([LAYERS[-1]]))
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def synapse_count(graph: NIRGraph) -> int:
    shapes = infer_shapes(flatten(graph))
    total = 0
    for name, node in flatten(graph).nodes.items():
        if isinstance(node, (Affine, Linear)):
            total += node.weight.size
        elif isinstance(node, Conv2d):
            total += int(np.prod(shapes[name].output)) * int(np.prod(node.weight.shape[1:]))
    return total


def synaptic_events(graph: NIRGraph, spikes_in: dict[str, float]) -> float:
    """Spike arrivals x fan-out summed over weight layers (needs each layer's input spike count)."""
    flat = flatten(graph)
    events = 0.0
    for name, node in flat.nodes.items():
        if not isinstance(node, (Affine, Linear, Conv2d, SumPool2d)):
            continue
        count = sum(spikes_in.get(p, 0.0) for p in flat.predecessors(name))
        if isinstance(node, (Affine, Linear)):
            events += count * node.weight.shape[0]
        elif isinstance(node, Conv2d):
            # Each input spike reaches C_out * kH * kW / (stride_h * stride_w) outputs on average.
            sh, sw = node.stride_t()
            events += count * node.weight.shape[0] * np.prod(node.kernel) / (sh * sw) \
                / node.groups
        else:
            events += count   # a pooling window passes each spike to one output
    return events


def spike_counts(graph: NIRGraph, inputs: dict[str, np.ndarray], result) -> dict[str, float]:
    """Spikes each node emits in total (Inputs: their spikes; pooling/flatten pass counts on)."""
    flat = flatten(graph)
    counts = {name: float(np.sum(arr)) for name, arr in inputs.items()}
    counts.update({name: float(train.sum()) for name, train in result.spikes.items()})
    # Stateless pass-through nodes between neuron layers (pool, flatten) carry their source's spikes.
    for name in flat.nodes:
        if name not in counts and not isinstance(flat.nodes[name], (Affine, Linear, Conv2d)):
            counts[name] = sum(counts.get(p, 0.0) for p in flat.predecessors(name))
    return counts


def bench_simulation(label: str, graph: NIRGraph, steps: int, batch: int, repeats: int,
                     dt: float | None) -> dict:
    flat = flatten(graph)
    shapes = infer_shapes(flat)
    neurons = sum(int(np.prod(shapes[n].output)) for n, node in flat.nodes.items()
                  if isinstance(node, NEURON_TYPES))
    rng = np.random.default_rng(1)
    inputs = {name: (rng.random((steps, batch, *shapes[name].output)) < 0.1).astype(np.float32)
              for name, node in flat.nodes.items() if isinstance(node, Input)}
    result = None

    def run():
        nonlocal result
        result = simulate(graph, inputs, dt=dt, batch=True)

    seconds = median_time(run, repeats)
    events = synaptic_events(graph, spike_counts(graph, inputs, result))
    rates = {n: round(float(s.mean()), 4) for n, s in result.spikes.items()}
    return {"model": label, "batch": batch, "steps": steps, "neurons": neurons,
            "synapses": synapse_count(graph), "seconds": seconds,
            "neuron_steps_per_s": neurons * steps * batch / seconds,
            "synaptic_events_per_s": events / seconds, "spike_rates": rates}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "frontend.json")
    args = parser.parse_args(argv)
    import nir

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dense.nir"
        nir.write(path, dense_network())
        size = path.stat().st_size
        t_nirc = median_time(lambda: read(path), args.repeats)
        t_nir = median_time(lambda: nir.read(path), args.repeats)
        dense = read(path)
    load = {"file_bytes": size, "synapses": synapse_count(dense), "nirc_read_s": t_nirc,
            "nir_read_s": t_nir, "nir_over_nirc": t_nir / t_nirc, "nir_version": nir.__version__}

    cnn = read(HERE.parent / "examples" / "cnn.nir")
    sims = [bench_simulation("dense 1024-1024-1024-10 LIF", dense, args.steps, b, args.repeats,
                             dt=1e-3) for b in (1, 32)]
    sims += [bench_simulation("examples/cnn.nir (Conv+IF, 2x34x34)", cnn, max(args.steps // 5, 1),
                              b, args.repeats, dt=None) for b in (1, 32)]

    print(f"Load: {load['synapses'] / 1e6:.2f}M synapses, {size / 1e6:.1f} MB file")
    print(f"  {'reader':<18}{'median s':>10}")
    print(f"  {'nirc.nirio.read':<18}{t_nirc:>10.4f}")
    print(f"  {'nir.read ' + nir.__version__:<18}{t_nir:>10.4f}")
    print(f"  nir.read / nirc.nirio.read = {load['nir_over_nirc']:.2f}x")
    print()
    print(f"{'simulation':<38}{'batch':>6}{'steps':>7}{'neurons':>9}{'s':>9}"
          f"{'neuron-steps/s':>16}{'syn. events/s':>15}")
    for row in sims:
        print(f"{row['model']:<38}{row['batch']:>6}{row['steps']:>7}{row['neurons']:>9}"
              f"{row['seconds']:>9.3f}{row['neuron_steps_per_s']:>16.3g}"
              f"{row['synaptic_events_per_s']:>15.3g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "processor": platform.processor() or platform.machine(),
                    "blas_threads": os.environ["OPENBLAS_NUM_THREADS"]},
        "load": load, "simulate": sims}, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
