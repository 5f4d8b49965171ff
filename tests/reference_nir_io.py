"""Run under the reference nir 1.0.8 (see nir_reference.py): read files with nir.read,
dump what nir holds as JSON, and optionally write each graph back with nir.write.

stdin: JSON list of {"read": path, "write": path or null, "compression": "gzip" or null,
"type_check": bool}; stdout: JSON {path: dump}.
"""

import json
import sys

import numpy as np

import nir


def plain(value):
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return plain(value.tolist())
    if isinstance(value, (np.ndarray, np.generic)):
        return {"array": np.asarray(value).tolist(), "dtype": str(np.asarray(value).dtype)}
    return value


def dump(node):
    if isinstance(node, nir.NIRGraph):
        return {"type": "NIRGraph", "nodes": {k: dump(v) for k, v in node.nodes.items()},
                "edges": [list(e) for e in node.edges], "metadata": plain(node.metadata)}
    params = {k: v for k, v in vars(node).items()
              if k not in ("input_type", "output_type", "metadata")}
    if isinstance(node, nir.Input):
        params["shape"] = node.input_type["input"]
    if isinstance(node, nir.Output):
        params["shape"] = node.output_type["output"]
    if isinstance(node, nir.Flatten):
        params["input_type"] = node.input_type["input"]
    return {"type": type(node).__name__, "metadata": plain(node.metadata),
            "params": plain(params)}


def main():
    assert nir.__version__ == "1.0.8", nir.__version__
    out = {}
    for job in json.load(sys.stdin):
        graph = nir.read(job["read"], type_check=job["type_check"])
        out[job["read"]] = dump(graph)
        if job["write"]:
            nir.write(job["write"], graph, compression=job["compression"])
    print(json.dumps(out))


main()
