"""The deployment configuration on disk: config.json + arrays.npz (format: docs/config-format.md).

``emit(net, placement, target, out_dir, report)`` writes a quantized hardware
network and its placement atomically: everything goes into a temporary
directory beside ``out_dir`` which is renamed into place only when complete,
so a failed compile leaves no partial build (and an existing build is
replaced only by a complete one). The same network, placement and report
give byte-identical files (sorted, fixed-format JSON; NPZ with fixed
timestamps). Nothing here depends on the target beyond names: the neuron
model's ``param_names`` and ``table_fields`` say which fields to write.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from nirc.errors import NircError
import scipy.sparse as sp

from nirc import __version__
from nirc.arrayfile import write_npz
from nirc.builddir import write_build_dir
from nirc.hwnet import HardwareNetwork
from nirc.neuron_models import get_model
from nirc.placement import Placement

FORMAT = "nirc-deployment-config"
SCHEMA_VERSION = 1
CONFIG_NAME = "config.json"
ARRAYS_NAME = "arrays.npz"
REPORT_NAME = "report.json"


def _compact_int(values: np.ndarray) -> np.ndarray:
    """The smallest signed integer dtype that holds ``values`` (int8 ... int64)."""
    if values.dtype.kind == "f":
        return values
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    for dt in (np.int8, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return values.astype(dt)
    return values.astype(np.int64)


def _json_default(obj: Any):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> str:
    """Sorted-by-construction, fixed-format JSON; NaN/Inf (an overflow upstream) is refused
    as a NircError rather than written as invalid JSON.

    The bytes are those of ``json.dumps(obj, indent=1, default=_json_default,
    allow_nan=False)``; the standard library encodes with indentation in pure Python, one
    generator per nesting level, which took a third of a 10^5-node compile. Here one
    recursive function appends to a list (tests/test_build_output.py compares the two)."""
    parts: list[str] = []
    _encode_indented(obj, "\n", parts)
    return "".join(parts) + "\n"


_encode_string = json.encoder.encode_basestring_ascii


def _encode_indented(o: Any, newline: str, parts: list[str]) -> None:
    """Append ``o`` as json.dumps(indent=1) writes it; ``newline`` is "\n" plus the current
    indentation. The order of the type tests is json's (bool before int, float after)."""
    if isinstance(o, str):
        parts.append(_encode_string(o))
    elif o is None:
        parts.append("null")
    elif o is True:
        parts.append("true")
    elif o is False:
        parts.append("false")
    elif isinstance(o, int):
        parts.append(int.__repr__(o))
    elif isinstance(o, float):
        parts.append(_float_text(o))
    elif isinstance(o, (list, tuple)):
        if not o:
            parts.append("[]")
            return
        inner = newline + " "
        separator, following = "[" + inner, "," + inner
        for value in o:
            # Plain integers and strings (most members) join their separator in one piece:
            # no call, and half the pieces held until the join.
            if type(value) is int:
                parts.append(separator + int.__repr__(value))
            elif type(value) is str:
                parts.append(separator + _encode_string(value))
            else:
                parts.append(separator)
                _encode_indented(value, inner, parts)
            separator = following
        parts.append(newline + "]")
    elif isinstance(o, dict):
        if not o:
            parts.append("{}")
            return
        inner = newline + " "
        separator, following = "{" + inner, "," + inner
        for key, value in o.items():
            head = separator + _encode_string(_key_text(key)) + ": "
            if type(value) is int:
                parts.append(head + int.__repr__(value))
            elif type(value) is str:
                parts.append(head + _encode_string(value))
            else:
                parts.append(head)
                _encode_indented(value, inner, parts)
            separator = following
        parts.append(newline + "}")
    else:
        _encode_indented(_json_default(o), newline, parts)


def _key_text(key: Any) -> str:
    """A dict key as json writes it (keys that are not strings become their JSON text)."""
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        return _float_text(key)
    if key is True or key is False or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _float_text(value: float) -> str:
    if value != value or value in (math.inf, -math.inf):
        raise NircError("a computed number overflowed to NaN or Inf (are the model's "
                        "parameters or dt extreme?); nothing was written")
    return float.__repr__(value)


