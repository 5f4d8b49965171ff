"""How faithfully a quantized network computes its float source, measured on calibration input.

Shared by the quantize passes (to choose scales that maximise agreement) and
by the driver and ``nirc verify`` (to report per layer and to warn):

- ``calibration(shapes, path)``: the calibration input, (T, B, *shape) per
  input port: the user's samples (``--calibration DATA.npz``, the layout of
  ``nirc verify --input``, with or without the batch axis), else seeded
  Bernoulli spikes (DEFAULT).
- ``layer_agreement``: one population's integer spikes against the float
  model's, with the hardware's added latency taken out: spike counts, their
  ratio, the correlation of per-(sample, neuron) counts, an ``agreement`` in
  [0, 1] (1 - L1 distance of the counts / their total: 1 when every neuron
  fires as often as in the float model on every sample) and the share of
  spikes that were a second or later spike of a neuron in one step (bursts,
  on chips that fire several spikes per step).
- ``compare``: every population of two runs; ``activity_warnings``: the
  layers whose activity explodes or dies (ACTIVITY_RATIO), whose count
  correlation is below CORRELATION_WARN or whose agreement is below
  AGREEMENT_WARN.
- ``search_factors``: the coordinate search over per-population factors (scale,
  threshold, ...) that quantizers run with ``score`` as the objective.
- ``zeroed_weights``: per population, the non-zero float weights that became
  zero in the quantized tables (more than ZEROED_WARN of them is a warning).

The reference is the source model as trained: nirc's float simulation of the
NIR graph under the file's convention (nirc.convention: dt, reset, spike
rules of the exporting framework; NIR's own semantics when there is none),
run once per compile on the calibration input (``reference_run``). Passes run
without the driver fall back to the float hardware network, which equals the
simulation under NIR semantics (tests/test_float_network_vs_simulate.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from nirc.errors import NircError

# Calibration input when the user gives none: Bernoulli spikes, seeded; at most this many
# steps and samples, fewer for large networks (BUDGET neuron-steps, at least MIN_STEPS).
DEFAULT = {"steps": 100, "samples": 4, "rate": 0.2, "seed": 0}
BUDGET = 500_000
MIN_STEPS = 10
AGREEMENT_WARN = 0.6      # a layer's calibration agreement below this is a warning
CORRELATION_WARN = 0.9    # so is a correlation of per-(sample, neuron) spike counts below this
ACTIVITY_RATIO = 3.0      # integer/float spikes above this explodes, below 1/this dies
MIN_SPIKES = 20           # fewer float spikes than this: ratios are not judged
ZEROED_WARN = 0.10        # share of a population's non-zero weights rounded to zero
RULES_WARN = 0.9          # below this agreement, firing rules the chip cannot follow are a warning


@dataclass
class Calibration:
    """Calibration input: per input port (T, B, *shape), and where it came from."""

    inputs: dict[str, np.ndarray]
    source: str
    path: str | None = None
    # The source model's run on ``inputs`` (nirc.simulate.SimResult, states recorded), set by
    # the driver before the passes (reference_run); None: quantizers run the float network.
    reference: Any = None
    reference_rules: str = "NIR semantics"

    @property
    def steps(self) -> int:
        return int(next(iter(self.inputs.values())).shape[0]) if self.inputs else 0

    @property
    def samples(self) -> int:
        return int(next(iter(self.inputs.values())).shape[1]) if self.inputs else 0

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "steps": self.steps, "samples": self.samples}


# Every simulated step also costs Python work per layer, however small the layer (the float
# reference steps each NIR node, the integer reference each population): the runs of a
# compile (the source model, the integer network, the traffic calibration) stay within this
# many layer-steps each. A graph so deep that MIN_STEPS would pass it (a chain of 10^5
# nodes) is compiled without them, and report.json says why (too_deep).
LAYER_STEP_BUDGET = 200_000


def default_size(neurons: int, layers: int = 1) -> tuple[int, int]:
    """(steps, samples) of the default calibration input for a network of ``neurons`` in
    ``layers``: DEFAULT's, shrunk so a float and an integer run of it stay within BUDGET
    neuron-steps and LAYER_STEP_BUDGET layer-steps (never below MIN_STEPS)."""
    sample_steps = BUDGET // max(int(neurons), 1)
    samples = int(np.clip(sample_steps // DEFAULT["steps"], 1, DEFAULT["samples"]))
    steps = int(np.clip(sample_steps // samples, MIN_STEPS, DEFAULT["steps"]))
    steps = max(min(steps, LAYER_STEP_BUDGET // max(int(layers), 1)), MIN_STEPS)
    return steps, samples


def too_deep(layers: int, steps: int) -> str | None:
    """Why a simulation of ``steps`` steps over ``layers`` layers is not run in a compile
    (more than LAYER_STEP_BUDGET layer-steps), or None when it is. Depends on the graph
    alone, never on the machine: builds stay deterministic."""
    if layers * steps <= LAYER_STEP_BUDGET:
        return None
    return (f"{layers:,} layers x {steps} steps = {layers * steps:,} layer-steps, above the "
            f"{LAYER_STEP_BUDGET:,} a compile simulates")


def calibration(shapes: Mapping[str, tuple[int, ...]], path: str | None = None,
                neurons: int = 0, layers: int = 1) -> Calibration:
    """The user's calibration samples from ``path`` (NPZ as ``nirc verify --input``: (T, B, *shape)
    or one sample (T, *shape)), else seeded random spikes (DEFAULT, sized by default_size for a
    network of ``neurons`` in ``layers``)."""
    if path is None:
        steps, samples = default_size(neurons, layers)
        rng = np.random.default_rng(DEFAULT["seed"])
        inputs = {name: (rng.random((steps, samples, *shape))
                         < DEFAULT["rate"]).astype(np.float64) for name, shape in sorted(shapes.items())}
        return Calibration(inputs, f"seeded random spikes (Bernoulli({DEFAULT['rate']}), seed "
                                   f"{DEFAULT['seed']})")
    from nirc.npzio import read_inputs

    try:
        inputs = read_inputs(path, dict(shapes), batch=True, kind="Input node")
    except NircError:
        try:
            inputs = {k: v[:, None] for k, v in read_inputs(path, dict(shapes), batch=False,
                                                            kind="Input node").items()}
        except NircError:
            # The batched reading's message names the expected (T, B, ...) layout.
            read_inputs(path, dict(shapes), batch=True, kind="Input node")
            raise
    if any(v.shape[0] == 0 or v.shape[1] == 0 for v in inputs.values()):
        raise NircError("calibration input has no steps or no samples", file=path,
                        field="calibration")
    return Calibration({k: np.asarray(v, np.float64) for k, v in inputs.items()},
                       "the user's samples (--calibration)", path)


def calibration_of(net, given: Any = None) -> Calibration:
    """The calibration input for a hardware network: ``given`` when it is one already (the
    driver's, with the source model's run), else the user's NPZ path or seeded spikes."""
    if isinstance(given, Calibration):
        return given
    return calibration({k: p.shape for k, p in net.inputs.items()}, given)


