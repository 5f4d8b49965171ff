"""Speck quantization: 8-bit weights and biases, 16-bit thresholds, one scale per layer.

The rule is sinabs' (backend/dynapcnn/discretize.py), so a network discretised
by nirc and by sinabs gets the same integers: for each layer

    s = min(s(weights, 8 bits), s(biases, 8 bits), s([threshold_low, threshold_high], 16 bits))
    s(x, b) = (2^(b-1) - 1) / max(x)   if |min x| <= max(x) * 2^(b-1) / (2^(b-1) - 1)
              2^(b-1) / |min x|        otherwise

and every value is multiplied by ``s`` and rounded half to even, in float32 as
sinabs' torch code does. The low threshold (membrane floor) is the target's
choice (backend_options.neuron.low_threshold): by default the lowest 16-bit
value, which NIR's floor-less IF needs and which is written as -2^15 WITHOUT
entering ``s`` (in sinabs, min_v_mem = -2^15 enters s_thresholds and forces
s <= 1, rounding the weights to ~0); with sinabs' convention it is
-threshold_high and enters ``s`` like the high one (same scale either way).
Nothing is clipped: the scale guarantees the ranges. All-zero weights and
biases leave the scale to the thresholds (which are > 0, so the scale is
always finite).
"""

from __future__ import annotations

import numpy as np

from nirc.targets.speck.lower import SpeckLayer, SpeckNetwork


def discretization_scale(values: np.ndarray, bits: int) -> np.float32:
    """sinabs' determine_discretization_scale, in float32; inf for an all-zero array."""
    values = np.asarray(values, dtype=np.float32)
    lo_disc, hi_disc = np.float32(-(2 ** (bits - 1))), np.float32(2 ** (bits - 1) - 1)
    lo, hi = values.min(), values.max()
    ratio = np.float32(abs(lo_disc / hi_disc))
    with np.errstate(divide="ignore"):
        if abs(lo) <= abs(hi) * ratio:
            return np.float32(abs(hi_disc / hi)) if hi != 0 else np.float32(np.inf)
        return np.float32(abs(lo_disc / lo))


def discretize(values: np.ndarray, scale: np.float32) -> np.ndarray:
    return np.round(np.asarray(values, dtype=np.float32) * scale).astype(np.int64)


def layer_scale(layer: SpeckLayer, weight_bits: int = 8, state_bits: int = 16) -> np.float32:
    bias = layer.bias if layer.bias is not None else np.zeros(1)
    thresholds = [layer.threshold_high]
    if np.isfinite(layer.threshold_low):
        thresholds.append(layer.threshold_low)
    return min(discretization_scale(layer.weight, weight_bits),
               discretization_scale(bias, weight_bits),
               discretization_scale(np.array(thresholds), state_bits))


def threshold_room(layer: SpeckLayer, scale: float, state_bits: int = 16) -> float:
    """The largest factor the layer's thresholds can be multiplied by at ``scale`` and still
    fit the state's bits."""
    top = float(2 ** (state_bits - 1) - 1)
    largest = max(abs(layer.threshold_high), abs(layer.threshold_low)
                  if np.isfinite(layer.threshold_low) else 0.0)
    return top / (largest * scale) if largest > 0 else float("inf")


def quantize_network(net: SpeckNetwork, weight_bits: int = 8, state_bits: int = 16,
                     factors: dict[str, dict[str, float]] | None = None
                     ) -> tuple[SpeckNetwork, list[dict]]:
    """Integer layers and one report row per layer (scale and the error introduced).

    Without ``factors`` the integers are sinabs' (module docstring). ``factors[layer]``
    departs from it, as the fidelity search (passes/speck_quantize.py) chooses:
    ``"scale"`` multiplies the layer's scale (weights past the 8-bit range then clip to
    it, and the report counts them), ``"threshold"`` multiplies its thresholds alone
    (both thresholds, so a floor at -threshold stays at -threshold)."""
    layers, report = [], []
    lo_w, hi_w = -(2 ** (weight_bits - 1)), 2 ** (weight_bits - 1) - 1
    for layer in net.layers:
        f = (factors or {}).get(layer.name, {})
        s = np.float32(layer_scale(layer, weight_bits, state_bits)
                       * np.float32(f.get("scale", 1.0)))
        ts = np.float32(s * np.float32(f.get("threshold", 1.0)))
        raw_w = discretize(layer.weight, s)
        w = np.clip(raw_w, lo_w, hi_w)
        b = None if layer.bias is None else np.clip(discretize(layer.bias, s), lo_w, hi_w)
        th = int(discretize(np.array([layer.threshold_high]), ts)[0])
        tl = (int(discretize(np.array([layer.threshold_low]), ts)[0])
              if np.isfinite(layer.threshold_low) else -(2 ** (state_bits - 1)))
        q = layer.with_(weight=w, bias=b, threshold_high=th, threshold_low=tl, scale=float(s))
        layers.append(q)
        row = error_row(layer, q, float(s), weight_bits)
        if f:
            row.update(scale_factor=float(f.get("scale", 1.0)),
                       threshold_factor=float(f.get("threshold", 1.0)),
                       weights_clipped=int(np.count_nonzero(raw_w != w)))
        report.append(row)
    return SpeckNetwork(layers=tuple(layers), inputs=net.inputs, outputs=net.outputs, dt=net.dt,
                        quantized=True), report


def error_row(before: SpeckLayer, after: SpeckLayer, s: float, weight_bits: int) -> dict:
    """How far the integers, read back in float units, are from the float layer."""
    w_back = after.weight / s
    w_err = np.abs(w_back - before.weight)
    w_scale = float(np.max(np.abs(before.weight))) or 1.0
    row = {
        "layer": before.name,
        "scale": s,
        "threshold_high": after.threshold_high,
        "threshold_low": after.threshold_low,
        "weight_max_abs_error": float(w_err.max()),
        "weight_rel_error": float(w_err.max() / w_scale),
        "weights_zeroed": int(np.count_nonzero((after.weight == 0) & (before.weight != 0))),
        "weight_levels_used": int(np.unique(after.weight).size),
        "threshold_rel_error": float(abs(after.threshold_high / s - before.threshold_high)
                                     / before.threshold_high),
        "weight_range": [int(after.weight.min()), int(after.weight.max())],
    }
    if before.bias is not None:
        b_err = np.abs(after.bias / s - before.bias)
        row["bias_max_abs_error"] = float(b_err.max())
        row["bias_range"] = [int(after.bias.min()), int(after.bias.max())]
        limit = 2 ** (weight_bits - 1)
        row["bias_fits_bits"] = bool(after.bias.min() >= -limit and after.bias.max() < limit)
    return row
