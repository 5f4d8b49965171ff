"""The NIR 1.0 node set as plain immutable dataclasses.

Each node's fields are exactly the parameters NIR stores for it (the names the
reference ``nir`` package writes to HDF5), so reading, writing, validation and
shape inference walk fields generically through ``NODE_TYPES`` and
``param_kind``. Each node knows three things about itself:

- ``own_input_shape()`` / ``own_output_shape()``: what its parameters alone
  say about its shapes (None when they say nothing, e.g. scalar parameters);
- ``output_shape(input_shape)``: the shape it produces from a given input;
- ``validate()``: raises ModelError naming the offending parameter.

Shapes exclude the batch dimension and, for NIR, the time dimension.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping

import numpy as np

from nirc.errors import ModelError

Shape = tuple[int, ...]

# Layers beyond this many neurons are refused before anything is allocated: far more
# than any chip holds (Loihi 2: 1M neurons), and a float64 parameter of this size is 512 MiB.
MAX_ELEMENTS = 1 << 26


def param(kind: str, default: Any = None, optional: bool = False):
    """A dataclass field that is a NIR parameter of the given kind.

    kinds: "array" (float array), "shape" (1-d int array of dims),
    "spatial" (dims of the spatial axes only; one axis is stored as a scalar, as nir does),
    "ints" (int or small int array, e.g. stride), "padding" (ints or 'same'/'valid'),
    "int" (scalar int).
    """
    meta = {"nir": kind, "optional": optional}
    if default is None and not optional:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def param_kind(node_type: type, name: str) -> str:
    for f in fields(node_type):
        if f.name == name:
            return f.metadata["nir"]
    raise KeyError(name)


def check_finite(name: str, value: np.ndarray) -> None:
    if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
        bad = "NaN" if np.any(np.isnan(value)) else "Inf"
        raise ModelError(f"contains {bad} values", field=name)


def check_bound(name: str, value: np.ndarray, bound: str, bad: np.ndarray) -> None:
    """ModelError naming the first offending element when any of ``bad`` is set."""
    if np.any(bad):
        value = np.asarray(value)
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f" at index {list(first)}" if value.ndim else ""
        raise ModelError(f"must be {bound}, got {value[first]:g}{where} ({int(np.sum(bad))} of "
                         f"{value.size} values)", field=name)


def as_shape(value: Any, name: str) -> Shape:
    arr = np.asarray(value)
    if arr.ndim > 1 or (arr.size and arr.dtype.kind not in "iuf"):
        raise ModelError(f"expected a list of dimensions, got {arr!r}", field=name)
    dims = tuple(int(d) for d in np.atleast_1d(arr))
    if any(d != float(x) for d, x in zip(dims, np.atleast_1d(arr))):
        raise ModelError(f"dimensions must be integers, got {arr.tolist()}", field=name)
    if any(d <= 0 for d in dims):
        raise ModelError(f"dimensions must be positive, got {list(dims)}", field=name)
    if math.prod(dims) > MAX_ELEMENTS:
        raise ModelError(f"shape {list(dims)} has {math.prod(dims):,} elements, more than the "
                         f"{MAX_ELEMENTS:,} nirc accepts in one layer", field=name)
    return dims


def pair(value: Any, n: int, name: str) -> tuple[int, ...]:
    """A stride/dilation/kernel parameter as an n-tuple (NIR allows a scalar for all axes)."""
    arr = np.atleast_1d(np.asarray(value))
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.shape != (n,):
        raise ModelError(f"expected {n} value(s), got {np.asarray(value).tolist()}", field=name)
    return tuple(int(v) for v in arr)


@functools.lru_cache(maxsize=None)
def _param_names(cls: type) -> tuple[str, ...]:
    """The NIR parameters of a node class, in field order (fields() per call costs more than
    the shape inference it serves on a 10^5-node graph)."""
    return tuple(f.name for f in fields(cls) if "nir" in f.metadata)


@dataclass(frozen=True, eq=False)
class Node:
    """Base of every NIR node."""

    # Free-form annotations the file carries for this node (nested dicts allowed).
    metadata: Mapping[str, Any] = field(default_factory=dict, kw_only=True, compare=False)
    nir_type: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _param_names(type(self))}

    def own_input_shape(self) -> Shape | None:
        return None

    def own_output_shape(self) -> Shape | None:
        return None

    def output_shape(self, input_shape: Shape | None) -> Shape | None:
        """Shape produced from an input of ``input_shape`` (elementwise by default)."""
        own = self.own_output_shape()
        return own if own is not None else input_shape

    def shape_field(self) -> str | None:
        """The parameter that fixes this node's input shape, named in shape-mismatch errors."""
        for name, value in self.params().items():
            if isinstance(value, np.ndarray) and value.ndim > 0:
                return name
        return None

    def parameter_count(self) -> int:
        """Number of stored parameter values (weights, biases, neuron constants)."""
        return sum(int(np.size(v)) for f in fields(self) if f.metadata.get("nir") == "array"
                   for v in [getattr(self, f.name)] if v is not None)

    def synapses(self, input_shape: Shape) -> tuple[int, int]:
        """(connections, connections with a nonzero weight) from inputs to outputs once
        unrolled to individual neurons; 0 for elementwise and reshaping nodes."""
        return 0, 0

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("nir") == "array" and isinstance(value, np.ndarray):
                if value.size == 0:
                    raise ModelError(f"is empty (shape {list(value.shape)})", field=f.name)
                check_finite(f.name, value)