def reference_run(graph, cal: Calibration, dt: float, method: str, convention=None) -> Any:
    """The source model on the calibration input: nirc's float simulation of ``graph`` under
    ``convention`` (nirc.convention: the framework's dt, reset and spike rules; None: NIR's
    own), states recorded. Stored in ``cal.reference``."""
    from nirc.simulate import simulate

    kwargs = {"convention": convention} if convention is not None else {}
    cal.reference = simulate(graph, cal.inputs, dt=dt, method=method, batch=True, record=True,
                             **kwargs)
    cal.reference_rules = convention.rules() if convention is not None else "NIR semantics"
    return cal.reference


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 1.0 if np.array_equal(a, b) else None
    return float(np.corrcoef(a, b)[0, 1])


def layer_agreement(chip: np.ndarray, floating: np.ndarray, lag: int = 0) -> dict[str, Any]:
    """One population: integer spike counts (T, B, ...) against float spikes, integer step
    t + ``lag`` against float step t."""
    steps = chip.shape[0]
    lag = min(max(int(lag), 0), steps - 1)
    c = np.asarray(chip[lag:], np.float64).reshape(steps - lag, chip.shape[1], -1)
    f = np.asarray(floating[:steps - lag], np.float64).reshape(steps - lag, chip.shape[1], -1)
    cc, fc = c.sum(axis=0), f.sum(axis=0)
    total = float(cc.sum() + fc.sum())
    chip_spikes, float_spikes = float(cc.sum()), float(fc.sum())
    either = np.count_nonzero((c > 0) | (f > 0))
    return {
        "float_spikes": int(float_spikes), "chip_spikes": int(chip_spikes),
        "spike_ratio": (chip_spikes / float_spikes) if float_spikes else None,
        "count_correlation": _corr(cc, fc),
        "agreement": 1.0 - float(np.abs(cc - fc).sum()) / total if total else 1.0,
        "burst_share": float((c - np.minimum(c, 1)).sum() / chip_spikes) if chip_spikes else 0.0,
        # Timing: steps where both fire / steps where either fires (1 when both stay silent).
        "step_jaccard": float(np.count_nonzero((c > 0) & (f > 0)) / either) if either else 1.0,
        "latency_steps": lag,
    }


