"""Run a XyloSpec on SynSense's own simulator, xylosim (optional dependency), for cross-checking.

``xylosim_layer(spec)`` builds a ``xylosim.v2.XyloLayer`` the way rockpool's
``XyloSim.from_specification`` does (synapse lists per source: synapse 1
targets in index order, then synapse 2 targets; readout rows for every hidden
neuron). ``run_xylosim(spec, counts)`` evolves it and returns the same
XyloRecord our emulator returns, so the two can be compared array by array.
"""

from __future__ import annotations

import numpy as np

from nirc.errors import TargetError
from nirc.neuron_models.xylo_lif import XyloRecord, XyloSpec


def _require_xylosim():
    try:
        import xylosim.v2 as xylosim_v2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise TargetError("xylosim is not installed (pip install xylosim)") from err
    return xylosim_v2


def _synapse_lists(module, weights: np.ndarray) -> list:
    """Per source, XyloSynapse(target, synapse, weight) for every non-zero weight, synapse 1 first."""
    if weights.ndim == 2:
        weights = weights[:, :, None]
    lists = []
    for row in weights:
        syns = [module.XyloSynapse(int(t), k, int(row[t, k]))
                for k in range(row.shape[1]) for t in np.flatnonzero(row[:, k])]
        lists.append(syns)
    return lists


class XylosimLayer:
    """A xylosim.v2.XyloLayer together with the synapse objects it points to.

    The C++ layer keeps raw pointers to the XyloSynapse objects; they must live
    as long as the layer or evolve() reads freed memory (and crashes).
    """

    def __init__(self, layer, synapses):
        self.layer = layer
        self._synapses = synapses

    def __getattr__(self, name):
        return getattr(self.layer, name)


def xylosim_layer(spec: XyloSpec) -> XylosimLayer:
    """A fresh xylosim.v2.XyloLayer computing ``spec`` (state zero)."""
    x = _require_xylosim()
    aliases = [list(map(int, a)) for a in spec.aliases] if spec.aliases else [[] for _ in range(spec.n_hidden)]
    synapses = (_synapse_lists(x, np.asarray(spec.weights_in)),
                _synapse_lists(x, np.asarray(spec.weights_rec)),
                _synapse_lists(x, np.asarray(spec.weights_out)))
    return XylosimLayer(x.XyloLayer(
        *synapses,
        aliases,
        [int(v) for v in spec.threshold], [int(v) for v in spec.threshold_out],
        spec.has_bias, [int(v) for v in spec.bias], [int(v) for v in spec.bias_out],
        int(spec.weight_shift_in), int(spec.weight_shift_rec), int(spec.weight_shift_out),
        [int(v) for v in spec.dash_mem], [int(v) for v in spec.dash_mem_out],
        [[int(a), int(b)] for a, b in zip(spec.dash_syn, spec.dash_syn_2)],
        [[int(v)] for v in spec.dash_syn_out],
        "nirc"), synapses)


def run_xylosim(spec: XyloSpec, counts: np.ndarray, layer=None) -> XyloRecord:
    """Evolve xylosim on input events ``counts`` (T, Nin); recordings shaped (1, T, ...) like ours."""
    layer = layer if layer is not None else xylosim_layer(spec)
    counts = np.asarray(counts)
    if counts.size and counts.max() > 255:
        raise TargetError("xylosim takes at most 255 input events per channel and step", field="input")
    out = np.asarray(layer.evolve(counts.astype(np.uint8)), np.uint8).reshape(len(counts), spec.n_outputs)

    def states(rec, n):
        arr = np.asarray(rec, np.int16)
        return arr.reshape(n, len(counts)).T[None] if n else np.zeros((1, len(counts), 0), np.int16)

    return XyloRecord(
        spikes=np.asarray(layer.rec_recurrent_spikes, np.uint8).reshape(len(counts), spec.n_hidden)[None],
        spikes_out=out[None],
        v_mem=states(layer.rec_v_mem, spec.n_hidden),
        i_syn=states(layer.rec_i_syn, spec.n_hidden),
        i_syn2=states(layer.rec_i_syn2, spec.n_hidden),
        v_mem_out=states(layer.rec_v_mem_out, spec.n_outputs),
        i_syn_out=states(layer.rec_i_syn_out, spec.n_outputs))
