"""Nodes that exist only between the discretize and fuse passes: NIR neurons and delays at a dt.

``discretize`` replaces each NIR neuron node (and Threshold) by a
DiscreteNeuron holding the per-step coefficients of the generic discrete
neuron (see nirc.neuron_models.float_reference), and each Delay by a
StepDelay counting whole steps. They behave as elementwise nodes for shape
inference; they are not NIR nodes, so dumps after discretize are written as
JSON + NPZ rather than .nir.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nirc.ir.nodes import _Elementwise, param


@dataclass(frozen=True, eq=False)
class DiscreteNeuron(_Elementwise):
    """One layer of generic discrete neurons; arrays have the layer's shape.

    i = i_decay*i + a;  v = v_decay*v + i + v_direct*a + v_bias;  spike v > threshold -> v_reset,
    where a = input_gain * (sum of incoming values) for each step.
    """

    i_decay: np.ndarray = param("array")
    v_decay: np.ndarray = param("array")
    input_gain: np.ndarray = param("array")
    v_direct: np.ndarray = param("array")
    v_bias: np.ndarray = param("array")
    threshold: np.ndarray = param("array")
    v_reset: np.ndarray = param("array")
    spiking: bool = True
    nir_source: str = ""
    nir_type: ClassVar[str] = "nirc.DiscreteNeuron"

    def validate(self) -> None:
        self.own_input_shape()


@dataclass(frozen=True, eq=False)
class StepDelay(_Elementwise):
    """y[t] = x[t - steps], a whole number of steps, the same for every element."""

    steps: np.ndarray = param("array")
    nir_type: ClassVar[str] = "nirc.StepDelay"

    def own_input_shape(self):
        return None
