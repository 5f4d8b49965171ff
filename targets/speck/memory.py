"""Memory a convolutional layer occupies on one Speck / DYNAP-CNN core.

A core stores a layer's kernels, its neuron states and its biases in three
separate memories whose addresses are built from bit fields, so each field is
rounded up to a power of two (sinabs ``DynapcnnLayer.memory_summary``, and the
table in sinabs' docs "speck/overview"):

    kernel = c_in  * 2**(ceil(log2(k*k)) + ceil(log2(c_out)))
    neuron = c_out * 2**(ceil(log2(h_out)) + ceil(log2(w_out)))
    bias   = c_out if the layer has biases, else 0

``h_out``/``w_out`` are the convolution's output (before the destination
pooling). All figures are in words (one weight / one neuron state / one bias).
"""

from __future__ import annotations

from dataclasses import dataclass

KIND_NAMES = ("kernel", "neuron", "bias")


def ceil_log2(n: int) -> int:
    """Smallest e with 2**e >= n (n >= 1); exact on integers, unlike float log2."""
    if n < 1:
        raise ValueError(f"ceil_log2 needs n >= 1, got {n}")
    return (n - 1).bit_length()


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution with symmetric padding and no dilation."""
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class LayerGeometry:
    """The shape facts of one core's convolution that decide its memory footprint."""

    c_in: int
    h_in: int
    w_in: int
    c_out: int
    kernel: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    has_bias: bool = True

    @property
    def h_out(self) -> int:
        return conv_output_size(self.h_in, self.kernel, self.stride[0], self.padding[0])

    @property
    def w_out(self) -> int:
        return conv_output_size(self.w_in, self.kernel, self.stride[1], self.padding[1])


@dataclass(frozen=True)
class MemoryDemand:
    """Words of kernel, neuron and bias memory one layer needs."""

    kernel: int
    neuron: int
    bias: int

    def get(self, kind: str) -> int:
        return getattr(self, kind)


def kernel_memory(c_in: int, c_out: int, kernel: int) -> int:
    return c_in * 2 ** (ceil_log2(kernel * kernel) + ceil_log2(c_out))


def neuron_memory(c_out: int, h_out: int, w_out: int) -> int:
    return c_out * 2 ** (ceil_log2(h_out) + ceil_log2(w_out))


def memory_demand(layer: LayerGeometry) -> MemoryDemand:
    return MemoryDemand(kernel=kernel_memory(layer.c_in, layer.c_out, layer.kernel),
                        neuron=neuron_memory(layer.c_out, layer.h_out, layer.w_out),
                        bias=layer.c_out if layer.has_bias else 0)


def words(n: int) -> str:
    """8192 -> '8Ki', 1536 -> '1.5Ki', 100 -> '100' (how sinabs and the datasheet write sizes)."""
    if n >= 1024:
        return f"{n / 1024:g}Ki"
    return str(n)
