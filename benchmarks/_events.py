"""Synaptic events of a run of an emitted build, counted the same way by every benchmark."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np


def synaptic_events(config: Mapping, arrays: Mapping[str, np.ndarray],
                    sent_by: Callable[[str], np.ndarray | None]) -> int:
    """Spikes each table's source sent (``sent_by(source)``, (..., n_source); None: skip the
    table) times the synapses each source neuron drives, summed over tables, steps and samples."""
    total = 0
    for table in config["tables"]:
        sent = sent_by(table["source"])
        if sent is None:
            continue
        cols = arrays[table["weights"]["col"].partition(":")[2]]
        fan_out = np.bincount(cols, minlength=table["shape"][1])
        total += int(np.asarray(sent, dtype=np.int64).reshape(-1, fan_out.size).sum(axis=0) @ fan_out)
    return total