# --- graph boundary --------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Input(Node):
    """A graph input of the given shape."""

    shape: np.ndarray = param("shape")
    nir_type: ClassVar[str] = "Input"

    def own_input_shape(self) -> Shape:
        return as_shape(self.shape, "shape")

    own_output_shape = own_input_shape

    def validate(self) -> None:
        as_shape(self.shape, "shape")


@dataclass(frozen=True, eq=False)
class Output(Node):
    """A graph output of the given shape (None: whatever arrives; 0.0.x files stored none)."""

    shape: np.ndarray | None = param("shape", optional=True)
    nir_type: ClassVar[str] = "Output"

    def own_input_shape(self) -> Shape | None:
        return None if self.shape is None else as_shape(self.shape, "shape")

    own_output_shape = own_input_shape

    def validate(self) -> None:
        self.own_input_shape()


# --- weights ----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Affine(Node):
    """y = W x + b, W of shape (out, in)."""

    weight: np.ndarray = param("array")
    bias: np.ndarray = param("array")
    nir_type: ClassVar[str] = "Affine"

    def own_input_shape(self) -> Shape:
        return (self.weight.shape[1],)

    def own_output_shape(self) -> Shape:
        return (self.weight.shape[0],)

    def synapses(self, input_shape: Shape) -> tuple[int, int]:
        return int(self.weight.size), int(np.count_nonzero(self.weight))

    def validate(self) -> None:
        if self.weight.ndim != 2:
            raise ModelError(f"must be a matrix (out, in), got shape {list(self.weight.shape)}",
                             field="weight")
        if self.bias.ndim > 1 or (self.bias.ndim == 1 and self.bias.shape[0] != self.weight.shape[0]):
            raise ModelError(f"shape {list(self.bias.shape)} does not match the weight's "
                             f"{self.weight.shape[0]} outputs", field="bias")
        super().validate()


@dataclass(frozen=True, eq=False)
class Linear(Node):
    """y = W x, W of shape (out, in)."""

    weight: np.ndarray = param("array")
    nir_type: ClassVar[str] = "Linear"

    def own_input_shape(self) -> Shape:
        return (self.weight.shape[1],)

    def own_output_shape(self) -> Shape:
        return (self.weight.shape[0],)

    def synapses(self, input_shape: Shape) -> tuple[int, int]:
        return int(self.weight.size), int(np.count_nonzero(self.weight))

    def validate(self) -> None:
        if self.weight.ndim != 2:
            raise ModelError(f"must be a matrix (out, in), got shape {list(self.weight.shape)}",
                             field="weight")
        super().validate()


def conv_output_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int,
                     dilation: int) -> int:
    return (size + pad_lo + pad_hi - dilation * (kernel - 1) - 1) // stride + 1


