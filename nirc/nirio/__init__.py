"""Reading and writing NIR HDF5 files, compatible both ways with the reference ``nir`` package.

- ``read(path) -> NIRGraph``: a validated graph; older (0.x) layouts and field names are
  read tolerantly (legacy.py), known exporter quirks are repaired with a NircWarning
  (quirks.py), malformed files raise ModelError naming the file, node and parameter.
- ``write(path, graph, compress=True)``: the layout ``nir.write`` produces, so ``nir.read``
  loads it.

Both walk each node's dataclass fields (``nirc.ir.nodes.param`` metadata) through the one
``NODE_TYPES`` table; there is no per-type code.
"""

from nirc.nirio.reader import read
from nirc.nirio.writer import FORMAT_VERSION, write

__all__ = ["read", "write", "FORMAT_VERSION"]
