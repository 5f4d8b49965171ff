"""How far Speck's per-event firing rule alone takes the Sinabs digits CNN from Sinabs.

    .venv/bin/python benchmarks/bench_speck_event_rule.py

Speck tests the threshold after every input event (one spike per event); Sinabs'
MultiSpike sums a step's input and fires floor(v / threshold). This runs the float network
speck_lower hands to the quantizer (examples/digits/sinabs_cnn.nir; no integers, no
16-bit state, no floor) on the 397 stored test digits under both rules, in the chip's event
order (nirc.targets.speck.network.run_chip_rule_float, which this script's own loop is
checked against: layers in order, a layer's input events in emission
order, one event's targets position by position; network input in ascending flat index),
and reports the share of digits whose winner (first most active output) equals Sinabs'
(reference.npz). Rows: the per-step rule (must reproduce Sinabs exactly); the per-event
rule; the per-event rule in one layer only; every neuron's negative inputs of a step
before its positive ones (equal to the per-step rule whenever no weight reaches the
threshold), in every layer or in layer 1 only (the one a host could order), in float and
on the chip's integers; other orders of the network input within a step (the only order a host
controls), with the same winner on the 64 calibration digits beside it, to see whether
calibration could choose one. The chip itself (8-bit weights, bench_accuracy.py) is
compared in docs/fidelity.md.

Prints the table and writes benchmarks/results/speck_event_rule.json.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import platform  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from nirc import __version__  # noqa: E402
from nirc.jit import njit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"
RESULTS = ROOT / "benchmarks" / "results"
MODEL = "sinabs_cnn"


def float_network():
    """The float Speck network of the digits CNN (after speck_lower, before quantization)."""
    from nirc.convention import resolve
    from nirc.driver import run_passes
    from nirc.errors import NircWarning
    from nirc.neuron_models import get_model
    from nirc.nirio import read
    from nirc.passes.context import PassContext
    from nirc.target import load_target

    target = load_target("speck2f")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NircWarning)
        graph = read(DIGITS / f"{MODEL}.nir")
        convention = resolve(graph, "auto")
        ctx = PassContext(model=get_model(target.neuron_model), dt=convention.dt,
                          method=convention.discretisation, formats=target.formats.model_dump(),
                          target_name=target.name, target=target, convention=convention)
        return run_passes(graph, ["normalize", "speck_lower"], ctx)


def chip_network():
    """The quantized network of the digits CNN as bench_accuracy.py builds it for speck2f
    (compiled with --calibration on the 64 stored training digits)."""
    import tempfile

    from nirc.driver import compile as compile_model
    from nirc.errors import NircWarning
    from nirc.nirio import read

    manifest = json.loads((DIGITS / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["models"][MODEL]
    with tempfile.TemporaryDirectory(prefix="nirc-event-rule-") as tmp, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", NircWarning)
        (name_in,) = read(DIGITS / entry["file"]).inputs()
        with np.load(DIGITS / "reference.npz") as data:
            cal = data[f"calibration_{entry['encoding']}"]
        path = Path(tmp) / "calibration.npz"
        np.savez(path, **{name_in: cal.reshape(cal.shape[0], cal.shape[1],
                                               *entry["input_shape"]).astype(np.float64)})
        return compile_model(DIGITS / entry["file"], "speck2f", None,
                             convention={"exporter": "auto"}, calibration=str(path)).network


def check_against_reference(chip, x, samples: int = 20):
    """This script's float loop on the chip's integers must reproduce the integer reference
    (no state here comes near the 16-bit register's bounds)."""
    from nirc.targets.speck.network import run_reference

    (name_in,) = chip.inputs
    last = list(chip.populations)[-1]
    mine = run(chip, x[:, :samples])
    for b in range(samples):
        ref = run_reference(chip, {name_in: x[:, b].astype(np.int64)})
        if not np.array_equal(ref["spikes"][last].sum(0), mine[b]):
            raise AssertionError(f"the float loop differs from run_reference on sample {b}")


def columns_in_update_order(weights, shape):
    """(CSC matrix whose columns list one event's targets in the chip's order, neuron map);
    nirc.targets.speck.network.update_order_columns in float."""
    c, h, w = (tuple(shape) + (1, 1))[:3] if len(shape) < 3 else shape
    neuron_of = np.arange(c * h * w).reshape(c, h * w).T.reshape(-1)
    row_of = np.empty_like(neuron_of)
    row_of[neuron_of] = np.arange(neuron_of.size)
    coo = sp.coo_array(weights)
    m = sp.csc_array((coo.data.astype(np.float64), (row_of[coo.row], coo.col)),
                     shape=weights.shape)
    m.sort_indices()
    return m, neuron_of


def gather(matrix, events):
    starts = matrix.indptr[events]
    lengths = matrix.indptr[events + 1] - starts
    pos = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) \
        + np.arange(int(lengths.sum()))
    return matrix.indices[pos].astype(np.int64), matrix.data[pos]