def voltage_agreement(chip: np.ndarray, floating: np.ndarray, lag: int = 0) -> dict[str, Any]:
    """A non-spiking readout: voltages in float units (T, B, ...), compared by correlation of
    their per-(sample, neuron) means (agreement = that correlation, floored at 0)."""
    steps = chip.shape[0]
    lag = min(max(int(lag), 0), steps - 1)
    c = np.asarray(chip[lag:], np.float64).reshape(steps - lag, chip.shape[1], -1).mean(axis=0)
    f = np.asarray(floating[:steps - lag], np.float64).reshape(steps - lag, chip.shape[1], -1).mean(axis=0)
    corr = _corr(c, f)
    return {"voltage_correlation": corr, "agreement": max(0.0, corr) if corr is not None else 0.0,
            "latency_steps": lag}


def compare(net, chip_run, float_run, latency: Mapping[str, int] | None = None,
            float_voltages: Mapping[str, np.ndarray] | None = None,
            count_scales: Mapping[str, float] | None = None,
            copies: Mapping[str, Iterable[str]] | None = None,
            copy_weights: Mapping[str, float] | None = None) -> dict[str, dict[str, Any]]:
    """Per population of ``net`` (the quantized network): agreement of ``chip_run`` (its
    integer run, nirc.intref.RunResult) with ``float_run`` (the float network's run, same
    population names). Non-spiking populations are compared by voltage when
    ``float_voltages`` has them and the population carries v_scale. ``count_scales``: the
    model spikes one chip spike stands for, per population where it is not 1 (a quantizer
    raised its thresholds because the chip fires fewer spikes per step than the model).
    ``copies``: per population, the populations that fire the rest of its spikes (Loihi's
    spike copies, report rows' ``spike_copies``): their spikes count as its own, each times
    its ``copy_weights`` entry where it stands for several (Loihi's spike levels)."""
    latency = latency or {}
    rows = {}
    for name, pop in net.populations.items():
        lag = int(latency.get(name, 0))
        if pop.spiking and name in chip_run.spikes and name in float_run.spikes:
            scale = float((count_scales or {}).get(name, 1.0))
            spikes = chip_run.spikes[name]
            extra = [np.asarray(chip_run.spikes[c], np.float64)
                     * float((copy_weights or {}).get(c, 1))
                     for c in (copies or {}).get(name, ()) if c in chip_run.spikes]
            if extra:
                spikes = np.asarray(spikes, np.float64) + sum(np.asarray(e, np.float64)
                                                              for e in extra)
            rows[name] = layer_agreement(spikes, float_run.spikes[name], lag)
            if scale != 1.0:
                raw = rows[name]
                rows[name] = {**layer_agreement(np.asarray(spikes, np.float64) * scale,
                                                float_run.spikes[name], lag),
                              "burst_share": raw["burst_share"], "count_scale": scale,
                              "chip_spikes_raw": raw["chip_spikes"]}
        elif not pop.spiking and float_voltages and name in float_voltages and pop.v_scale is not None:
            port = next((k for k, o in net.outputs.items() if o.source == name), None)
            if port is None:
                continue
            raw = np.asarray(chip_run.outputs[port], np.float64)
            flat = raw.reshape(*raw.shape[:2], -1)
            as_float = flat / np.asarray(pop.v_scale, np.float64) + np.asarray(
                pop.v_offset if pop.v_offset is not None else 0.0, np.float64)
            rows[name] = voltage_agreement(as_float, float_voltages[name], lag)
    return rows


