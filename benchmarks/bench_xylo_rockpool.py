"""Rockpool's own Xylo deployment against nirc's, on the trained Rockpool digits model.

    .venv/bin/python benchmarks/bench_xylo_rockpool.py [--samples N]

examples/digits/rockpool_lif.nir is a Rockpool LIFTorch network (8 -> 64 recurrent ->
10, at most 31 spikes per step, trained by examples/train_digits.py) - the vendor's
training model for the vendor's chip. Side by side on the same held-out digits:

- rockpool: the network rebuilt in Rockpool from the file's weights and time constants
  (Rockpool 3.1's own ``from_nir`` fails on this file with the installed nirtorch), run
  by Rockpool; its counts must equal the framework's stored ones;
- rockpool, readout <= 1 spike/step: the same with the readout's ``max_spikes_per_dt``
  set to 1, as Xylo's readout neurons fire - what any Xylo deployment of these weights
  can reach at best with its output read as spike counts;
- rockpool, recurrent weights dropped: what Rockpool 3.1's exporter alone would have
  written (it writes a recurrent LIFTorch as a plain CubaLIF; the training script puts
  the weights back, so the file and the framework agree);
- rockpool pipeline: Rockpool's Xylo path - its XyloIMU mapper (``syns63300.mapper``;
  when it fails, the same allocation by hand, which for this network is the identity:
  inputs 0-7, hidden 0-63, readout 0-9, and the mapper's own tau -> dash rule), its
  ``global_quantize`` and ``channel_quantize``, and its ``XyloSim`` (xylosim) per sample;
- nirc: ``nirc compile --target xylo_imu`` with the stored calibration digits, run by
  nirc's emulator and, from the same emitted config, by Rockpool's XyloSim.

Columns: accuracy, same winner as the framework, output count correlation with the
framework. Needs rockpool and xylosim (samna is stubbed: only its simulator is used).
Prints a table and writes benchmarks/results/xylo_rockpool.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import tempfile
import types
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("PIP_NO_INDEX", "1")      # rockpool's import tries to pip-install samna

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"
MODEL = "rockpool_lif"


def rockpool_xylo():
    """(mapper, XyloSim, global_quantize, channel_quantize, hidden/readout graph classes) of
    Rockpool's XyloIMU package, imported without its samna-only modules."""
    sys.modules.setdefault("samna", types.ModuleType("samna"))
    import rockpool

    base = Path(rockpool.__file__).parent / "devices" / "xylo"
    for name, path in [("rockpool.devices.xylo", base), ("rockpool.devices.xylo.syns61300", base / "syns61300"),
                       ("rockpool.devices.xylo.syns61201", base / "syns61201"),
                       ("rockpool.devices.xylo.syns63300", base / "syns63300")]:
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package
    graph_modules = importlib.import_module("rockpool.devices.xylo.syns61201.xylo_graph_modules")
    for key in dir(graph_modules):
        if not key.startswith("_"):
            setattr(sys.modules["rockpool.devices.xylo.syns61201"], key, getattr(graph_modules, key))
    mapper = importlib.import_module("rockpool.devices.xylo.syns63300.xylo_mapper").mapper
    sim = importlib.import_module("rockpool.devices.xylo.syns63300.xylo_sim").XyloSim
    imu = importlib.import_module("rockpool.devices.xylo.syns63300.xylo_graph_modules")
    from rockpool.transform.quantize_methods import channel_quantize, global_quantize

    return mapper, sim, global_quantize, channel_quantize, imu


