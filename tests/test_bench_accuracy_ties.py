"""benchmarks/bench_accuracy.py's tie-aware winner statistics (winner_agreement)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_accuracy import winner_agreement  # noqa: E402


def test_strict_differences_split_into_framework_ties_chip_ties_and_genuine_ones():
    framework = np.array([[3, 3, 0],    # framework tie 0/1, the chip picks 1: framework tie
                          [5, 2, 0],    # chip tie 0/2 picks 0 = framework's: same winner
                          [1, 4, 0],    # chip tie 0/1 picks 0, framework's 1 is tied: chip tie
                          [0, 2, 5],    # chip says 1 by 2 spikes: genuine
                          [2, 2, 2]])   # all tied everywhere: same winner (both pick 0)
    chip = np.array([[1, 4, 0],
                     [3, 0, 3],
                     [6, 6, 1],
                     [0, 5, 3],
                     [1, 1, 1]])
    found = winner_agreement(chip.astype(float), framework.astype(float))
    assert found["differences"] == {"framework_tie": 1, "chip_tie": 1, "genuine": 1,
                                    "genuine_margin_spikes": [2]}
    assert found["same_winner_tie_aware"] == 4 / 5     # all but the genuine difference
    assert (found["framework_ties"], found["chip_ties"]) == (2, 3)
    assert np.mean(chip.argmax(1) == framework.argmax(1)) == 2 / 5    # the strict rate
