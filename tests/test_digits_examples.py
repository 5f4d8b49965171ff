"""The trained digits models in examples/digits/: small, readable, compiling, and run by
nirc's float reference as their framework ran them on the stored test spikes.

The frameworks' outputs are stored (examples/train_digits.py writes them next to the
models), so these tests need no framework; retraining needs the `frameworks` extra.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from nirc.convention import resolve
from nirc.driver import compile as compile_model
from nirc.nirio import read
from nirc.simulate import simulate

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
MANIFEST = json.loads((DIGITS / "manifest.json").read_text(encoding="utf-8"))
MODELS = sorted(MANIFEST["models"])
# One target per model that holds it (the benchmark runs every target).
TARGET = {"snntorch_mlp": "loihi2", "snntorch_cnn": "loihi2", "snntorch_rsynaptic": "xylo_imu",
          "sinabs_cnn": "speck2f", "rockpool_lif": "xylo_imu", "norse_mlp": "spinnaker2"}
EXPORTER = {"snntorch": "snntorch", "sinabs": "sinabs", "rockpool": "rockpool",
            "norse": "norse"}
SAMPLES = 40


@pytest.fixture(scope="module")
def reference():
    with np.load(DIGITS / "reference.npz") as data:
        return {k: data[k] for k in data.files}


def test_every_framework_and_both_encodings_are_shipped():
    frameworks = {m["framework"] for m in MANIFEST["models"].values()}
    assert frameworks == set(EXPORTER)
    assert set(TARGET) == set(MODELS)
    assert {m["encoding"] for m in MANIFEST["models"].values()} == {"rate", "rows"}


@pytest.mark.parametrize("name", MODELS)
def test_model_is_small_and_its_exporter_is_recognised(name):
    entry = MANIFEST["models"][name]
    path = DIGITS / entry["file"]
    assert path.stat().st_size < 256 << 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # Rockpool's batch dimension is repaired
        graph = read(path)
    assert graph.metadata["script"] == "examples/train_digits.py"
    assert resolve(graph, "auto").exporter == EXPORTER[entry["framework"]]


@pytest.mark.parametrize("name", MODELS)
def test_float_reference_predicts_as_the_framework_did(name, reference):
    """nirc's float reference under the detected rules picks the framework's class on the
    stored test spikes (the trained models leave few near-ties, so this is tight)."""
    entry = MANIFEST["models"][name]
    x = reference[f"input_{entry['encoding']}"][:, :SAMPLES]
    x = x.reshape(x.shape[0], x.shape[1], *entry["input_shape"]).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = read(DIGITS / entry["file"])
        convention = resolve(graph, "auto", **entry["nirc_options"])
        (inp,) = graph.inputs()
        out = simulate(graph, {inp: x}, batch=True, convention=convention).outputs
    (counts,) = out.values()
    counts = counts.reshape(x.shape[0], SAMPLES, -1).sum(0)
    framework = reference[f"counts_{name}"][:SAMPLES]
    assert np.mean(counts.argmax(1) == framework.argmax(1)) >= 0.95


@pytest.mark.parametrize("name", MODELS)
def test_model_compiles_for_a_target_that_holds_it(name, tmp_path):
    entry = MANIFEST["models"][name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = compile_model(DIGITS / entry["file"], TARGET[name], tmp_path / "build",
                               calibration_steps=0,
                               convention={"exporter": "auto", **entry["nirc_options"]})
    assert (tmp_path / "build" / "config.json").exists()
    assert result.convention.exporter == EXPORTER[entry["framework"]]
    assert result.network.neuron_count > CLASSES_MIN


CLASSES_MIN = 10


@pytest.mark.slow
def test_training_script_regenerates_the_shipped_model_byte_for_byte(tmp_path, missing_oracle):
    """examples/train_digits.py is seeded and single-threaded: retraining the snnTorch MLP
    writes the shipped file and the same framework outputs and test spikes."""
    import importlib.util

    try:
        import snntorch  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as missing:
        missing_oracle(f"the training script needs snnTorch and scikit-learn: {missing}")
    spec = importlib.util.spec_from_file_location("train_digits",
                                                  DIGITS.parent / "train_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import torch

    threads = torch.get_num_threads()
    try:
        assert module.main(["--only", "snntorch_mlp", "--out-dir", str(tmp_path)]) == 0
    finally:       # the script makes torch deterministic and single-threaded process-wide
        torch.use_deterministic_algorithms(False)
        torch.set_num_threads(threads)
    assert (tmp_path / "snntorch_mlp.nir").read_bytes() == \
        (DIGITS / "snntorch_mlp.nir").read_bytes()
    with np.load(tmp_path / "reference.npz") as new, np.load(DIGITS / "reference.npz") as old:
        for key in ("counts_snntorch_mlp", "input_rate", "input_rows", "labels",
                    "calibration_rate", "calibration_rows"):
            assert np.array_equal(new[key], old[key]), key
