"""Xylo's inputs: NIR input arrays -> the fabric's event counts per input channel and step.

Xylo inputs are event counts (non-negative integers; booleans count as one
event) per channel and step, shaped like the NIR Input ({name: (T, *shape)},
or (B, T, *shape) batched); each input port occupies the channel range the
layout gave it.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from nirc.errors import TargetError


def input_events(manifest: dict, inputs: Mapping[str, np.ndarray], batch: bool, n_channels: int) -> np.ndarray:
    """The (B, T, Nin) event-count array for named inputs; TargetError naming the input if one does not fit."""
    arrays, steps = {}, None
    for port in manifest["inputs"]:
        name = port["name"]
        if name not in inputs:
            raise TargetError(f"no data for input '{name}' (got {', '.join(sorted(inputs)) or 'none'})",
                              node=name, field="input")
        x = np.asarray(inputs[name])
        if not batch:
            x = x[None]
        size = port["channels"][1] - port["channels"][0]
        if x.ndim < 2 or int(np.prod(x.shape[2:])) != size:
            raise TargetError(f"{tuple(x.shape[2:])} values per step do not match the input's shape "
                              f"{tuple(port['shape'])}", node=name, field="input")
        x = x.reshape(x.shape[0], x.shape[1], size)
        if x.dtype == bool:
            x = x.astype(np.int64)
        if x.size and (np.any(x < 0) or np.any(x != np.round(x))):
            raise TargetError("Xylo inputs are event counts: values must be non-negative integers",
                              node=name, field="input")
        if steps is not None and x.shape[:2] != steps:
            raise TargetError(f"{x.shape[1]} steps, other inputs have {steps[1]}", node=name, field="input")
        steps = x.shape[:2]
        arrays[name] = x.astype(np.int64)
    events = np.zeros((*steps, n_channels), np.int64)
    for port in manifest["inputs"]:
        a, b = port["channels"]
        events[:, :, a:b] = arrays[port["name"]]
    return events
