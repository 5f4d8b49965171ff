"""The hardware network: what a chip computes, before it is placed on cores.

Between the passes and the backends sits one target-independent structure:
neuron populations (per-neuron parameters in the target neuron model's units:
floats before quantization, integers after), synaptic tables (sparse
source -> target weights with a delay), network inputs and outputs. Every
population and table remembers which NIR nodes it came from (provenance), so
errors and reports can name them.

Conventions:
- A table's ``weights`` is a scipy.sparse CSR array of shape
  (target.size, source.size), scaled by ``2**exponent``; how the exponent
  applies is the neuron model's accumulation rule (Loihi shifts each table's
  summed input, flooring, rather than each weight).
- ``delay`` counts time steps between a spike and its arrival (>= 1 where the
  synapses buffer one step: every Loihi table; on Xylo the tables between
  neurons, while input events arrive in their own step, delay 0).
- Sources are populations or input ports; targets are populations.
- Kernel-mapped targets (Speck) keep convolutions as kernels: a table may then
  carry ``kernel`` (a dict of conv geometry and dense weights) and leave
  ``weights`` as the equivalent unrolled matrix for the reference simulator.
- Between the fuse and unroll passes a table's ``weights`` is None and
  ``kernel["ops"]`` lists the NIR operators (name, node, input shape) to unroll.
  After quantization ``kernel`` also holds the neuron model's per-table fields
  (Loihi: weight_exp, num_weight_bits, sign_mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp


def per_neuron(value: Any, shape: int | tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """``value`` (a scalar or an array) broadcast to ``shape``, as a new array of ``dtype``:
    ``np.broadcast_to(value, shape).astype(dtype)``, without broadcast_to's ~10 us per call
    when ``value`` already has the shape (most do; a 10^5-node chain makes 10^6 such calls)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    out = np.array(value, dtype, order="C")
    return out if out.shape == shape else np.broadcast_to(out, shape).copy()


# A neuron model's quantize may return, after the tables it was given, tables whose source is
# this name: constant input currents delivered as synapses from an always-on neuron
# (NeuronModel.always_on). The quantize pass creates that population and renames the source.
BIAS_SOURCE = "<always_on>"


@dataclass(frozen=True, eq=False)
class InputPort:
    """A network input: spikes (or graded values) arriving each step, shaped like the NIR Input."""

    name: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True, eq=False)
class Population:
    """A group of neurons of one neuron model with per-neuron parameters.

    ``params`` maps parameter name -> array of shape (size,); the names and units
    are the neuron model's (see nirc.neuron_models).
    """

    name: str
    shape: tuple[int, ...]
    params: Mapping[str, np.ndarray]
    spiking: bool = True
    provenance: tuple[str, ...] = ()
    # After quantization: float voltage = v_int / v_scale + v_offset (per neuron), so
    # reports and readouts can be compared with the float simulation.
    v_scale: np.ndarray | None = None
    v_offset: np.ndarray | None = None
    # After the neuron_profiles pass: the profile (index into ``profiles``) of every neuron,
    # and per profile the values of the model's profile_params its neurons share.
    profile: np.ndarray | None = None
    profiles: tuple[Mapping[str, int], ...] = ()
    # Firing rules this population's lowering gives where they differ from its neuron model's
    # (NeuronModel.firing_rules' vocabulary, e.g. {"reset": "subtract"}); None: the model's.
    firing: Mapping[str, Any] | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def with_(self, **changes: Any) -> "Population":
        return replace(self, **changes)


@dataclass(frozen=True, eq=False)
class SynapseTable:
    """Weighted connections from every neuron of ``source`` to neurons of ``target``."""

    source: str
    target: str
    weights: sp.csr_array | None
    delay: int = 1
    exponent: int = 0
    provenance: tuple[str, ...] = ()
    kernel: Mapping[str, Any] | None = None

    @property
    def nnz(self) -> int:
        return 0 if self.weights is None else int(self.weights.nnz)

    def with_(self, **changes: Any) -> "SynapseTable":
        return replace(self, **changes)


@dataclass(frozen=True, eq=False)
class OutputPort:
    """A network output: the spikes (or the state ``quantity``) of one population.

    ``copies``: populations whose spikes add to ``source``'s (a population fired by copies
    so that it can fire several spikes per step, as Loihi's spike copies do): the output is
    then a spike count per step. ``copy_weights``: how many spikes each copy's spike counts
    for (Loihi's spike levels; empty: one each)."""

    name: str
    source: str
    quantity: str = "spikes"
    shape: tuple[int, ...] = ()
    copies: tuple[str, ...] = ()
    copy_weights: tuple[int, ...] = ()

    def with_(self, **changes: Any) -> "OutputPort":
        return replace(self, **changes)


@dataclass(frozen=True, eq=False)
class HardwareNetwork:
    """Populations and tables in one neuron model's units, at one time step ``dt``."""

    neuron_model: str
    dt: float
    inputs: Mapping[str, InputPort]
    populations: Mapping[str, Population]
    tables: tuple[SynapseTable, ...]
    outputs: Mapping[str, OutputPort]
    quantized: bool = False
    notes: tuple[str, ...] = field(default=())

    def size_of(self, name: str) -> int:
        if name in self.populations:
            return self.populations[name].size
        return self.inputs[name].size

    def free_name(self, base: str) -> str:
        """``base``, with underscores appended until no population or input has the name."""
        name = base
        while name in self.populations or name in self.inputs:
            name += "_"
        return name

    def tables_into(self, target: str) -> list[SynapseTable]:
        return [t for t in self.tables if t.target == target]

    def tables_from(self, source: str) -> list[SynapseTable]:
        return [t for t in self.tables if t.source == source]

    @property
    def neuron_count(self) -> int:
        return sum(p.size for p in self.populations.values())

    @property
    def synapse_count(self) -> int:
        return sum(t.nnz for t in self.tables)

    def with_(self, **changes: Any) -> "HardwareNetwork":
        return replace(self, **changes)