@njit(nogil=True)
def _per_event(v, rows, weights, threshold, fired):
    # Speck's rule in float: add, test, subtract, contribution after contribution.
    for i in range(rows.shape[0]):
        j = rows[i]
        value = v[j] + weights[i]
        fired[i] = value >= threshold[j]
        v[j] = value - threshold[j] if fired[i] else value


def run(hw, x, per_step=(), negatives_first=(), input_key=None):
    """Output spike counts (B, n) of the network on x (T, B, ...) in float arithmetic (no
    16-bit register): layers named in ``per_step`` sum the step and fire floor(v /
    threshold); the others fire per event, those in ``negatives_first`` taking each
    neuron's negative inputs of a step before its positive ones."""
    order = list(hw.populations)
    cols = {(t.source, t.target): columns_in_update_order(t.weights,
                                                           hw.populations[t.target].shape)
            for t in hw.tables}
    (name_in,) = hw.inputs
    counts = []
    for b in range(x.shape[1]):
        v = {n: np.zeros(hw.populations[n].size) for n in order}
        total = np.zeros(hw.populations[order[-1]].size)
        for t in range(x.shape[0]):
            flat = x[t, b].reshape(-1).astype(np.int64)
            events = {name_in: np.repeat(np.arange(flat.size), flat)}
            if input_key is not None:
                events[name_in] = events[name_in][np.argsort(input_key[events[name_in]],
                                                             kind="stable")]
            for name in order:
                p = hw.populations[name].params
                th = np.asarray(p["threshold_high"], np.float64)
                if np.any(np.asarray(p["bias"]) != 0) or np.any(p["threshold_low"] > -2 ** 15):
                    raise ValueError("this comparison covers networks without bias and floor")
                out = []
                for table in hw.tables_into(name):
                    m, neuron_of = cols[(table.source, name)]
                    rows, weights = gather(m, events[table.source])
                    rows = neuron_of[rows]
                    if name in per_step:
                        np.add.at(v[name], rows, weights)
                        continue
                    if name in negatives_first:
                        first = np.argsort(weights >= 0, kind="stable")
                        rows, weights = rows[first], weights[first]
                    fired = np.zeros(rows.size, dtype=np.bool_)
                    _per_event(v[name], rows, weights, th, fired)
                    out.append(rows[fired])
                if name in per_step:
                    n = np.where(v[name] >= th, np.floor(v[name] / th), 0).astype(np.int64)
                    v[name] -= n * th
                    events[name] = np.repeat(np.arange(n.size), n)
                else:
                    events[name] = np.concatenate(out) if out else np.zeros(0, np.int64)
            total += np.bincount(events[order[-1]], minlength=total.size)
        counts.append(total)
    return np.array(counts)


