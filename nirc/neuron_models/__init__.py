"""Neuron models: each model's arithmetic written once, shared by quantizer, integer reference
and emulator (see base.NeuronModel for the interface).

Register a new model by adding its module's ``MODEL`` object to ``MODELS``;
targets name a model by its key (``neuron_model:`` in the target YAML).
"""

from __future__ import annotations

from nirc.errors import TargetError
from nirc.neuron_models import float_reference, loihi_cuba_lif, speck_iaf, xylo_lif
from nirc.neuron_models.base import NeuronModel

MODELS: dict[str, NeuronModel] = {
    float_reference.MODEL.name: float_reference.MODEL,
    loihi_cuba_lif.MODEL.name: loihi_cuba_lif.MODEL,
    xylo_lif.MODEL.name: xylo_lif.MODEL,
    speck_iaf.MODEL.name: speck_iaf.MODEL,
}


def register(model: NeuronModel) -> None:
    """Add a model (backends outside the core call this at import time)."""
    MODELS[model.name] = model


def get_model(name: str) -> NeuronModel:
    try:
        return MODELS[name]
    except KeyError:
        raise TargetError(f"unknown neuron model '{name}' (known: {', '.join(sorted(MODELS))})",
                          field="neuron_model") from None


__all__ = ["NeuronModel", "MODELS", "get_model", "register"]
