"""split_signs: a mixed-sign table becomes an excitatory and an inhibitory one, each with 8-bit
magnitudes (Lava's mixed mode keeps 7), so Loihi builds round weights half as coarsely."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from nirc import intref
from nirc.driver import compile as compile_model, random_spike_input
from nirc.emulator import Chip
from nirc.neuron_models.loihi_cuba_lif import (SIGN_EXCITATORY, SIGN_INHIBITORY, SIGN_MIXED,
                                              LoihiCubaLIF)
from nirc.target import load_target
from nirc.verify import compare_runs

sys.path.insert(0, str(Path(__file__).parent))
from loihi_networks import mlp  # noqa: E402


def without_split():
    target = load_target("loihi2")
    return target.model_copy(update={"passes": [p for p in target.passes if p != "split_signs"]})


def test_every_loihi_table_holds_weights_of_one_sign_and_rounds_them_more_finely(tmp_path,
                                                                                monkeypatch):
    # At 8-bit precision (the quantize search may add refinement tables: tested apart).
    monkeypatch.setattr(LoihiCubaLIF, "choices", {"precision": ("8-bit",)})
    graph = mlp()
    split = compile_model(graph, "loihi2", tmp_path / "build", calibration_steps=0)
    mixed = compile_model(graph, without_split(), None, calibration_steps=0)

    modes = [t.kernel["sign_mode"] for t in split.network.tables]
    assert SIGN_MIXED not in modes and {SIGN_EXCITATORY, SIGN_INHIBITORY} <= set(modes)
    # No synapse is added; fewer small weights round to zero.
    nonzero = sum(int(np.count_nonzero(t.weights.data)) for t in mixed.network.tables)
    assert nonzero <= split.network.synapse_count <= graph.nodes["fc1"].weight.size + \
        graph.nodes["fc2"].weight.size
    assert [r["table"] for r in split.report["pass_reports"]["split_signs"]] == [0, 1]
    for a, b in zip(split.report["quantization"], mixed.report["quantization"]):
        assert a["weight_rel_error"] < 0.75 * b["weight_rel_error"]

    inputs = random_spike_input(graph, 50, seed=1, batch=3)
    assert compare_runs(Chip.load(tmp_path / "build").run(inputs, batch=True, record=True),
                        intref.run(split.network, inputs, batch=True, record=True)) == []
