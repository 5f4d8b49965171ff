"""What every pass may read besides its input: the target's choices and the report being built.

Not a pass itself. A PassContext is created once per compilation by the driver.
Passes read its fields and add their own section to ``report`` (the only thing
they write), so the driver can put every pass's findings into report.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from nirc.convention import Convention
from nirc.neuron_models.base import NeuronModel


@dataclass
class PassContext:
    """The options a compilation runs with."""

    model: NeuronModel
    dt: float
    method: str = "euler"             # discretisation: "euler" | "exact"
    granularity: str = "layer"        # quantization scaling: "layer" | "channel"
    formats: Mapping[str, Any] = field(default_factory=dict)
    supported_nodes: frozenset[str] | None = None   # NIR types the target runs; None = all
    target_name: str = ""
    target: Any = None                # the loaded Target (backends read their own sections)
    file: str | None = None
    # Per-compilation overrides of a target's backend options, by name (e.g. speck_reset).
    options: Mapping[str, Any] = field(default_factory=dict)
    # Calibration input for fidelity-driven quantization: a --calibration NPZ path, a
    # nirc.fidelity.Calibration, or None (seeded random spikes, nirc.fidelity.DEFAULT).
    calibration: Any = None
    report: dict[str, Any] = field(default_factory=dict)
    # How the model was trained (exporter, dt, reset/spike/threshold rules; nirc.convention).
    # None: NIR's own semantics at ``dt``. The driver sets it; dt and method agree with it.
    convention: Convention | None = None