def build_config(net: HardwareNetwork, placement: Placement, target_name: str
                 ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The config.json mapping and the arrays it references (keys in arrays.npz)."""
    model = get_model(net.neuron_model)
    arrays: dict[str, np.ndarray] = {}

    def ref(key: str, values: np.ndarray) -> str:
        arrays[key] = values
        return f"{ARRAYS_NAME}:{key}"

    def param_value(key: str, values: np.ndarray):
        values = np.asarray(values).reshape(-1)
        if values.size and np.all(values == values[0]) and values.dtype.kind in "iu":
            return int(values[0])
        return ref(key, _compact_int(values))

    populations = []
    for name, pop in net.populations.items():
        entry = {
            "name": name, "shape": list(pop.shape), "size": pop.size, "spiking": pop.spiking,
            "nodes": list(pop.provenance),
            "params": {k: param_value(f"populations/{name}/{k}", pop.params[k])
                       for k in model.param_names},
            "blocks": [[b.start, b.stop, b.core] for b in placement.blocks_of(name)],
        }
        if pop.profiles:
            # Neuron profiles (passes/neuron_profiles.py): the values each profile's neurons share.
            entry["profiles"] = [dict(p) for p in pop.profiles]
            entry["profile"] = param_value(f"populations/{name}/profile", pop.profile)
        if pop.v_scale is not None:
            entry["v_scale"] = ref(f"populations/{name}/v_scale",
                                   np.broadcast_to(pop.v_scale, (pop.size,)).astype(np.float64))
            entry["v_offset"] = ref(f"populations/{name}/v_offset",
                                    np.broadcast_to(pop.v_offset, (pop.size,)).astype(np.float64))
        populations.append(entry)

    tables = []
    for k, t in enumerate(net.tables):
        w = sp.csr_array(t.weights)
        w.sort_indices()          # CSR order is already row-major, column-sorted COO order
        rows = np.repeat(np.arange(w.shape[0], dtype=np.int32), np.diff(w.indptr))
        attrs = model.table_attrs(t)
        entry = {
            "id": k, "source": t.source, "target": t.target,
            "source_kind": "input" if t.source in net.inputs else "population",
            "shape": list(t.weights.shape), "synapses": int(t.weights.nnz), "delay": int(t.delay),
            **{f: attrs[f] for f in model.table_fields if f in attrs},
            "nodes": list(t.provenance),
            "weights": {
                "row": ref(f"tables/{k}/row", rows),
                "col": ref(f"tables/{k}/col", w.indices.astype(np.int32)),
                "value": ref(f"tables/{k}/value", _compact_int(w.data)),
            },
        }
        tables.append(entry)

    cores = _cores(net, placement)
    config = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "nirc_version": __version__,
        "target": target_name,
        "neuron_model": net.neuron_model,
        "dt": net.dt,
        "arrays": ARRAYS_NAME,
        "inputs": [{"name": p.name, "shape": list(p.shape), "size": p.size}
                   for p in net.inputs.values()],
        "populations": populations,
        "tables": tables,
        "cores": cores,
        "routing": _routing(net, placement),
        "outputs": [{"name": o.name, "source": o.source, "quantity": o.quantity,
                     "shape": list(o.shape or net.populations[o.source].shape),
                     **({"copies": list(o.copies)} if o.copies else {}),
                     **({"copy_weights": [int(w) for w in o.copy_weights]}
                        if o.copy_weights else {})}
                    for o in net.outputs.values()],
    }
    if placement.system is not None:
        config["system"] = system_config(placement)
        per_chip = placement.system["cores_per_chip"]
        for core in cores:
            core["chip"] = core["core"] // per_chip
    return config, arrays


def system_config(placement: Placement) -> dict[str, Any]:
    """config.json's ``system``: the chips, the cores each uses, links and inter-chip routes."""
    s = placement.system
    per_chip = s["cores_per_chip"]
    used: dict[int, list[int]] = {}
    for core in sorted(placement.utilisation):
        used.setdefault(core // per_chip, []).append(core)
    return {
        "name": s["system"], "chip_target": s["chip_target"], "chips": s["chips"],
        "cores_per_chip": per_chip, "chips_used": s["chips_used"],
        "chip_lower_bound": s["chip_lower_bound"],
        "link_latency_steps": s["link_latency_steps"],
        "chip_cores": [{"chip": chip, "cores": cores} for chip, cores in sorted(used.items())],
        "links": [[a, b] for a, b, _ in s["links"]],
        "routes": s["routes"],
    }


def _core_blocks(net: HardwareNetwork, placement: Placement) -> dict[int, list[list]]:
    """Per core, its neuron ranges [population, start, stop] in population order, with
    neighbouring blocks of one population merged (the partitioner's blocks are finer than
    what a core needs to know)."""
    order = {name: k for k, name in enumerate(net.populations)}
    by_core: dict[int, list[list]] = {}
    for b in sorted(placement.blocks, key=lambda b: (b.core, order[b.population], b.start)):
        ranges = by_core.setdefault(b.core, [])
        if ranges and ranges[-1][0] == b.population and ranges[-1][2] == b.start:
            ranges[-1][2] = b.stop
        else:
            ranges.append([b.population, b.start, b.stop])
    return by_core


def _cores(net: HardwareNetwork, placement: Placement) -> list[dict[str, Any]]:
    """Per core: its neuron blocks (local offsets) and the table rows it stores."""
    into: dict[str, list[int]] = {name: [] for name in net.populations}
    for k, t in enumerate(net.tables):
        into[t.target].append(k)
    cores = []
    for core, ranges in sorted(_core_blocks(net, placement).items()):
        offset = 0
        blocks, synapses = [], []
        for population, start, stop in ranges:
            blocks.append({"population": population, "start": start, "stop": stop,
                           "offset": offset})
            for k in into[population]:
                ptr = net.tables[k].weights.indptr
                synapses.append({"table": k, "rows": [start, stop], "offset": offset,
                                 "synapses": int(ptr[stop] - ptr[start])})
            offset += stop - start
        cores.append({"core": core, "neurons": offset, "blocks": blocks, "synapses": synapses})
    return cores


def _routing(net: HardwareNetwork, placement: Placement) -> list[dict[str, Any]]:
    """Axons between cores: per (source, source core, target core), how many distinct source
    neurons have at least one synapse on the target core. Inputs have source core null."""
    used: dict[tuple, list[np.ndarray]] = {}
    for t in net.tables:
        src_core = (placement.core_of(t.source, net.size_of(t.source))
                    if t.source in net.populations else None)
        ptr = t.weights.indptr
        for b in placement.blocks_of(t.target):
            cols = np.unique(t.weights.indices[ptr[b.start]:ptr[b.stop]])
            if src_core is None:
                used.setdefault((t.source, -1, b.core), []).append(cols)
                continue
            for c in np.unique(src_core[cols]).tolist():
                used.setdefault((t.source, c, b.core), []).append(cols[src_core[cols] == c])
    return [{"source": s, "source_core": None if a < 0 else a, "target_core": b,
             "axons": int(np.unique(np.concatenate(parts)).size)}
            for (s, a, b), parts in sorted(used.items())]


def write_atomically(out_dir: str | Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp_dir)`` and move tmp_dir to out_dir only if it succeeded.

    An existing out_dir is replaced only when it is empty or a build nirc wrote (its
    marker file and nothing else); a kill at any moment leaves the old build or the new
    one, and the next run tidies the leftovers (nirc.builddir)."""
    return write_build_dir(out_dir, write)


def write_build(directory: Path, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                report: Mapping[str, Any], extra: Mapping[str, str] = {}) -> None:
    """Write config.json, arrays.npz, report.json (and any extra text files) into ``directory``."""
    (directory / CONFIG_NAME).write_text(dumps(config))
    write_npz(directory / ARRAYS_NAME, arrays)
    (directory / REPORT_NAME).write_text(dumps(report))
    for name, text in extra.items():
        (directory / name).write_text(text)
