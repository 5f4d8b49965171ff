"""Speck benchmark: compile time, layer->core assignment, and emulator throughput.

    .venv/bin/python benchmarks/bench_speck.py [--steps 20] [--repeats 3]

1. Compile: ``nirc.driver.compile`` for speck2f (no calibration) of examples/cnn.nir
   and three generated CNNs (3, 6 and 9 cores); median wall time per stage total.
2. Assignment: nirc's CP-SAT layer->core assignment vs sinabs' get_valid_mapping
   (Edmonds-Karp max-flow, feasibility only) on the same layers; ratio.
3. Emulation: the emulator (reads config.json, kernels) and the integer reference
   (unrolled tables) on Bernoulli(0.1) input, in events/s (spike events entering
   cores) and synaptic updates/s (event x kernel taps that touched a neuron).

Prints a table and writes benchmarks/results/speck.json.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from nirc.driver import compile as nirc_compile  # noqa: E402
from nirc.nirio import read  # noqa: E402
from nirc.targets.speck.assign import LayerToPlace, assign_layers  # noqa: E402
from nirc.targets.speck.chip import load_chip  # noqa: E402
from nirc.targets.speck.emulate import SpeckEmulator  # noqa: E402
from nirc.targets.speck.network import from_hwnet, run_reference  # noqa: E402

from _timing import median_time  # noqa: E402
from speck_networks import affine, chain, conv, flatten, iaf, sumpool  # noqa: E402


def deep_cnn(n_conv: int, size: int = 64, seed: int = 0, gain: float = 1.5):
    """n_conv conv/IF layers (pool 2 after each until the map is 8x8) and one Affine/IF readout."""
    rng = np.random.default_rng(seed)
    nodes, c_in, h = [], 2, size
    for i in range(n_conv):
        c_out = min(8 * 2 ** (i // 2), 64)
        nodes += [(f"conv{i}", conv(rng, c_out, c_in, 3, padding=1, scale=gain / (3 * c_in ** 0.5))),
                  (f"if{i}", iaf((c_out, h, h)))]
        if h > 8:
            nodes.append((f"pool{i}", sumpool(2)))
            h //= 2
        c_in = c_out
    nodes += [("flat", flatten()), ("fc", affine(rng, 10, c_in * h * h, scale=gain / (c_in * h * h) ** 0.5)),
              ("out_if", iaf((10,)))]
    return chain((2, size, size), nodes, (10,))


def sinabs_mapping_time(layers, repeats: int) -> float | None:
    try:
        import torch
        import sinabs.layers as sl
        import sinabs_dynapcnn
    except ImportError:
        return None
    backend = sinabs_dynapcnn.load()
    built = {}
    for i, layer in enumerate(layers):
        g = layer.geometry
        c = torch.nn.Conv2d(g.c_in, g.c_out, g.kernel, stride=g.stride, padding=g.padding)
        built[i] = backend["dynapcnn_layer"].DynapcnnLayer(
            c, sl.IAFSqueeze(batch_size=1), (g.c_in, g.h_in, g.w_in), [[1, 1]], discretize=False)
    constraints = backend["chips.dynapcnn"].DynapcnnConfigBuilder.get_constraints()
    return median_time(lambda: backend["mapping"].get_valid_mapping(built, constraints), repeats)


def synaptic_updates(hw, spikes: dict, inputs: dict) -> tuple[int, int]:
    """(events entering cores, neuron updates they cause), from the unrolled tables."""
    events = updates = 0
    for table in hw.tables:
        counts = inputs[table.source] if table.source in inputs else spikes[table.source]
        per_source = np.asarray(counts).reshape(counts.shape[0], -1).sum(axis=0)
        fan_out = np.diff(sp.csc_array(table.weights).indptr)
        events += int(per_source.sum())
        updates += int(per_source @ fan_out)
    return events, updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("nirc").setLevel(logging.WARNING)
    chip = load_chip("speck2f")
    networks = {"examples/cnn.nir": lambda: read(ROOT / "examples" / "cnn.nir"),
                "cnn_2conv_64x64": lambda: deep_cnn(2), "cnn_5conv_64x64": lambda: deep_cnn(5),
                "cnn_8conv_64x64": lambda: deep_cnn(8)}
    rows = []
    for name, make in networks.items():
        graph = make()
        with tempfile.TemporaryDirectory() as tmp:
            build = Path(tmp) / "build"
            nirc_compile(graph, "speck2f", build, dt=1.0, calibration_steps=0)   # warm-up
            compile_s = median_time(lambda: nirc_compile(graph, "speck2f", build, dt=1.0,
                                                         calibration_steps=0), args.repeats)
            result = nirc_compile(graph, "speck2f", build, dt=1.0, calibration_steps=0)
            emulator = SpeckEmulator.load(build / "config.json")
        hw = result.network
        layers = from_hwnet(hw).layers
        to_place = [LayerToPlace.of(l.name, l.geometry) for l in layers]
        assign_s = median_time(lambda: assign_layers(to_place, chip.cores), args.repeats)
        sinabs_s = sinabs_mapping_time(layers, args.repeats)
        port = next(iter(hw.inputs.values()))
        rng = np.random.default_rng(0)
        x = {port.name: (rng.random((args.steps, *port.shape)) < 0.1).astype(np.int64)}
        emulator.run({k: v[:2] for k, v in x.items()})                     # warm-up
        start = time.perf_counter()
        emulated = emulator.run(x)
        emu_s = time.perf_counter() - start
        start = time.perf_counter()
        reference = run_reference(hw, x)
        ref_s = time.perf_counter() - start
        assert all(np.array_equal(emulated["spikes"][k], reference["spikes"][k])
                   for k in reference["spikes"]), f"{name}: emulator != reference"
        events, updates = synaptic_updates(hw, reference["spikes"], x)
        rows.append({
            "network": name, "cores": len(layers), "neurons": hw.neuron_count,
            "compile_s": compile_s, "assign_cpsat_s": assign_s, "assign_sinabs_maxflow_s": sinabs_s,
            "assign_ratio_cpsat_over_sinabs": (assign_s / sinabs_s) if sinabs_s else None,
            "steps": args.steps, "events": events, "synaptic_updates": updates,
            "emulator_s": emu_s, "reference_s": ref_s,
            "emulator_events_per_s": events / emu_s, "reference_events_per_s": events / ref_s,
            "emulator_updates_per_s": updates / emu_s,
            "ratio_emulator_over_reference_time": emu_s / ref_s,
        })

    head = (f"{'network':<18} {'cores':>5} {'compile s':>9} {'CP-SAT s':>9} {'sinabs s':>9} "
            f"{'ratio':>6} {'events':>9} {'emu ev/s':>10} {'ref ev/s':>10} {'emu upd/s':>10} "
            f"{'emu/ref':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        sin = f"{r['assign_sinabs_maxflow_s']:.4f}" if r["assign_sinabs_maxflow_s"] else "-"
        ratio = f"{r['assign_ratio_cpsat_over_sinabs']:.1f}" if r["assign_ratio_cpsat_over_sinabs"] \
            else "-"
        print(f"{r['network']:<18} {r['cores']:>5} {r['compile_s']:>9.3f} "
              f"{r['assign_cpsat_s']:>9.4f} {sin:>9} {ratio:>6} {r['events']:>9} "
              f"{r['emulator_events_per_s']:>10.0f} {r['reference_events_per_s']:>10.0f} "
              f"{r['emulator_updates_per_s']:>10.0f} {r['ratio_emulator_over_reference_time']:>7.2f}")
    out = ROOT / "benchmarks" / "results" / "speck.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                               "steps": args.steps, "repeats": args.repeats, "rows": rows},
                              indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
