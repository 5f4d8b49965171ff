"""Every neuron model module is registered under its own name and fills in the whole interface."""

import importlib
import pkgutil

import numpy as np
import pytest

import nirc.neuron_models
from nirc.errors import TargetError
from nirc.neuron_models import MODELS, get_model
from nirc.neuron_models.base import NeuronModel

MODULES = sorted(m.name for m in pkgutil.iter_modules(nirc.neuron_models.__path__)
                 if m.name != "base")


@pytest.mark.parametrize("module", MODULES)
def test_every_model_module_is_registered_under_its_models_name(module):
    model = importlib.import_module(f"nirc.neuron_models.{module}").MODEL
    if model.name not in MODELS:
        pytest.xfail(f"{module}.MODEL ('{model.name}') is not in nirc.neuron_models.MODELS yet")
    assert MODELS[model.name] is model


@pytest.mark.parametrize("name", sorted(MODELS))
def test_registered_models_declare_names_and_start_from_their_initial_state(name):
    model = MODELS[name]
    assert isinstance(model, NeuronModel) and model.name == name
    assert model.param_names and model.state_names and model.min_delay >= 0
    assert model.readout_state in model.state_names


def test_an_unknown_model_is_a_target_error_listing_the_known_ones():
    with pytest.raises(TargetError, match="unknown neuron model 'x'.*loihi_cuba_lif"):
        get_model("x")


@pytest.mark.parametrize("name", ["float", "loihi_cuba_lif"])
def test_a_neuron_without_input_keeps_its_initial_state_and_is_silent(name):
    model = get_model(name)
    params = {"float": {"i_decay": np.zeros(3), "v_decay": np.ones(3), "v_direct": np.zeros(3),
                        "i_bias": np.zeros(3), "v_bias": np.zeros(3),
                        "threshold": np.ones(3), "v_reset": np.zeros(3)},
              "loihi_cuba_lif": {k: np.zeros(3, np.int64) for k in model.param_names}}[name]
    state = model.init_state(params, batch=2)
    before = {k: v.copy() for k, v in state.items()}
    z = model.step(params, state, np.zeros((2, 3), model.dtype))
    assert not z.any()
    for k in state:
        assert np.array_equal(state[k], before[k])
