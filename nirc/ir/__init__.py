"""The NIR graph: node dataclasses (nodes.py) and whole-graph operations (graph.py)."""

from nirc.ir.nodes import *  # noqa: F401,F403
from nirc.ir.nodes import NODE_TYPES, NEURON_TYPES, SPIKING_TYPES, WEIGHT_TYPES, Shape  # noqa: F401
from nirc.ir.graph import NodeShapes, check_edges, flatten, infer_shapes, topological_order  # noqa: F401