def rockpool_network(max_spikes_readout: int = 31, recurrent: bool = True):
    """The trained network rebuilt in Rockpool (LinearTorch, recurrent LIFTorch, LinearTorch,
    LIFTorch) from the NIR file's weights and parameters (``recurrent=False``: without its
    recurrent weights, as Rockpool 3.1's own exporter writes a recurrent LIFTorch)."""
    import torch
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules.torch.lif_torch import LIFTorch
    from rockpool.nn.modules.torch.linear_torch import LinearTorch

    from nirc.ir.graph import flatten
    from nirc.nirio import read

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = flatten(read(DIGITS / f"{MODEL}.nir"))
    hidden, readout = g.nodes["1_LIFTorch.lif"], g.nodes["3_LIFTorch"]

    def t(a):
        return torch.as_tensor(np.asarray(a, np.float32))

    def lif(node, size, max_spikes, **extra):
        return LIFTorch(size, tau_syn=t(node.tau_syn), tau_mem=t(node.tau_mem), threshold=t(node.v_threshold),
                        bias=t(node.v_leak * 0), dt=1e-3, max_spikes_per_dt=max_spikes, **extra)

    w_rec = g.nodes["1_LIFTorch.w_rec"].weight * (1.0 if recurrent else 0.0)
    return Sequential(LinearTorch((8, 64), weight=t(g.nodes["0_LinearTorch"].weight.T), has_bias=False),
                      lif(hidden, 64, 31, has_rec=True, w_rec=t(w_rec.T)),
                      LinearTorch((64, 10), weight=t(g.nodes["2_LinearTorch"].weight.T), has_bias=False),
                      lif(readout, 10, max_spikes_readout))


