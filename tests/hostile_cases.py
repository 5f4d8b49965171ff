"""Hostile inputs for nirc: named regression cases and seeded mutations of NIR files,
target YAMLs, NPZ inputs (issue 11) and the config.json of builds that ``emulate`` reads. Used by tests/test_hostile_inputs.py (a short
fuzz run and one test per named case) and tools/fuzz_hostile.py (the long run that
reports counts). Files are built with h5py, zipfile and plain text — never with nirc's own
writers — so a writer cannot hide a reader bug.

A case is (name, argv, files): ``files`` writes what the case needs into a folder and
returns nothing; ``argv`` is the nirc command line, with ``{d}`` standing for that folder.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import struct
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from h5tree import graph_tree, nested_graph_tree, write_tree  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHIPPED_TARGETS = REPO / "targets"
FAST = ["--calibration-steps", "0"]


@dataclass
class Case:
    name: str
    argv: list[str]
    files: Callable[[Path], None]
    kind: str = "nir"            # nir | yaml | npz | config (what is hostile)
    output: str | None = None    # a path (relative to the folder) that must not appear on failure


# --- seed models ----------------------------------------------------------------------------

def _lif(n: int, tau: float = 0.02) -> dict:
    return {"type": "LIF", "tau": np.full(n, tau), "r": np.ones(n), "v_leak": np.zeros(n),
            "v_threshold": np.ones(n), "v_reset": np.zeros(n)}


def _if(shape) -> dict:
    return {"type": "IF", "r": np.ones(shape), "v_threshold": np.ones(shape),
            "v_reset": np.zeros(shape)}


def mlp_tree(n_in: int = 4, n_hidden: int = 3) -> dict:
    return graph_tree({"input": {"type": "Input", "shape": np.array([n_in])},
                       "fc": {"type": "Affine", "weight": np.full((n_hidden, n_in), 0.5),
                              "bias": np.zeros(n_hidden)},
                       "lif": _lif(n_hidden),
                       "output": {"type": "Output", "shape": np.array([n_hidden])}},
                      [("input", "fc"), ("fc", "lif"), ("lif", "output")])


def deep_tree() -> dict:
    """Input 4 -> 6 LIF -> 3 LIF -> output: a hidden layer and a readout (runs on Xylo)."""
    return graph_tree({"input": {"type": "Input", "shape": np.array([4])},
                       "fc0": {"type": "Affine", "weight": np.full((6, 4), 0.6),
                               "bias": np.zeros(6)},
                       "lif0": _lif(6),
                       "fc1": {"type": "Affine", "weight": np.full((3, 6), 0.4),
                               "bias": np.zeros(3)},
                       "lif1": _lif(3),
                       "output": {"type": "Output", "shape": np.array([3])}},
                      [("input", "fc0"), ("fc0", "lif0"), ("lif0", "fc1"), ("fc1", "lif1"),
                       ("lif1", "output")])


def cnn_tree() -> dict:
    """Input (2, 8, 8) -> conv 4x3x3 -> IF -> output: runs on Speck."""
    rng = np.random.default_rng(0)
    return graph_tree({"input": {"type": "Input", "shape": np.array([2, 8, 8])},
                       "conv": {"type": "Conv2d", "weight": rng.normal(0, 0.5, (4, 2, 3, 3)),
                                "bias": np.zeros(4), "stride": np.array([1, 1]),
                                "padding": np.array([1, 1]), "dilation": np.array([1, 1]),
                                "groups": np.array(1)},
                       "if": _if((4, 8, 8)),
                       "output": {"type": "Output", "shape": np.array([4, 8, 8])}},
                      [("input", "conv"), ("conv", "if"), ("if", "output")])


def nested_tree() -> dict:
    return nested_graph_tree(_lif(3))


SEEDS = {"mlp": mlp_tree, "deep": deep_tree, "cnn": cnn_tree, "nested": nested_tree}
TARGET_OF_SEED = {"mlp": ["loihi2", "spinnaker2"], "deep": ["loihi2", "xylo", "xylo_imu"],
                  "cnn": ["speck"], "nested": ["loihi2", "loihi1"]}


def write_seed(path: Path, seed: str = "mlp") -> Path:
    return write_tree(path, SEEDS[seed]())


# --- named NIR cases (one per finding of issue 11) ------------------------------------------

def _self_link(path: Path) -> None:
    write_seed(path)
    with h5py.File(path, "a") as f:
        f["node/nodes/loop"] = f["node"]


def _metadata_loop(path: Path) -> None:
    write_seed(path)
    with h5py.File(path, "a") as f:
        meta = f["node"].create_group("metadata")
        meta["again"] = meta


def _huge_string(path: Path) -> None:
    write_seed(path)
    with h5py.File(path, "a") as f:
        del f["node/nodes/fc/type"]
        f["node/nodes/fc"].create_dataset("type", shape=(), dtype="S1000000000")


def _huge_string_edges(path: Path) -> None:
    write_seed(path)
    with h5py.File(path, "a") as f:
        del f["node/edges"]
        f["node"].create_dataset("edges", shape=(3, 2), dtype="S100000000")


def _many_arrays_under_cap(path: Path) -> None:
    """Twenty metadata arrays of 2**27 float64 each (1 GiB apiece, just under the
    per-dataset element cap), declared but never written: 20 GiB if read."""
    write_seed(path)
    with h5py.File(path, "a") as f:
        meta = f["node"].create_group("metadata")
        for k in range(20):
            meta.create_dataset(f"a{k}", shape=(1 << 27,), dtype="f8")


def _float_limit(path: Path) -> None:
    tree = mlp_tree()
    tree["node"]["nodes"]["fc"]["weight"] = np.full((3, 4), 1.7e308)
    write_tree(path, tree)


def _only_input(path: Path) -> None:
    write_tree(path, graph_tree({"input": {"type": "Input", "shape": np.array([4])}}, []))


def _pure_cycle(path: Path) -> None:
    write_tree(path, graph_tree(
        {"fc": {"type": "Affine", "weight": np.full((3, 3), 0.5), "bias": np.full(3, 0.1)},
         "lif": _lif(3), "output": {"type": "Output", "shape": np.array([3])}},
        [("fc", "lif"), ("lif", "fc"), ("lif", "output")]))


def _nested_output_to_missing(path: Path) -> None:
    tree = nested_tree()
    tree["node"]["nodes"]["sub"]["edges"].append(["output", "ghost"])
    write_tree(path, tree)


ANSI_NAME = "evil\x1b[31mRED\nerror: forged line"


def _ansi_name(path: Path) -> None:
    tree = mlp_tree()
    nodes = tree["node"]["nodes"]
    nodes[ANSI_NAME] = nodes.pop("fc")
    nodes[ANSI_NAME]["bias"] = np.zeros(5)     # invalid, so the name reaches an error line
    tree["node"]["edges"] = [["input", ANSI_NAME], [ANSI_NAME, "lif"], ["lif", "output"]]
    write_tree(path, tree)


def _deep_nesting(path: Path) -> None:
    inner: dict = mlp_tree()["node"]
    for _ in range(200):
        inner = {"type": "NIRGraph",
                 "nodes": {"input": {"type": "Input", "shape": np.array([4])}, "g": inner,
                           "output": {"type": "Output", "shape": np.array([3])}},
                 "edges": [["input", "g"], ["g", "output"]]}
    write_tree(path, {"version": "1.0.8", "node": inner})


NIR_CASES = {
    "nir_self_linking_group": _self_link,
    "nir_metadata_links_to_itself": _metadata_loop,
    "nir_fixed_string_huge_itemsize": _huge_string,
    "nir_edges_huge_itemsize": _huge_string_edges,
    "nir_many_arrays_just_under_cap": _many_arrays_under_cap,
    "nir_float64_limit_weights": _float_limit,
    "nir_only_input": _only_input,
    "nir_pure_cycle_no_input": _pure_cycle,
    "nir_nested_output_edge_to_missing_node": _nested_output_to_missing,
    "nir_ansi_escape_in_node_name": _ansi_name,
    "nir_nested_200_levels": _deep_nesting,
}


def named_nir_cases() -> list[Case]:
    cases = []
    for name, make in NIR_CASES.items():
        files = (lambda make: lambda d: make(d / "m.nir"))(make)
        cases.append(Case(f"{name}:inspect", ["inspect", "{d}/m.nir"], files))
        for target in ("loihi2", "xylo", "speck"):
            cases.append(Case(f"{name}:compile-{target}",
                              ["compile", "{d}/m.nir", "--target", target, "-o", "{d}/out",
                               *FAST], files, output="out"))
    cases.append(Case("nir_dt_1e300:compile", ["compile", "{d}/m.nir", "--target", "loihi2",
                                               "--dt", "1e300", "-o", "{d}/out", *FAST],
                      lambda d: write_seed(d / "m.nir"), output="out"))
    return cases


# --- NIR mutations --------------------------------------------------------------------------

EXTREMES = [0.0, -1.0, 1e-300, 1e300, 1.7e308, -1.7e308, np.nan, np.inf, -np.inf, 2.0 ** 63,
            1e30, -1e30, 1e31]


def _datasets(f: h5py.File) -> list[str]:
    found: list[str] = []
    f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    return found


def _groups(f: h5py.File) -> list[str]:
    found: list[str] = ["/"]
    f.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Group) else None)
    return found


def _mutate_h5(path: Path, rng: random.Random) -> str:
    """One random structural or value mutation of an HDF5 file; returns what it did."""
    with h5py.File(path, "a") as f:
        datasets, groups = _datasets(f), _groups(f)
        what = rng.choice(["value", "shape", "delete", "string", "huge", "link", "type",
                           "rename", "edges", "dtype", "metadata", "many"])
        target = rng.choice(datasets)
        parent, _, leaf = target.rpartition("/")
        holder = f[parent] if parent else f
        if what == "value":
            ds = f[target]
            if ds.dtype.kind in "fiu" and ds.size:
                data = np.array(ds[()], dtype=np.float64)
                data.flat[rng.randrange(data.size)] = rng.choice(EXTREMES)
                del holder[leaf]
                holder.create_dataset(leaf, data=data)
            return f"value {target}"
        if what == "shape":
            del holder[leaf]
            shape = tuple(rng.choice([0, 1, 2, 3, 7, 2 ** 20, 2 ** 31]) for _ in
                          range(rng.randrange(0, 4)))
            holder.create_dataset(leaf, shape=shape, dtype=rng.choice(["f8", "i4", "u1"]))
            return f"shape {target} {shape}"
        if what == "delete":
            victim = rng.choice(datasets + groups[1:])
            p2, _, l2 = victim.rpartition("/")
            del (f[p2] if p2 else f)[l2]
            return f"delete {victim}"
        if what == "string":
            del holder[leaf]
            holder.create_dataset(leaf, data=rng.choice(["", "LIF", "x" * 1000, "same",
                                                         "\x1b[2J", "NIRGraph"]))
            return f"string {target}"
        if what == "huge":
            del holder[leaf]
            holder.create_dataset(leaf, shape=(rng.choice([1, 8, 4096]),),
                                  dtype=f"S{rng.choice([10 ** 6, 10 ** 8, 2 ** 30])}")
            return f"huge-string {target}"
        if what == "link":
            g = rng.choice(groups)
            ancestor = rng.choice([x for x in groups if g.startswith(x) or x == "/"])
            (f[g] if g != "/" else f)[f"loop{rng.randrange(99)}"] = f[ancestor]
            return f"link {g} -> {ancestor}"
        if what == "type":
            types = [t for t in datasets if t.endswith("/type")]
            if types:
                t = rng.choice(types)
                p2, _, l2 = t.rpartition("/")
                del f[p2][l2]
                f[p2].create_dataset(l2, data=rng.choice(
                    ["LIF", "IF", "Input", "Output", "Affine", "Conv2d", "NIRGraph", "Bogus",
                     "Flatten", "CubaLIF", "Delay", "Threshold", "SumPool2d"]),
                    dtype=h5py.string_dtype())
            return "type"
        if what == "rename":
            nodes = [g for g in groups if g.count("/") and g.rsplit("/", 1)[0].endswith("nodes")]
            if nodes:
                g = rng.choice(nodes)
                p2, _, l2 = g.rpartition("/")
                f[p2].move(l2, rng.choice(["a\nb", "\x1b[31mx", "x" * 300, "ghost", "input",
                                           "output", "a.b", " "]))
            return "rename"
        if what == "edges":
            graphs = [g for g in groups if "edges" in (f[g] if g != "/" else f)]
            if graphs:
                g = f[rng.choice(graphs)]
                old = [[bytes(x).decode() if isinstance(x, bytes) else str(x) for x in e]
                       for e in g["edges"][()].tolist()] if g["edges"].ndim == 2 else []
                names = list(g["nodes"]) if "nodes" in g else ["x"]
                for _ in range(rng.randrange(1, 4)):
                    op = rng.random()
                    if op < 0.4 or not old:
                        old.append([rng.choice(names + ["ghost"]), rng.choice(names + ["ghost"])])
                    elif op < 0.7:
                        old.pop(rng.randrange(len(old)))
                    else:
                        old.append(list(reversed(rng.choice(old))))
                del g["edges"]
                if old:
                    g.create_dataset("edges", data=np.array(old, dtype=object),
                                     dtype=h5py.string_dtype())
                else:
                    g.create_dataset("edges", shape=(0, 2), dtype=h5py.string_dtype())
            return "edges"
        if what == "dtype":
            ds = f[target]
            del holder[leaf]
            holder.create_dataset(leaf, shape=ds.shape if ds.shape is not None else (),
                                  dtype=rng.choice(["c16", "f2", "?", "i8", [("a", "i4")]]))
            return f"dtype {target}"
        if what == "metadata":
            g = f["node"] if "node" in f else f
            meta = g.require_group("metadata")
            choice = rng.random()
            if choice < 0.3:
                meta["dt"] = rng.choice([1e300, -1.0, 0.0, 1e-300, np.nan])
            elif choice < 0.6:
                deep = meta
                for k in range(rng.choice([10, 70, 300])):
                    deep = deep.create_group(f"d{k}")
            else:
                meta.create_dataset("big", shape=(2 ** rng.choice([20, 27, 28, 29]),), dtype="f8")
            return "metadata"
        if what == "many":
            g = f["node"] if "node" in f else f
            meta = g.require_group("metadata")
            for k in range(rng.choice([5, 10, 40])):
                meta.create_dataset(f"m{k}", shape=(1 << 26,), dtype="f8")
            return "many arrays"
    return what


def _corrupt_bytes(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    if rng.random() < 0.5:
        cut = rng.randrange(len(data))
        path.write_bytes(bytes(data[:cut]))
        return f"truncate {cut}"
    for _ in range(rng.randrange(1, 20)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    path.write_bytes(bytes(data))
    return "flip bytes"


def nir_mutations(n: int, seed: int = 0) -> list[Case]:
    """``n`` seeded mutations of the seed models, each inspected, then compiled for one of
    the targets that runs its seed (every other case) — sequential placement, no
    calibration, to keep a case short."""
    cases = []
    for k in range(n):
        rng = random.Random(seed * 1_000_003 + k)
        seed_name = rng.choice(list(SEEDS))
        steps = rng.choice([1, 1, 2, 3])

        def files(d: Path, seed_name=seed_name, steps=steps, k=k) -> None:
            r = random.Random(seed * 1_000_003 + k + 7)
            path = write_seed(d / "m.nir", seed_name)
            for _ in range(steps):
                try:
                    if r.random() < 0.12:
                        _corrupt_bytes(path, r)
                        break
                    _mutate_h5(path, r)
                except (OSError, KeyError, ValueError, TypeError, RuntimeError):
                    break     # a mutation h5py itself refuses: keep the file as it is

        if k % 2 == 0:
            argv = ["inspect", "{d}/m.nir"] + (["--json"] if rng.random() < 0.3 else [])
            cases.append(Case(f"nir_mutation_{seed}_{k}:inspect", argv, files))
        else:
            target = rng.choice(TARGET_OF_SEED[seed_name])
            cases.append(Case(f"nir_mutation_{seed}_{k}:compile-{target}",
                              ["compile", "{d}/m.nir", "--target", target, "-o", "{d}/out",
                               "--placement", "sequential", *FAST], files, output="out"))
    return cases


# --- target YAML ----------------------------------------------------------------------------

def _billion_laughs() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _loihi_with(old: str, new: str) -> str:
    text = (SHIPPED_TARGETS / "loihi2.yaml").read_text()
    assert old in text, old
    return text.replace(old, new).replace("name: loihi2", "name: custom") \
        .replace("aliases: [", "aliases_unused: [")


def _shipped_passes_line(target: str) -> str:
    import re

    text = (SHIPPED_TARGETS / f"{target}.yaml").read_text()
    return re.search(r"(?m)^passes: \[.*\]$", text).group(0)


_LOIHI_PASSES = _shipped_passes_line("loihi2")


def _strip_aliases(text: str) -> str:
    import re

    return re.sub(r"(?m)^aliases:.*\n", "", text)


YAML_CASES = {
    "yaml_billion_laughs": _billion_laughs(),
    "yaml_nesting_3000_flow": "x: " + "[" * 3000 + "]" * 3000 + "\n",
    "yaml_nesting_10000_flow": "x: " + "{a: " * 10000 + "1" + "}" * 10000 + "\n",
    "yaml_nesting_1000_block": "".join(" " * i + f"k{i}:\n" for i in range(1000)) + " " * 1000
                               + "v\n",
    "yaml_cores_count_1e9": _strip_aliases(_loihi_with("  count: 128", "  count: 1000000000")),
    "yaml_synapse_memory_1e30": _strip_aliases(_loihi_with(
        "    synapse_memory_bits: 1048576", "    synapse_memory_bits: 1.0e+30")),
    "yaml_duplicate_key": _strip_aliases(_loihi_with(
        "    neurons: 8192", "    neurons: 8192\n    neurons: 99999999")),
    "yaml_quantize_before_normalize": _strip_aliases(_loihi_with(
        _LOIHI_PASSES, "passes: [quantize, normalize, discretize, fuse, unroll]")),
    "yaml_xylo_pass_on_loihi_model": _strip_aliases(_loihi_with(
        _LOIHI_PASSES, "passes: [normalize, discretize, fuse, unroll, xylo_quantize]")),
    "yaml_python_tag": "!!python/object/apply:os.system ['echo pwned']\n",
    "yaml_binary": "\x00\x01\x02\xff garbage",
}


def named_yaml_cases() -> list[Case]:
    cases = []
    for name, text in YAML_CASES.items():
        files = (lambda text: lambda d: ((d / "t.yaml").write_text(text, errors="surrogateescape"),
                                         write_seed(d / "m.nir")))(text)
        cases.append(Case(f"{name}:check", ["targets", "check", "{d}/t.yaml"], files, "yaml"))
        cases.append(Case(f"{name}:compile", ["compile", "{d}/m.nir", "--target", "{d}/t.yaml",
                                              "-o", "{d}/out", *FAST], files, "yaml", "out"))
    return cases


YAML_VALUES = ["0", "-1", "1.0e+9", "1000000000", "1.0e+30", "1e400", ".nan", ".inf", "-.inf",
               "null", "[]", "{}", "abc", "true", "3.5", "99999999999999999999999", "''",
               "*nothing", "&a 1", "[normalize]", "{a: *a}"]


def _mutate_yaml(text: str, rng: random.Random) -> str:
    lines = text.splitlines() or [""]
    op = rng.random()
    idx = rng.randrange(len(lines))
    line = lines[idx]
    if op < 0.45 and ":" in line:
        key, _, _ = line.partition(":")
        lines[idx] = f"{key}: {rng.choice(YAML_VALUES)}"
    elif op < 0.55:
        lines.pop(idx)
    elif op < 0.62:
        lines.insert(idx, rng.choice(["  bogus: 1", "extra: [1, 2]", "\t- tab", "cores:",
                                      "  count: 2", "---", "...", "? [a]", "%YAML 1.1"]))
    elif op < 0.75:
        passes = ["normalize", "discretize", "fuse", "unroll", "quantize", "speck_lower",
                  "speck_quantize", "xylo_quantize", "bogus"]
        chosen = rng.sample(passes, rng.randrange(0, 6))
        lines = [f"passes: [{', '.join(chosen)}]" if ln.startswith("passes:") else ln
                 for ln in lines]
    elif op < 0.82:
        return text[:rng.randrange(len(text) + 1)]
    elif op < 0.9:
        depth = rng.choice([60, 500, 5000])
        lines.append("deep: " + "[" * depth + "]" * depth)
    else:
        data = bytearray(text.encode())
        for _ in range(rng.randrange(1, 10)):
            data[rng.randrange(len(data))] = rng.randrange(32, 127)
        return data.decode("ascii", errors="replace")
    return "\n".join(lines) + "\n"


def yaml_mutations(n: int, seed: int = 0) -> list[Case]:
    shipped = sorted(p for p in SHIPPED_TARGETS.glob("*.yaml"))
    cases = []
    for k in range(n):
        rng = random.Random(seed * 7_919 + k)
        base = rng.choice(shipped)
        text = _strip_aliases(base.read_text()).replace(f"name: {base.stem}", "name: fuzzed")
        for _ in range(rng.choice([1, 1, 2, 3])):
            text = _mutate_yaml(text, rng)

        def files(d: Path, text=text) -> None:
            (d / "t.yaml").write_text(text)
            write_seed(d / "m.nir", "cnn" if "speck" in text or "dynapcnn" in text else "mlp")

        if k % 2 == 0:
            cases.append(Case(f"yaml_mutation_{seed}_{k}:check", ["targets", "check", "{d}/t.yaml"],
                              files, "yaml"))
        else:
            cases.append(Case(f"yaml_mutation_{seed}_{k}:compile",
                              ["compile", "{d}/m.nir", "--target", "{d}/t.yaml", "-o", "{d}/out",
                               "--placement", "sequential", *FAST], files, "yaml", "out"))
    return cases


# --- NPZ inputs -----------------------------------------------------------------------------

def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_header_only(shape: tuple[int, ...], dtype: str = "<f8", data: bytes = b"") -> bytes:
    """A .npy member whose header declares ``shape`` but which holds only ``data``."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def write_zip(path: Path, members: dict[str, bytes], deflate: bool = False) -> None:
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=method, allowZip64=True) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def write_zeros_member(path: Path, name: str, gib: float, extra: dict[str, bytes]) -> None:
    """An NPZ with ``extra`` members plus ``name``: a uint8 array of ``gib`` GiB of zeros,
    deflated (a few MB on disk), streamed so writing it never holds it in memory."""
    n = int(gib * (1 << 30))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for key, data in extra.items():
            zf.writestr(key, data)
        with zf.open(name, "w", force_zip64=True) as out:
            out.write(npy_header_only((n,), "|u1"))
            chunk = bytes(1 << 24)
            for _ in range(n // len(chunk)):
                out.write(chunk)
            out.write(bytes(n % len(chunk)))


def _pickle_member() -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _raw_pickle() -> bytes:
    import pickle

    return pickle.dumps({"input": [1, 2, 3]})


@dataclass
class Runner:
    """What an NPZ case runs: a model (and a build of it) and the input shape it takes."""

    name: str
    seed: str
    target: str | None
    shape: tuple[int, ...]


RUNNERS = [Runner("simulate", "mlp", None, (4,)), Runner("emulate-loihi2", "mlp", "loihi2", (4,)),
           Runner("emulate-xylo", "deep", "xylo", (4,)), Runner("emulate-speck", "cnn", "speck",
                                                               (2, 8, 8)),
           Runner("verify-loihi2", "mlp", "loihi2", (4,))]


def prepare_runner(runner: Runner, d: Path) -> None:
    """The model (and for emulate its build, compiled in-process) a runner's cases use."""
    write_seed(d / "m.nir", runner.seed)
    if runner.name.startswith("emulate"):
        from nirc.cli import main

        code = main(["-q", "compile", str(d / "m.nir"), "--target", runner.target, "-o",
                     str(d / "build"), "--placement", "sequential", *FAST])
        assert code == 0, f"seed build for {runner.name} failed"


def runner_argv(runner: Runner, npz: str = "{d}/in.npz") -> list[str]:
    if runner.name == "simulate":
        return ["simulate", "{d}/m.nir", "--input", npz, "--output", "{d}/out.npz"]
    if runner.name.startswith("emulate"):
        return ["emulate", "{d}/build", "--input", npz, "--output", "{d}/out.npz"]
    return ["verify", "{d}/m.nir", "--target", runner.target, "--input", npz]


def _npz_contents(shape: tuple[int, ...], rng: random.Random) -> tuple[str, Callable[[Path], None]]:
    """A random hostile NPZ for inputs of ``shape``."""
    values = np.random.default_rng(rng.randrange(1 << 30)).random((6, *shape))
    good = (values < 0.3).astype(np.float64)
    op = rng.choice(["npy", "pickle", "raw_pickle", "huge_header", "short_data", "zero_steps",
                     "nan", "dtype", "events", "extra", "missing", "truncate", "flip", "shape",
                     "steps", "negative", "fraction", "empty", "not_zip", "fortran"])
    if op == "npy":
        return op, lambda p: p.write_bytes(npy_bytes(good))
    if op == "pickle":
        return op, lambda p: write_zip(p, {"input.npy": _pickle_member()})
    if op == "raw_pickle":
        return op, lambda p: write_zip(p, {"input.npy": _raw_pickle()})
    if op == "huge_header":
        big = (2 ** rng.choice([31, 40, 62]), *shape)
        return op, lambda p: write_zip(p, {"input.npy": npy_header_only(big)})
    if op == "short_data":
        return op, lambda p: write_zip(p, {"input.npy": npy_bytes(good)[:-rng.randrange(1, 40)]})
    if op == "zero_steps":
        return op, lambda p: write_zip(p, {"input.npy": npy_bytes(np.zeros((0, *shape)))})
    if op == "nan":
        bad = good.copy()
        bad.flat[0] = rng.choice([np.nan, np.inf])
        return op, lambda p: write_zip(p, {"input.npy": npy_bytes(bad)})
    if op == "dtype":
        arr = good.astype(rng.choice(["c16", "U3", "M8[s]", "?", "f2", "i1", "u8"]))
        return op, lambda p: write_zip(p, {"input.npy": npy_bytes(arr)})
    if op == "events":
        bad = good.copy()
        bad.flat[rng.randrange(bad.size)] = rng.choice([1e5, 2.0 ** 31, 2.0 ** 53, 300])
        return op, lambda p: write_zip(p, {"input.npy": npy_bytes(bad)})
    if op == "extra":
        declared = npy_header_only((5 * (1 << 30),), "|u1")
        return op, lambda p: write_zip(p, {"input.npy": npy_bytes(good), "junk.npy": declared,
                                           "notes.txt": b"hello"})
    if op == "missing":
        return op, lambda p: write_zip(p, {"spikes.npy": npy_bytes(good)})
    if op == "truncate":
        def f(p: Path) -> None:
            write_zip(p, {"input.npy": npy_bytes(good)}, deflate=True)
            data = p.read_bytes()
            p.write_bytes(data[:rng.randrange(1, len(data))])
        return op, f
    if op == "flip":
        def f(p: Path) -> None:
            write_zip(p, {"input.npy": npy_bytes(good)})
            data = bytearray(p.read_bytes())
            for _ in range(rng.randrange(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            p.write_bytes(bytes(data))
        return op, f
    if op == "shape":
        arr = np.zeros((6, *[s + 1 for s in shape]))
        return op, lambda p: write_zip(p, {"input.npy": npy_bytes(arr)})
    if op == "steps":
        n = rng.choice([1_000_001, 33_000_000])
        return op, lambda p: write_zip(p, {"input.npy": npy_header_only((n, *shape), "|u1",
                                                                        bytes(n * int(np.prod(shape))))},
                                       deflate=True)
    if op == "negative":
        bad = good.copy()
        bad.flat[0] = -1
        return op, lambda p: write_zip(p, {"input.npy": npy_bytes(bad)})
    if op == "fraction":
        bad = good.copy()
        bad.flat[0] = 0.5
        return op, lambda p: write_zip(p, {"input.npy": npy_bytes(bad)})
    if op == "empty":
        return op, lambda p: p.write_bytes(b"")
    if op == "not_zip":
        return op, lambda p: p.write_bytes(b"PK\x03\x04" + bytes(rng.randrange(256) for _ in range(64)))
    arr = np.asfortranarray(good)
    return op, lambda p: write_zip(p, {"input.npy": npy_bytes(arr)})


def npz_mutations(n: int, seed: int = 0) -> list[tuple[Runner, Case]]:
    """``n`` hostile NPZ inputs, each run by one of RUNNERS (round robin)."""
    cases = []
    for k in range(n):
        rng = random.Random(seed * 104_729 + k)
        runner = RUNNERS[k % len(RUNNERS)]
        op, make = _npz_contents(runner.shape, rng)
        name = f"npz_mutation_{seed}_{k}_{op}:{runner.name}"
        cases.append((runner, Case(name, runner_argv(runner), (lambda m: lambda d: m(d / "in.npz"))(make),
                                   "npz", "out.npz")))
    return cases


NPZ_CASES: dict[str, Callable[[Path, tuple[int, ...]], None]] = {
    "npz_plain_npy": lambda p, s: p.write_bytes(npy_bytes(np.zeros((5, *s)))),
    "npz_pickled_member": lambda p, s: write_zip(p, {"input.npy": _pickle_member()}),
    "npz_raw_pickle_member": lambda p, s: write_zip(p, {"input.npy": _raw_pickle()}),
    "npz_header_2_40_rows": lambda p, s: write_zip(p, {"input.npy": npy_header_only((2 ** 40, *s))}),
    "npz_extra_member_never_read": lambda p, s: write_zeros_member(
        p, "junk.npy", 0.25, {"input.npy": npy_bytes(np.zeros((5, *s)))}),
    # a valid input of 33M steps (its data written in full where that is small)
    "npz_33M_steps": lambda p, s: write_zip(p, {"input.npy": npy_header_only(
        (33_000_000, *s), "|u1", bytes(33_000_000 * int(np.prod(s))) if np.prod(s) <= 4
        else b"")}, deflate=True),
    "npz_zero_steps": lambda p, s: write_zip(p, {"input.npy": npy_bytes(np.zeros((0, *s)))}),
}


def npz_event_counts(count: float) -> Callable[[Path, tuple[int, ...]], None]:
    def make(p: Path, s: tuple[int, ...]) -> None:
        x = np.zeros((3, *s))
        x.flat[0] = count
        write_zip(p, {"input.npy": npy_bytes(x)})
    return make


NPZ_CASES["npz_speck_1e5_events_one_pixel"] = npz_event_counts(1e5)
NPZ_CASES["npz_speck_2_31_events_one_pixel"] = npz_event_counts(2.0 ** 31)


def named_npz_cases() -> list[tuple[Runner, Case]]:
    cases = []
    for name, make in NPZ_CASES.items():
        for runner in RUNNERS:
            if "speck" in name and runner.target != "speck":
                continue
            files = (lambda make, shape: lambda d: make(d / "in.npz", shape))(make, runner.shape)
            cases.append((runner, Case(f"{name}:{runner.name}", runner_argv(runner), files,
                                       "npz", "out.npz")))
    return cases



# --- build configs (emulate reads a build directory: its config.json may be damaged) --------

CONFIG_VALUES = [None, -1, 0, 2 ** 40, 1.5, -2.5, float("nan"), "x", "arrays.npz:nope",
                 "../outside.npz", [], [-1], [1, 2], {}, True]
CONFIG_RUNNERS = [r for r in RUNNERS if r.name.startswith("emulate")]


def _json_paths(x, path: tuple = ()):
    """Every field of a JSON document (the first three items of each list), outermost first."""
    yield path
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _json_paths(v, (*path, k))
    elif isinstance(x, list):
        for i, v in enumerate(x[:3]):
            yield from _json_paths(v, (*path, i))


def _damaged_config(folder: Path, runner: Runner, seed: int) -> None:
    """A private copy of the runner's build whose config.json has one field replaced by a
    hostile value or removed, and a valid input for it."""
    rng = random.Random(seed)
    build = folder / "build"
    if build.is_symlink():
        source = build.resolve()
        build.unlink()
        shutil.copytree(source, build)
    config_path = build / "config.json"
    config = json.loads(config_path.read_text())
    where = rng.choice(list(_json_paths(config))[1:])
    node = config
    for key in where[:-1]:
        node = node[key]
    if rng.random() < 0.15:
        del node[where[-1]]
    else:
        node[where[-1]] = rng.choice(CONFIG_VALUES)
    config_path.write_text(json.dumps(config))
    spikes = np.random.default_rng(seed).random((4, *runner.shape)) < 0.3
    write_zip(folder / "in.npz", {"input.npy": npy_bytes(spikes.astype(np.float64))})


def config_mutations(n: int, seed: int = 0) -> list[tuple[Runner, Case]]:
    """``n`` builds with one damaged config.json field each, emulated (round robin over the
    emulate runners: generic Loihi format, Xylo and Speck backends)."""
    cases = []
    for k in range(n):
        runner = CONFIG_RUNNERS[k % len(CONFIG_RUNNERS)]
        case_seed = seed * 104_729 + k
        files = (lambda r, s: lambda d: _damaged_config(d, r, s))(runner, case_seed)
        cases.append((runner, Case(f"config_mutation_{seed}_{k}:{runner.name}",
                                   runner_argv(runner), files, "config", "out.npz")))
    return cases