def main() -> int:
    manifest = json.loads((DIGITS / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["models"][MODEL]
    with np.load(DIGITS / "reference.npz") as data:
        shape = entry["input_shape"]
        x = data[f"input_{entry['encoding']}"]
        x = x.reshape(x.shape[0], x.shape[1], *shape)
        cal = data[f"calibration_{entry['encoding']}"]
        cal = cal.reshape(cal.shape[0], cal.shape[1], *shape)
        sinabs = data[f"counts_{MODEL}"]
    hw = float_network()
    layers = list(hw.populations)
    sinabs_cal = run(hw, cal, per_step=layers)

    def same(counts, reference):
        return float(np.mean(counts.argmax(1) == reference.argmax(1)))

    def tie_aware(counts, reference):
        top = counts == counts.max(1, keepdims=True)
        ref_top = reference == reference.max(1, keepdims=True)
        return float(np.mean((top & ref_top).any(1)))

    rows = []

    def row(label, counts, cal_counts=None, **extra):
        r = {"rule": label, "same_winner": same(counts, sinabs),
             "same_winner_tie_aware": tie_aware(counts, sinabs),
             "counts_equal": float(np.mean((counts == sinabs).all(1))),
             "spike_ratio": round(float(counts.sum() / sinabs.sum()), 4), **extra}
        if cal_counts is not None:
            r["calibration_same_winner"] = same(cal_counts, sinabs_cal)
        rows.append(r)
        print(f"{label:52s} {100 * r['same_winner']:5.1f} %  (ties as equal "
              f"{100 * r['same_winner_tie_aware']:5.1f} %, counts equal "
              f"{100 * r['counts_equal']:5.1f} %)"
              + (f"  calibration {100 * r['calibration_same_winner']:5.1f} %"
                 if cal_counts is not None else ""), flush=True)

    row("per step everywhere (Sinabs' rule)", run(hw, x, per_step=layers))
    everywhere = run(hw, x)
    # The library's float run of the chip's rule (what speck_quantize reports) must agree.
    from nirc.targets.speck.network import run_chip_rule_float

    (name_in,) = hw.inputs
    for b in range(x.shape[1]):
        lib = run_chip_rule_float(hw, {name_in: x[:, b].astype(np.int64)})
        if not np.array_equal(lib["spikes"][layers[-1]].sum(0), everywhere[b]):
            raise AssertionError(f"run_chip_rule_float differs from this script on sample {b}")
    row("per event everywhere (Speck's rule, float)", everywhere, run(hw, cal))
    for layer in layers:
        row(f"per event in layer {layer} only",
            run(hw, x, per_step=[n for n in layers if n != layer]))
    row("per event, each step's negative inputs first", run(hw, x, negatives_first=layers))
    # Layer 1 alone can get them first: its events come from the host, which could send a
    # step's events twice, to a copy of the input channels holding the kernel's negative
    # part, then to one holding its positive part (not implemented; docs/fidelity.md).
    row("per event, layer 1's negative inputs first", run(hw, x, negatives_first=[layers[0]]))
    chip = chip_network()
    check_against_reference(chip, x)
    row("chip integers, per event (the emulator's rule)", run(chip, x))
    row("chip integers, layer 1's negative inputs first", run(chip, x,
                                                           negatives_first=[layers[0]]))
    c, h, w = entry["input_shape"]
    ch, y, xx = np.unravel_index(np.arange(c * h * w), (c, h, w))
    keys = {"input rows descending": -(ch * h * w + y * w + xx),
            "input columns ascending": ch * h * w + xx * h + y,
            "input columns descending": -(ch * h * w + xx * h + y)}
    for label, key in keys.items():
        row(f"per event, {label}", run(hw, x, input_key=key), run(hw, cal, input_key=key))
    for seed in range(4):
        key = np.random.default_rng(seed).permutation(c * h * w)
        row(f"per event, input in a random order (seed {seed})", run(hw, x, input_key=key),
            run(hw, cal, input_key=key))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "speck_event_rule.json"
    out.write_text(json.dumps({
        "benchmark": "speck_event_rule", "nirc_version": __version__, "model": MODEL,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "test_samples": int(x.shape[1]), "calibration_samples": int(cal.shape[1]),
        "results": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