def run_rockpool(net, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        net.reset_state()
        out, _, _ = net(torch.from_numpy(x.astype(np.float32)).transpose(0, 1))
    return out.sum(1).numpy()


def vendor_specification(net, mapper, imu) -> tuple[dict, str | None]:
    """Rockpool's float Xylo specification of ``net``: its mapper's, or when the mapper fails
    the identity allocation with the mapper's own neuron conversion (tau -> dash = log2(tau/dt))."""
    try:
        spec = mapper(net.as_graph(), weight_dtype="float", threshold_dtype="float", dash_dtype="float")
        spec.pop("mapped_graph", None)
        return spec, None
    except Exception as err:       # Rockpool 3.1's IMU mapper: see the module docstring
        failure = f"{type(err).__name__}: {err}"
    from rockpool.graph import GenericNeurons, find_modules_of_subclass

    neurons = find_modules_of_subclass(net.as_graph(), GenericNeurons)
    hidden = imu.XyloIMUHiddenNeurons._convert_from(neurons[0])
    readout = imu.XyloIMUOutputNeurons._convert_from(neurons[1])
    spec = dict(weights_in=net[0].weight.detach().numpy()[:, :, None].astype(float),
                weights_rec=net[1].w_rec.detach().numpy()[:, :, None].astype(float),
                weights_out=net[2].weight.detach().numpy().astype(float),
                dash_mem=np.asarray(hidden.dash_mem), dash_syn=np.asarray(hidden.dash_syn),
                dash_syn_2=np.asarray(hidden.dash_syn), threshold=np.asarray(hidden.threshold),
                bias=np.asarray(hidden.bias), dash_mem_out=np.asarray(readout.dash_mem),
                dash_syn_out=np.asarray(readout.dash_syn), threshold_out=np.asarray(readout.threshold),
                bias_out=np.asarray(readout.bias), dt=1e-3)
    return spec, failure


def run_xylosim(sim_class, spec: dict, x: np.ndarray, output: dict | None = None) -> np.ndarray:
    """Output spike counts (B, 10) of Rockpool's XyloSim on ``x`` (T, B, 8), one sample at a time;
    an ``output`` of a nirc config read through count relays is decoded from the readout's
    recorded synaptic current (``Isyn_out``) as the config says."""
    from nirc.targets.xylo.relay import decode_counts

    sim = sim_class.from_specification(**spec, verify_config=False)   # verifying needs samna
    relayed = output is not None and output.get("read") == "i_syn_out"
    counts = []
    for b in range(x.shape[1]):
        sim.reset_state()
        out, _, rec = sim(x[:, b].astype(int), record=relayed)
        if relayed:
            a, z = output["neurons"]
            out = decode_counts(np.asarray(rec["Isyn_out"])[:, a:z], output["charges_per_spike"])
        counts.append(np.asarray(out).sum(0))
    return np.asarray(counts, np.float64)


def nirc_build(directory: Path, reference: dict, entry: dict) -> Path:
    from nirc.driver import compile as compile_model

    cal = reference[f"calibration_{entry['encoding']}"].astype(np.float64)
    np.savez(directory / "calibration.npz", input=cal)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compile_model(DIGITS / entry["file"], "xylo_imu", directory / "build",
                      convention={"exporter": "auto", **entry["nirc_options"]},
                      calibration=str(directory / "calibration.npz"), calibration_steps=0)
    return directory / "build"


def row(name: str, counts: np.ndarray, labels: np.ndarray, framework: np.ndarray, note: str = "") -> dict:
    corr = float(np.corrcoef(counts.ravel(), framework.ravel())[0, 1]) if counts.std() else None
    return {"pipeline": name, "accuracy": float(np.mean(counts.argmax(1) == labels)),
            "same_winner": float(np.mean(counts.argmax(1) == framework.argmax(1))),
            "count_correlation": corr, "note": note}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=None, help="only the first N test digits")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    manifest = json.loads((DIGITS / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["models"][MODEL]
    with np.load(DIGITS / "reference.npz") as data:
        reference = {k: data[k] for k in data.files}
    x = reference["input_rows"][:, :args.samples].astype(np.float64)
    labels = reference["labels"][:args.samples]
    framework = reference[f"counts_{MODEL}"][:args.samples].astype(np.float64)
    mapper, sim_class, global_quantize, channel_quantize, imu = rockpool_xylo()

    rows = []
    net = rockpool_network()
    rebuilt = run_rockpool(net, x)
    rows.append(row("rockpool (framework)", rebuilt, labels, framework,
                    f"max |counts - stored framework counts| = {np.abs(rebuilt - framework).max():g}"))
    rows.append(row("rockpool, readout <= 1 spike/step", run_rockpool(rockpool_network(1), x), labels,
                    framework, "Xylo's readout rule in Rockpool's own forward pass"))
    rows.append(row("rockpool, recurrent weights dropped", run_rockpool(rockpool_network(recurrent=False), x),
                    labels, framework, "what Rockpool 3.1's to_nir keeps of a recurrent LIFTorch "
                    "(examples/train_digits.py writes them back)"))
    spec, failure = vendor_specification(net, mapper, imu)
    mapped = "mapper" if failure is None else "identity allocation (mapper failed)"
    for quantize in (global_quantize, channel_quantize):
        quantized = {**spec, **quantize(**spec)}
        rows.append(row(f"rockpool pipeline: {quantize.__name__} + XyloSim",
                        run_xylosim(sim_class, quantized, x), labels, framework, mapped))
    with tempfile.TemporaryDirectory(prefix="nirc-xylo-rockpool-") as tmp:
        build = nirc_build(Path(tmp), reference, entry)
        from nirc.emulator import Chip
        from nirc.targets.xylo.config import read_config, rockpool_specification

        report = json.loads((build / "report.json").read_text())
        config = json.loads((build / "config.json").read_text())
        (output,) = config["outputs"]
        read = next(p["name"] for p in config["readout"] if p["neurons"] == output["neurons"])
        lag = report["pass_reports"]["latency_steps"][read]
        padded = np.concatenate([x, np.zeros((lag, *x.shape[1:]))])
        run = Chip.load(build).run({"input": padded}, batch=True)
        (out,) = run.outputs.values()
        emulated = out[lag:].sum(0).reshape(x.shape[1], -1).astype(np.float64)
        rows.append(row("nirc compile --target xylo_imu (emulator)", emulated, labels, framework,
                        "calibrated on 64 training digits"))
        nirc_spec, _ = read_config(build)
        in_rockpool = run_xylosim(sim_class, rockpool_specification(nirc_spec), padded, output)
        rows.append(row("nirc's config in Rockpool's XyloSim", in_rockpool, labels, framework,
                        "bit-exact" if np.array_equal(
                            in_rockpool, out.sum(0).reshape(x.shape[1], -1)) else "DIFFERS"))
    print("| pipeline | accuracy | same winner | count corr. | note |")
    print("|---|---|---|---|---|")
    for r in rows:
        corr = "–" if r["count_correlation"] is None else f"{r['count_correlation']:.3f}"
        print(f"| {r['pipeline']} | {100 * r['accuracy']:.1f} % | {math.floor(1000 * r['same_winner']) / 10:.1f} % | {corr} | "
              f"{r['note']} |")
    if failure:
        print(f"\nRockpool's XyloIMU mapper on this network: {failure}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "xylo_rockpool.json").write_text(json.dumps(
        {"benchmark": "xylo_rockpool", "model": MODEL, "samples": int(len(labels)),
         "mapper_failure": failure, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'xylo_rockpool.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
