"""NIR file loading: nirc.nirio.read against the reference nir.read, side by side.

    .venv/bin/python benchmarks/bench_nirio.py [--repeats 7]

Files, all written by nir.write (gzip, as it does by default):
- wide:  1024 -> 1024 -> 1024 -> 10, Affine + LIF, float32 (decompression-bound);
- deep:  300 x (Linear 16x16 + LIF) — 602 small nodes (per-node overhead-bound);
- conv:  2x34x34 -> Conv2d 16 -> SumPool2d -> Conv2d 32 -> Flatten -> Affine 10, + IF;
- quirk: a Norse-style export (batch dimension in Input/Output, 0-d LIF parameters),
  which nir.read (type_check=True) refuses; nirc repairs it with warnings.

nirc.read also validates every parameter and infers every shape; nir.read builds its
objects and type-checks. For nirc, the run also times what `nirc inspect` does (read +
summarize) and, separately, recognising the exporter (nirc.convention.detect), which
must add under 5% to inspect (wide: 2.1M synapses). Times are process CPU seconds (the machine is shared, so wall
time measures the neighbours); prints the median and the ratio nir/nirc (> 1: nirc
faster) and writes benchmarks/results/nirio.json. BLAS is pinned to one thread.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from nirc.convention import detect  # noqa: E402
from nirc.ir.summary import summarize  # noqa: E402
from nirc.nirio import read  # noqa: E402

from _timing import median_time  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "nirio.json"


def _lif(nir, n: int, dtype=np.float32):
    return nir.LIF(tau=np.full(n, 0.01, dtype), r=np.ones(n, dtype), v_leak=np.zeros(n, dtype),
                   v_threshold=np.ones(n, dtype))


def _chain(nir, layers: list[tuple[str, object]], in_shape, out_shape):
    nodes = {"input": nir.Input(input_type=np.array(in_shape))}
    edges, prev = [], "input"
    for name, node in layers:
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    nodes["output"] = nir.Output(output_type=np.array(out_shape))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def wide(nir, rng):
    sizes, layers = (1024, 1024, 1024, 10), []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [(f"fc{i}", nir.Affine(weight=rng.normal(size=(b, a)).astype(np.float32),
                                         bias=np.zeros(b, np.float32))),
                   (f"lif{i}", _lif(nir, b))]
    return _chain(nir, layers, [1024], [10])


def deep(nir, rng):
    layers = []
    for i in range(300):
        layers += [(f"fc{i}", nir.Linear(weight=rng.normal(size=(16, 16)))),
                   (f"lif{i}", _lif(nir, 16, np.float64))]
    return _chain(nir, layers, [16], [16])


def conv(nir, rng):
    def conv2d(c_out, c_in, size):
        return nir.Conv2d(input_shape=(size, size),
                          weight=rng.normal(size=(c_out, c_in, 3, 3)).astype(np.float32),
                          stride=1, padding=1, dilation=1, groups=1,
                          bias=np.zeros(c_out, np.float32))

    def if_(shape):
        return nir.IF(r=np.ones(shape, np.float32), v_threshold=np.ones(shape, np.float32))

    layers = [("conv0", conv2d(16, 2, 34)), ("if0", if_((16, 34, 34))),
              ("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                     padding=np.array([0, 0]))),
              ("conv1", conv2d(32, 16, 17)), ("if1", if_((32, 17, 17))),
              ("flat", nir.Flatten(input_type={"input": np.array([32, 17, 17])}, start_dim=0)),
              ("fc", nir.Affine(weight=rng.normal(size=(10, 32 * 17 * 17)).astype(np.float32),
                                bias=np.zeros(10, np.float32))),
              ("if2", if_((10,)))]
    return _chain(nir, layers, [2, 34, 34], [10])


def quirk(path: Path) -> None:
    """A Norse-style export, written as nir.write leaves it (uncompressed 0-d parameters)."""
    with h5py.File(path, "w") as f:
        f.create_dataset("version", data="1.0.8", dtype=h5py.string_dtype())
        g = f.create_group("node")
        g.create_dataset("type", data="NIRGraph", dtype=h5py.string_dtype())
        g.create_dataset("edges", data=np.array([["input", "fc"], ["fc", "lif"],
                                                 ["lif", "output"]], dtype=object),
                         dtype=h5py.string_dtype())
        nodes = g.create_group("nodes")
        for name, params in {
                "input": {"type": "Input", "shape": np.array([1, 784])},
                "fc": {"type": "Affine", "weight": np.ones((128, 784), np.float32),
                       "bias": np.zeros(128, np.float32)},
                "lif": {"type": "LIF", "tau": np.float32(1e-2), "r": np.float32(1),
                        "v_leak": np.float32(0), "v_threshold": np.float32(1),
                        "v_reset": np.float32(0)},
                "output": {"type": "Output", "shape": np.array([1, 128])}}.items():
            node = nodes.create_group(name)
            for key, value in params.items():
                if isinstance(value, str):
                    node.create_dataset(key, data=value, dtype=h5py.string_dtype())
                else:
                    node.create_dataset(key, data=value)


def median_seconds(fn, path: Path, repeats: int) -> float:
    """Median CPU seconds of ``fn(path)``, after one call that warms the OS cache and imports."""
    fn(path)
    return median_time(lambda: fn(path), repeats, clock=time.process_time)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import nir

    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = {}
        for name, build in (("wide", wide), ("deep", deep), ("conv", conv)):
            files[name] = Path(tmp) / f"{name}.nir"
            nir.write(files[name], build(nir, rng))
        files["quirk"] = Path(tmp) / "quirk.nir"
        quirk(files["quirk"])
        for name, path in files.items():
            mine = median_seconds(read, path, args.repeats)
            try:
                theirs = median_seconds(nir.read, path, args.repeats)
            except Exception as err:  # the reference reader's own failure is the result
                theirs, note = None, f"nir.read fails: {type(err).__name__}"
            else:
                note = ""
            inspect_s = median_seconds(lambda p: summarize(read(p)), path, args.repeats)
            graph = read(path)
            detect_s = median_time(lambda: detect(graph), args.repeats, clock=time.process_time)
            rows.append({"file": name, "bytes": path.stat().st_size, "nodes": _count(path),
                         "nirc_read_s": mine, "nir_read_s": theirs,
                         "nir_over_nirc": None if theirs is None else theirs / mine,
                         "inspect_s": inspect_s, "detect_s": detect_s,
                         "detect_share_of_inspect": detect_s / inspect_s,
                         "exporter": detect(graph).exporter, "note": note})
    print(f"nir {nir.__version__}, median CPU time of {args.repeats}")
    print(f"{'file':<7}{'nodes':>6}{'MB':>7}{'nirc ms':>10}{'nir ms':>10}{'nir/nirc':>10}"
          f"{'inspect ms':>12}{'detect ms':>11}{'detect %':>10}  exporter")
    for r in rows:
        theirs = "-" if r["nir_read_s"] is None else f"{r['nir_read_s'] * 1e3:.1f}"
        ratio = "-" if r["nir_over_nirc"] is None else f"{r['nir_over_nirc']:.2f}"
        print(f"{r['file']:<7}{r['nodes']:>6}{r['bytes'] / 1e6:>7.2f}"
              f"{r['nirc_read_s'] * 1e3:>10.1f}{theirs:>10}{ratio:>10}"
              f"{r['inspect_s'] * 1e3:>12.1f}{r['detect_s'] * 1e3:>11.2f}"
              f"{100 * r['detect_share_of_inspect']:>9.2f}%  {r['exporter']}  {r['note']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"nir_version": nir.__version__, "repeats": args.repeats,
                                   "files": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


def _count(path: Path) -> int:
    with h5py.File(path) as f:
        return len(f["node/nodes"])


if __name__ == "__main__":
    raise SystemExit(main())