def valid_taps(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int,
               dilation: int) -> np.ndarray:
    """For each kernel tap along one axis, how many output positions it reaches a real
    (not padded) input from — the per-axis factor of an unrolled convolution's synapses."""
    out = conv_output_size(size, kernel, stride, pad_lo, pad_hi, dilation)
    pos = (np.arange(out)[:, None] * stride - pad_lo + np.arange(kernel)[None, :] * dilation)
    return ((pos >= 0) & (pos < size)).sum(axis=0)


def _unrolled_taps(spatial: Shape, kernel: Shape, strides, pads, dilations) -> np.ndarray:
    """Outer product over axes of valid_taps: reach of every kernel tap, shape = kernel."""
    reach = np.ones((), dtype=np.int64)
    for n, k, s, (lo, hi), d in zip(spatial, kernel, strides, pads, dilations):
        reach = np.multiply.outer(reach, valid_taps(n, k, s, lo, hi, d))
    return reach


@dataclass(frozen=True, eq=False)
class _ConvNd(Node):
    weight: np.ndarray = param("array")
    stride: Any = param("ints", default=1)
    padding: Any = param("padding", default=0)
    dilation: Any = param("ints", default=1)
    groups: int = param("int", default=1)
    bias: np.ndarray | None = param("array", optional=True)
    input_shape: Any = param("spatial", optional=True)
    spatial_dims: ClassVar[int] = 0

    @property
    def kernel(self) -> tuple[int, ...]:
        return tuple(self.weight.shape[2:])

    def stride_t(self) -> tuple[int, ...]:
        return pair(self.stride, self.spatial_dims, "stride")

    def dilation_t(self) -> tuple[int, ...]:
        return pair(self.dilation, self.spatial_dims, "dilation")

    def padding_lohi(self) -> tuple[tuple[int, int], ...]:
        """Padding per spatial axis as (before, after); 'same' pads as torch does."""
        pad = self.padding
        if isinstance(pad, bytes):
            pad = pad.decode()
        if isinstance(pad, str):
            if pad == "valid":
                return ((0, 0),) * self.spatial_dims
            if pad == "same":
                out = []
                for k, d in zip(self.kernel, self.dilation_t()):
                    total = d * (k - 1)
                    out.append((total // 2, total - total // 2))
                return tuple(out)
            raise ModelError(f"must be an integer, a list or 'same'/'valid', got '{pad}'",
                             field="padding")
        return tuple((p, p) for p in pair(pad, self.spatial_dims, "padding"))

    def shape_field(self) -> str:
        return "weight" if self.input_shape is None else "input_shape"

    def spatial_input(self) -> Shape | None:
        if self.input_shape is None:
            return None
        return as_shape(self.input_shape, "input_shape")

    def own_input_shape(self) -> Shape | None:
        spatial = self.spatial_input()
        if spatial is None:
            return None
        return (self.weight.shape[1] * self.groups, *spatial)

    def output_shape(self, input_shape: Shape | None) -> Shape | None:
        shape = input_shape if input_shape is not None else self.own_input_shape()
        if shape is None:
            return None
        n = self.spatial_dims
        in_channels = self.weight.shape[1] * self.groups
        if len(shape) != n + 1:
            raise ModelError(f"expects a (C, {', '.join('HW'[-n:] if n == 2 else 'N')}) input, "
                             f"got {list(shape)}", field="weight")
        if shape[0] != in_channels:
            raise ModelError(f"input has {shape[0]} channels but the weight "
                             f"{list(self.weight.shape)} with groups={self.groups} expects "
                             f"{in_channels}", field="weight")
        spatial = shape[1:]
        out = [conv_output_size(n, k, s, lo, hi, d)
               for n, k, s, (lo, hi), d in zip(spatial, self.kernel, self.stride_t(),
                                               self.padding_lohi(), self.dilation_t())]
        if any(o <= 0 for o in out):
            raise ModelError(f"input {list(shape)} is smaller than the kernel {list(self.kernel)} "
                             f"(output would be {out})", field="weight")
        return (self.weight.shape[0], *out)

    def own_output_shape(self) -> Shape | None:
        return self.output_shape(None)

    def synapses(self, input_shape: Shape) -> tuple[int, int]:
        reach = _unrolled_taps(input_shape[1:], self.kernel, self.stride_t(),
                               self.padding_lohi(), self.dilation_t())
        total = int(reach.sum()) * self.weight.shape[0] * self.weight.shape[1]
        nonzero = int(((self.weight != 0) * reach).sum())
        return total, nonzero

    def validate(self) -> None:
        n = self.spatial_dims
        if self.weight.ndim != n + 2:
            raise ModelError(f"must have {n + 2} dimensions (C_out, C_in/groups, "
                             f"{', '.join('k' for _ in range(n))}), got shape "
                             f"{list(self.weight.shape)}", field="weight")
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            raise ModelError(f"{self.groups} groups do not divide {self.weight.shape[0]} output "
                             f"channels", field="groups")
        for name in ("stride", "dilation"):
            vals = pair(getattr(self, name), n, name)
            if any(v < 1 for v in vals):
                raise ModelError(f"must be >= 1, got {list(vals)}", field=name)
        if any(p < 0 for lohi in self.padding_lohi() for p in lohi):
            raise ModelError("must be >= 0", field="padding")
        if self.bias is not None and np.asarray(self.bias).ndim == 1 \
                and self.bias.shape[0] != self.weight.shape[0]:
            raise ModelError(f"has {self.bias.shape[0]} entries for {self.weight.shape[0]} output "
                             f"channels", field="bias")
        self.spatial_input()
        super().validate()


@dataclass(frozen=True, eq=False)
class Conv1d(_ConvNd):
    """1-d convolution over (C, N) inputs, weight (C_out, C_in/groups, K)."""

    nir_type: ClassVar[str] = "Conv1d"
    spatial_dims: ClassVar[int] = 1


@dataclass(frozen=True, eq=False)
class Conv2d(_ConvNd):
    """2-d convolution over (C, H, W) inputs, weight (C_out, C_in/groups, kH, kW)."""

    nir_type: ClassVar[str] = "Conv2d"
    spatial_dims: ClassVar[int] = 2


@dataclass(frozen=True, eq=False)
class _Pool2d(Node):
    kernel_size: Any = param("ints")
    stride: Any = param("ints")
    padding: Any = param("ints", default=0)

    def windows(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        return (pair(self.kernel_size, 2, "kernel_size"), pair(self.stride, 2, "stride"),
                pair(self.padding, 2, "padding"))

    def output_shape(self, input_shape: Shape | None) -> Shape | None:
        if input_shape is None:
            return None
        if len(input_shape) != 3:
            raise ModelError(f"expects a (C, H, W) input, got {list(input_shape)}",
                             field="kernel_size")
        k, s, p = self.windows()
        out = [conv_output_size(n, kk, ss, pp, pp, 1) for n, kk, ss, pp in
               zip(input_shape[1:], k, s, p)]
        if any(o <= 0 for o in out):
            raise ModelError(f"input {list(input_shape)} is smaller than the pooling window "
                             f"{list(k)}", field="kernel_size")
        return (input_shape[0], *out)

    def synapses(self, input_shape: Shape) -> tuple[int, int]:
        k, s, p = self.windows()
        reach = _unrolled_taps(input_shape[1:], k, s, [(x, x) for x in p], (1, 1))
        total = int(reach.sum()) * input_shape[0]
        return total, total

    def validate(self) -> None:
        k, s, p = self.windows()
        if min(k) < 1:
            raise ModelError(f"must be >= 1, got {list(k)}", field="kernel_size")
        if min(s) < 1:
            raise ModelError(f"must be >= 1, got {list(s)}", field="stride")
        if min(p) < 0:
            raise ModelError(f"must be >= 0, got {list(p)}", field="padding")


@dataclass(frozen=True, eq=False)
class SumPool2d(_Pool2d):
    """Sum over each pooling window."""

    nir_type: ClassVar[str] = "SumPool2d"


@dataclass(frozen=True, eq=False)
class AvgPool2d(_Pool2d):
    """Mean over each pooling window (padding counts as zeros in the window)."""

    nir_type: ClassVar[str] = "AvgPool2d"


@dataclass(frozen=True, eq=False)
class Flatten(Node):
    """Merge dimensions start_dim..end_dim (inclusive, batch excluded) into one."""

    start_dim: int = param("int", default=1)
    end_dim: int = param("int", default=-1)
    input_type: Any = param("shape", optional=True)
    nir_type: ClassVar[str] = "Flatten"

    def own_input_shape(self) -> Shape | None:
        return None if self.input_type is None else as_shape(self.input_type, "input_type")

    def dims(self, ndim: int) -> tuple[int, int]:
        start = self.start_dim + ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + ndim if self.end_dim < 0 else self.end_dim
        if not (0 <= start <= end < ndim):
            raise ModelError(f"start_dim={self.start_dim}, end_dim={self.end_dim} do not fit an "
                             f"input with {ndim} dimensions", field="start_dim")
        return start, end

    def output_shape(self, input_shape: Shape | None) -> Shape | None:
        shape = input_shape if input_shape is not None else self.own_input_shape()
        if shape is None:
            return None
        start, end = self.dims(len(shape))
        return (*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])


# --- elementwise state and thresholds -----------------------------------------------


@dataclass(frozen=True, eq=False)
class _Elementwise(Node):
    """A node whose array parameters all share its (input = output) shape, or are scalars."""

    positive: ClassVar[tuple[str, ...]] = ()

    def own_input_shape(self) -> Shape | None:
        shapes = [v.shape for v in self.params().values()
                  if isinstance(v, np.ndarray) and v.ndim > 0]
        if not shapes:
            return None
        if all(s == shapes[0] for s in shapes):
            return tuple(shapes[0])
        try:
            return tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            arrays = {k: np.shape(v) for k, v in self.params().items()
                      if isinstance(v, np.ndarray) and np.ndim(v) > 0}
            common = max(set(arrays.values()), key=list(arrays.values()).count)
            odd = next(k for k, v in arrays.items() if v != common)
            raise ModelError(f"shape {list(arrays[odd])} does not match the other parameters' "
                             f"{list(common)}", field=odd) from None

    own_output_shape = own_input_shape

    def validate(self) -> None:
        super().validate()
        self.own_input_shape()
        for name in self.positive:
            value = getattr(self, name)
            check_bound(name, value, "> 0", np.asarray(value) <= 0)


@dataclass(frozen=True, eq=False)
class Scale(_Elementwise):
    """y = s * x elementwise."""

    scale: np.ndarray = param("array")
    nir_type: ClassVar[str] = "Scale"


@dataclass(frozen=True, eq=False)
class Delay(_Elementwise):
    """y(t) = x(t - delay), delay in seconds (continuous time)."""

    delay: np.ndarray = param("array")
    nir_type: ClassVar[str] = "Delay"

    def validate(self) -> None:
        super().validate()
        check_bound("delay", self.delay, ">= 0", self.delay < 0)


@dataclass(frozen=True, eq=False)
class Threshold(_Elementwise):
    """z = H(x - threshold)."""

    threshold: np.ndarray = param("array")
    nir_type: ClassVar[str] = "Threshold"


@dataclass(frozen=True, eq=False)
class I(_Elementwise):  # noqa: E742 - the NIR name
    """Integrator: dv/dt = R I."""

    r: np.ndarray = param("array")
    nir_type: ClassVar[str] = "I"


@dataclass(frozen=True, eq=False)
class IF(_Elementwise):
    """Integrate-and-fire: dv/dt = R I; spike when v > v_threshold, then v = v_reset."""

    r: np.ndarray = param("array")
    v_threshold: np.ndarray = param("array")
    v_reset: np.ndarray | None = param("array", optional=True)
    nir_type: ClassVar[str] = "IF"


@dataclass(frozen=True, eq=False)
class LI(_Elementwise):
    """Leaky integrator: tau dv/dt = (v_leak - v) + R I."""

    tau: np.ndarray = param("array")
    r: np.ndarray = param("array")
    v_leak: np.ndarray = param("array")
    nir_type: ClassVar[str] = "LI"
    positive: ClassVar[tuple[str, ...]] = ("tau",)


@dataclass(frozen=True, eq=False)
class LIF(_Elementwise):
    """Leaky integrate-and-fire: LI dynamics, spike when v > v_threshold, then v = v_reset."""

    tau: np.ndarray = param("array")
    r: np.ndarray = param("array")
    v_leak: np.ndarray = param("array")
    v_threshold: np.ndarray = param("array")
    v_reset: np.ndarray | None = param("array", optional=True)
    nir_type: ClassVar[str] = "LIF"
    positive: ClassVar[tuple[str, ...]] = ("tau",)


@dataclass(frozen=True, eq=False)
class CubaLI(_Elementwise):
    """Current-based LI: tau_syn dI/dt = -I + w_in S; tau_mem dv/dt = (v_leak - v) + R I."""

    tau_syn: np.ndarray = param("array")
    tau_mem: np.ndarray = param("array")
    r: np.ndarray = param("array")
    v_leak: np.ndarray = param("array")
    w_in: np.ndarray | None = param("array", optional=True)
    nir_type: ClassVar[str] = "CubaLI"
    positive: ClassVar[tuple[str, ...]] = ("tau_syn", "tau_mem")


@dataclass(frozen=True, eq=False)
class CubaLIF(_Elementwise):
    """Current-based LIF: CubaLI dynamics, spike when v > v_threshold, then v = v_reset."""

    tau_syn: np.ndarray = param("array")
    tau_mem: np.ndarray = param("array")
    r: np.ndarray = param("array")
    v_leak: np.ndarray = param("array")
    v_threshold: np.ndarray = param("array")
    v_reset: np.ndarray | None = param("array", optional=True)
    w_in: np.ndarray | None = param("array", optional=True)
    nir_type: ClassVar[str] = "CubaLIF"
    positive: ClassVar[tuple[str, ...]] = ("tau_syn", "tau_mem")


# --- graphs -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NIRGraph(Node):
    """A graph of named nodes; edges (source, target) sum at a target with several sources.

    Edges may name a node inside a nested graph as "subgraph.inner" (some exporters
    do); an edge naming the subgraph itself enters at its Input node(s) and leaves
    from its Output node(s).
    """

    nodes: Mapping[str, Node] = field(default_factory=dict)
    edges: tuple[tuple[str, str], ...] = ()
    nir_type: ClassVar[str] = "NIRGraph"

    def inputs(self) -> dict[str, Input]:
        return {k: v for k, v in self.nodes.items() if isinstance(v, Input)}

    def outputs(self) -> dict[str, Output]:
        return {k: v for k, v in self.nodes.items() if isinstance(v, Output)}

    def predecessors(self, name: str) -> list[str]:
        return list(self._adjacency[0].get(name, ()))

    def successors(self, name: str) -> list[str]:
        return list(self._adjacency[1].get(name, ()))

    @functools.cached_property
    def _adjacency(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """(sources into each node, targets of each node), in edge order: built once per
        graph (the graph is immutable), so walking a 10^5-node graph stays linear."""
        into: dict[str, list[str]] = {}
        out: dict[str, list[str]] = {}
        for s, t in self.edges:
            into.setdefault(t, []).append(s)
            out.setdefault(s, []).append(t)
        return into, out

    def validate(self) -> None:
        """Validate every node; errors inside nested graphs name the node "sub.inner"."""
        for name, node in self.nodes.items():
            try:
                node.validate()
            except ModelError as err:
                where = f"{name}.{err.node}" if err.node else name
                raise ModelError(err.message, file=err.file, node=where, field=err.field) from None


NODE_TYPES: dict[str, type[Node]] = {
    cls.nir_type: cls
    for cls in (Input, Output, Affine, Linear, Scale, Conv1d, Conv2d, SumPool2d, AvgPool2d,
                Flatten, Delay, Threshold, I, IF, LI, LIF, CubaLI, CubaLIF, NIRGraph)
}

NEURON_TYPES: tuple[type[Node], ...] = (I, IF, LI, LIF, CubaLI, CubaLIF)
SPIKING_TYPES: tuple[type[Node], ...] = (IF, LIF, CubaLIF, Threshold)
WEIGHT_TYPES: tuple[type[Node], ...] = (Affine, Linear, Conv1d, Conv2d)