def copies_of(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Per population, the copies that fire its further spikes (quantization rows'
    ``spike_copies``), for compare()."""
    return {r["population"]: list(r["spike_copies"]) for r in rows if r.get("spike_copies")}


def copy_weights_of(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Per copy that stands for several of the model's spikes (quantization rows'
    ``spike_copy_weights``, beside ``spike_copies``), how many, for compare()."""
    return {c: float(w) for r in rows if r.get("spike_copy_weights")
            for c, w in zip(r["spike_copies"], r["spike_copy_weights"]) if w != 1}


OUTPUT_WEIGHT = 0.75      # share of score() given to the populations that feed outputs


def score(rows: Mapping[str, Mapping[str, Any]], outputs: Iterable[str] = ()) -> float:
    """One number for a whole network: the mean agreement of its populations, with
    OUTPUT_WEIGHT of it on the populations in ``outputs`` (what the user reads) when given."""
    values = [r["agreement"] for r in rows.values()]
    if not values:
        return 1.0
    overall = float(np.mean(values))
    read = [rows[name]["agreement"] for name in outputs if name in rows]
    if not read:
        return overall
    return OUTPUT_WEIGHT * float(np.mean(read)) + (1 - OUTPUT_WEIGHT) * overall


def timed(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``rows`` with each spiking population's agreement the mean of its count agreement and
    its step Jaccard: a score that also sees spikes moved to another step (what a neuron
    downstream of a merge point or a recurrent loop reacts to)."""
    return {name: ({**r, "agreement": 0.5 * (r["agreement"] + r["step_jaccard"])}
                   if "step_jaccard" in r else dict(r)) for name, r in rows.items()}


@dataclass
class Search:
    """The outcome of search_factors: the factors chosen, their score and what evaluate returned
    for them, the starting factors' score and result, and every trial (population, knob,
    factor, agreement)."""

    factors: dict[str, dict[str, float]]
    score: float
    result: Any
    baseline: float
    baseline_result: Any
    tried: list[dict[str, Any]]


def search_factors(evaluate, candidates: Mapping[str, Mapping[str, Iterable[Any]]],
                   rounds: int = 2, start: Search | None = None,
                   defaults: Mapping[str, Mapping[str, Any]] | None = None,
                   margin: float = 1e-9, knob_margins: Mapping[str, float] | None = None
                   ) -> Search:
    """Coordinate search over per-population factors, the one mechanism quantizers tune with.

    ``candidates[population][knob]`` lists the factors to try for that knob (e.g. a
    population's "scale" or "threshold"); every knob starts at 1.0, or where ``start`` (an
    earlier search, e.g. a coarse one before a fine one) ended. ``evaluate(factors)``
    (factors: {population: {knob: factor}}) returns (score, result), higher is better
    (nirc.fidelity.score of the quantized network on the calibration input). Populations
    and knobs are tried one at a time in the given order, each keeping the best factor so
    far, for at most ``rounds`` passes (fewer when a pass improves nothing). A knob may take
    named choices instead of factors (strings, kept as given) starting at ``defaults``; a trial
    replaces the best only when it scores more than ``margin`` higher (a margin keeps the
    starting point where a finite calibration set cannot tell choices apart); a knob that
    costs resources (``knob_margins``) must gain more than its own margin to leave its
    starting value (beyond that, the usual margin decides between its costly values); a
    (population, knob) key prices the knob for that population alone."""
    if start is None:
        factors = {name: {knob: (defaults or {}).get(name, {}).get(knob, 1.0) for knob in knobs}
                   for name, knobs in candidates.items()}
        baseline, baseline_result = evaluate(factors)
        best, best_result, tried = baseline, baseline_result, []
    else:
        factors = {name: dict(knobs) for name, knobs in start.factors.items()}
        baseline, baseline_result = start.baseline, start.baseline_result
        best, best_result, tried = start.score, start.result, list(start.tried)
    seen = {_key(factors)}
    initial = {name: dict(knobs) for name, knobs in factors.items()}
    for _ in range(rounds):
        improved = False
        for name, knobs in candidates.items():
            for knob, values in knobs.items():
                for f in values:
                    f = f if isinstance(f, str) else float(f)
                    trial = {**factors, name: {**factors[name], knob: f}}
                    key = _key(trial)
                    if key in seen:
                        continue
                    seen.add(key)
                    score_, result = evaluate(trial)
                    tried.append({"population": name, "knob": knob, "factor": f,
                                  "agreement": round(score_, 6)})
                    leaves = factors[name][knob] == initial[name][knob]
                    margins = knob_margins or {}
                    needed = margins.get((name, knob), margins.get(knob, margin)) \
                        if leaves else margin
                    if score_ > best + needed:
                        best, best_result, factors, improved = score_, result, trial, True
        if not improved:
            break
    return Search(factors, best, best_result, baseline, baseline_result, tried)


def _key(factors: Mapping[str, Mapping[str, float]]) -> tuple:
    return tuple(sorted((n, tuple(sorted(k.items()))) for n, k in factors.items()))


def activity_warnings(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Per population, what looks like silent damage: activity that explodes or dies relative
    to the float model, or agreement below AGREEMENT_WARN."""
    found: dict[str, list[str]] = {}
    for name, r in rows.items():
        notes = []
        fs, cs = r.get("float_spikes"), r.get("chip_spikes")
        if fs is not None and fs >= MIN_SPIKES:
            if cs == 0:
                notes.append(f"silent on the chip ({fs} spikes in the float model)")
            elif cs > ACTIVITY_RATIO * fs:
                notes.append(f"activity explodes: {cs} spikes against {fs} in the float model "
                             f"({cs / fs:.1f}x)")
            elif cs * ACTIVITY_RATIO < fs:
                notes.append(f"activity dies: {cs} spikes against {fs} in the float model "
                             f"({cs / fs:.2f}x)")
        judged = fs is None or fs + (cs or 0) >= MIN_SPIKES
        corr = r.get("count_correlation", r.get("voltage_correlation"))
        if judged and corr is not None and corr < CORRELATION_WARN:
            notes.append(f"which neurons fire differs from the float model: "
                         f"{'count' if 'count_correlation' in r else 'voltage'} correlation "
                         f"{corr:.2f} (below {CORRELATION_WARN})")
        elif judged and r.get("agreement") is not None and r["agreement"] < AGREEMENT_WARN:
            notes.append(f"agreement with the float model {r['agreement']:.2f} (below "
                         f"{AGREEMENT_WARN}: spike counts per neuron differ by "
                         f"{1 - r['agreement']:.0%} of their total)")
        if notes:
            found[name] = notes
    return found


@dataclass
class ZeroedWeights:
    """Non-zero float weights of one population's input tables that quantized to zero."""

    population: str
    nonzero: int
    zeroed: int
    tables: dict[str, int] = field(default_factory=dict)   # source -> zeroed

    @property
    def share(self) -> float:
        return self.zeroed / self.nonzero if self.nonzero else 0.0


def zeroed_weights(before, after) -> dict[str, ZeroedWeights]:
    """Per population: float weights != 0 whose quantized weight is 0. Tables are matched by
    (source, target) and summed, so a quantizer may merge or split tables between a pair."""
    def summed(net):
        out: dict[tuple[str, str], Any] = {}
        for t in net.tables:
            if t.weights is None:
                continue
            key = (t.source, t.target)
            w = t.weights.tocsr() if hasattr(t.weights, "tocsr") else t.weights
            out[key] = w if key not in out else out[key] + w
        return out

    float_tables, int_tables = summed(before), summed(after)
    result: dict[str, ZeroedWeights] = {}
    for (source, target), w in float_tables.items():
        if target not in after.populations:
            continue
        w = w.tocoo()
        keep = w.data != 0
        rows, cols = w.row[keep], w.col[keep]
        q = int_tables.get((source, target))
        if q is None:
            zeroed = int(keep.sum())
        else:
            values = np.asarray(q.tocsr()[rows, cols]).ravel() if rows.size else np.zeros(0)
            zeroed = int(np.count_nonzero(values == 0))
        entry = result.setdefault(target, ZeroedWeights(target, 0, 0))
        entry.nonzero += int(keep.sum())
        entry.zeroed += zeroed
        if zeroed:
            entry.tables[source] = entry.tables.get(source, 0) + zeroed
    return result


def zeroed_warnings(found: Mapping[str, ZeroedWeights]) -> dict[str, list[str]]:
    """Per population losing more than ZEROED_WARN of its non-zero weights, what it lost."""
    return {name: [f"{z.zeroed} of {z.nonzero} non-zero weights ({100 * z.share:.0f}%) round to "
                   f"zero (from {', '.join(f'{s}: {n}' for s, n in sorted(z.tables.items()))})"]
            for name, z in found.items() if z.share > ZEROED_WARN}


# --- firing rules: the model's against the chip's -------------------------------------------

NIR_RULES = {"reset": "zero", "reset_delay": False, "spikes": "single", "max_spikes": 1,
             "threshold_test": ">"}


def model_rules(convention=None) -> dict[str, Any]:
    """The firing rules the model was trained under (nirc.convention), NIR's without one."""
    if convention is None:
        return dict(NIR_RULES)
    return {"reset": convention.reset, "reset_delay": bool(convention.reset_delay),
            "spikes": convention.spikes, "max_spikes": convention.spike_limit,
            "threshold_test": convention.threshold_test}


def rule_differences(model: Mapping[str, Any], chip: Mapping[str, Any] | None) -> list[str]:
    """What the chip's firing rules (NeuronModel.firing_rules) change against the model's, in
    words; empty when the chip runs the model's own rules."""
    if chip is None:
        return []
    found = []
    late = " one step late" if model.get("reset_delay") else ""
    if model["reset"] != chip["reset"]:
        what = {"zero": "resets to v_reset", "subtract": "subtracts the threshold"}
        found.append(f"reset: the model {what[model['reset']]}{late}, the chip "
                     f"{what[chip['reset']].replace('v_reset', 'zero (v_reset)')}")
    elif late and not chip.get("reset_delay"):
        found.append("reset: the model applies it one step late, the chip in the step it fires")
    per = chip.get("per", "step")
    if model["spikes"] == "single" and (chip["spikes"] == "multi" or per != "step"):
        most = (f"up to {chip['max_spikes']} per step" if chip.get("max_spikes") else
                "several per step") if per == "step" else "one per input event, so several per step"
        found.append(f"spikes: the model fires at most once per step, the chip {most}")
    elif model["spikes"] == "multi" and chip["spikes"] == "single" and per == "step":
        found.append("spikes: the model fires several spikes per step, the chip at most one")
    elif model["spikes"] == "multi" and chip["spikes"] == "multi" and per != "step":
        found.append("spikes: the model sums a step's input, then fires floor(v / threshold), the "
                     "chip tests the threshold after every input event (one spike per event), so "
                     "it fires on a rise within a step that the step's later negative inputs "
                     "cancel in the model")
    elif (model["spikes"] == "multi" and chip["spikes"] == "multi" and chip.get("max_spikes")
          and model.get("max_spikes") != chip["max_spikes"]):
        most = f"at most {model['max_spikes']}" if model.get("max_spikes") else "no bound"
        found.append(f"spikes: {most} per step in the model, {chip['max_spikes']} on the chip")
    if chip.get("spike_levels"):
        found.append(f"spikes: the chip sends a step's count as the nearest of the levels "
                     f"{', '.join(map(str, chip['spike_levels']))} (its membrane keeps the "
                     f"rest), the model any count")
    if model["threshold_test"] != chip["threshold_test"]:
        found.append(f"threshold: the model fires when v {model['threshold_test']} threshold, "
                     f"the chip when v {chip['threshold_test']} threshold")
    return found


def limited_by(row: Mapping[str, Any], quantization: Mapping[str, Any] | None = None) -> str:
    """What kept one layer's calibration agreement from 1, in words: the quantizer's own
    account when it gives one (``quantization["limited_by"]``), else what the measures show
    (firing rules that burst, weights rounded to zero or coarsely, nothing measurable)."""
    quantization = quantization or {}
    if quantization.get("limited_by"):
        return quantization["limited_by"]
    parts = []
    if row.get("burst_share", 0) > 0.05:
        parts.append(f"firing rules: {100 * row['burst_share']:.0f}% of the chip's spikes are a "
                     f"second or later spike of a neuron in one step")
    elif row.get("rule_differences") and row.get("agreement", 1) < 0.99:
        parts.append("firing rules: " + "; ".join(row["rule_differences"]))
    if row.get("weights_nonzero") and row.get("weights_zeroed", 0) > 0.01 * row["weights_nonzero"]:
        parts.append(f"weights: {row['weights_zeroed']} of {row['weights_nonzero']} non-zero "
                     f"weights round to zero")
    error = quantization.get("weight_rel_error")
    if error is not None and error > 0.02:
        parts.append(f"weights: {100 * error:.1f}% relative error")
    return "; ".join(parts) if parts else "nothing measurable"
