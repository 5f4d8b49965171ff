"""Writing an intermediate stage to disk for debugging (``nirc compile --dump-after PASS``).

A pure NIR graph is written as .nir (nirc.nirio.write), so every NIR tool can
open it. A graph holding nirc's own discrete nodes, or a hardware network, is
written as ``<name>.json`` (structure, scalars, array shapes) plus
``<name>.npz`` (every array, keyed by the path shown in the JSON).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from nirc.arrayfile import write_npz
from nirc.hwnet import HardwareNetwork
from nirc.ir.nodes import NODE_TYPES, NIRGraph


def _graph_is_nir(graph: NIRGraph) -> bool:
    return all(type(node) is NODE_TYPES.get(node.nir_type) for node in graph.nodes.values())


def dump_stage(stage: Any, directory: Path, name: str) -> list[Path]:
    """Write ``stage`` under ``directory`` as ``name.*``; returns the files written."""
    from nirc.emitter import dumps

    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(stage, NIRGraph) and _graph_is_nir(stage):
        from nirc.nirio import write

        path = directory / f"{name}.nir"
        write(path, stage)
        return [path]
    arrays: dict[str, np.ndarray] = {}

    def array(key: str, value) -> dict[str, Any]:
        value = np.asarray(value)
        arrays[key] = value
        return {"array": key, "shape": list(value.shape), "dtype": str(value.dtype)}

    if isinstance(stage, NIRGraph):
        doc: dict[str, Any] = {"kind": "graph", "nodes": {}, "edges": [list(e) for e in stage.edges]}
        for node_name, node in stage.nodes.items():
            entry: dict[str, Any] = {"type": node.nir_type}
            for key, value in node.params().items():
                if isinstance(value, np.ndarray):
                    entry[key] = array(f"nodes/{node_name}/{key}", value)
                elif value is not None:
                    entry[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
            doc["nodes"][node_name] = entry
    elif isinstance(stage, HardwareNetwork):
        doc = {"kind": "hardware_network", "neuron_model": stage.neuron_model, "dt": stage.dt,
               "quantized": stage.quantized,
               "inputs": {k: list(p.shape) for k, p in stage.inputs.items()},
               "populations": {}, "tables": [],
               "outputs": {k: {"source": o.source, "quantity": o.quantity}
                           for k, o in stage.outputs.items()}}
        for pop_name, pop in stage.populations.items():
            doc["populations"][pop_name] = {
                "shape": list(pop.shape), "spiking": pop.spiking, "nodes": list(pop.provenance),
                "params": {k: array(f"populations/{pop_name}/{k}", v)
                           for k, v in pop.params.items()}}
        for k, t in enumerate(stage.tables):
            entry = {"source": t.source, "target": t.target, "delay": t.delay,
                     "exponent": t.exponent, "nodes": list(t.provenance)}
            if t.weights is not None:
                coo = sp.coo_array(t.weights)
                entry["shape"] = list(t.weights.shape)
                entry["row"] = array(f"tables/{k}/row", coo.row)
                entry["col"] = array(f"tables/{k}/col", coo.col)
                entry["value"] = array(f"tables/{k}/value", coo.data)
            if t.kernel:
                entry["kernel"] = {key: (str([op[0] for op in value]) if key == "ops" else value)
                                   for key, value in t.kernel.items()}
            doc["tables"].append(entry)
    else:
        raise TypeError(f"cannot dump a {type(stage).__name__}")
    json_path, npz_path = directory / f"{name}.json", directory / f"{name}.npz"
    json_path.write_text(dumps(doc))
    write_npz(npz_path, arrays)
    return [json_path, npz_path]
