"""Proving a compilation: float simulation vs integer reference vs emulator on the same input.

``verify(model, target, inputs)`` compiles (into ``out_dir`` or a temporary
directory), then runs the float simulator on the NIR graph, the integer
reference on the compiled hardware network, and the emulator on the files.
Emulator and integer reference must agree on every spike and every state of
every step (``bit_exact``); float vs integer is a fidelity measure, reported
per output (spike-count correlation, classification agreement of readouts)
and per layer (spike-count correlation, quantization error).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from nirc import fidelity, intref
from nirc.driver import CompileResult, compile, random_spike_input
from nirc.emulator import Chip
from nirc.neuron_models import get_model


@dataclass
class Mismatch:
    what: str          # "output 'o'", "spikes of 'p'", "state v of 'p'"
    step: int
    sample: int
    index: int
    emulator: Any
    reference: Any


@dataclass
class VerifyReport:
    bit_exact: bool
    mismatches: list[Mismatch]
    outputs: list[dict[str, Any]]
    layers: list[dict[str, Any]]
    steps: int
    samples: int
    compile: CompileResult | None = None
    notes: list[str] = field(default_factory=list)
    # Per spiking population: (float, emulator) spikes of sample 0, each (T, size), for
    # the mapping report's rasters.
    rasters: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # Per population whose firing rules differ from the model's: what differs and its
    # measured effect on this run; and a summary when some layer lost fidelity.
    fidelity_notes: list[str] = field(default_factory=list)

    @property
    def faithful(self) -> bool:
        """No layer shows silent damage (nirc.fidelity's warnings) on this run."""
        return not any(row.get("warnings") for row in self.layers)


def _first_difference(what: str, a: np.ndarray, b: np.ndarray) -> Mismatch | None:
    """First differing element of two (T, B, ...) arrays, or None when equal."""
    if a.shape != b.shape:
        return Mismatch(what, -1, -1, -1, list(a.shape), list(b.shape))
    a, b = a.reshape(a.shape[0], a.shape[1], -1), b.reshape(b.shape[0], b.shape[1], -1)
    diff = np.argwhere(a != b)
    if diff.size == 0:
        return None
    t, s, i = (int(v) for v in diff[0])
    return Mismatch(what, t, s, i, a[t, s, i].item(), b[t, s, i].item())


def compare_runs(emulated: intref.RunResult, reference: intref.RunResult) -> list[Mismatch]:
    """Every output, spike train and recorded state, compared exactly."""
    found = []
    pairs = [(f"output '{k}'", emulated.outputs[k], reference.outputs.get(k)) for k in emulated.outputs]
    pairs += [(f"spikes of '{k}'", emulated.spikes[k], reference.spikes.get(k))
              for k in emulated.spikes]
    pairs += [(f"state {s} of '{p}'", emulated.states[p][s], reference.states.get(p, {}).get(s))
              for p in emulated.states for s in emulated.states[p]]
    for what, a, b in pairs:
        if b is None:
            found.append(Mismatch(what, -1, -1, -1, "present", "missing"))
            continue
        m = _first_difference(what, a, b)
        if m is not None:
            found.append(m)
    return found


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 1.0 if np.array_equal(a, b) else None
    return float(np.corrcoef(a, b)[0, 1])


def verify(model, target, inputs: Mapping[str, np.ndarray] | None = None, steps: int = 100,
           samples: int = 8, seed: int = 0, out_dir: str | Path | None = None,
           dt: float | None = None, method: str | None = None, granularity: str = "layer",
           calibration_steps: int = 50, partition_method: str | None = None,
           convention=None, calibration: str | None = None) -> VerifyReport:
    """Compile and check; ``inputs`` are batched (T, B, *shape) arrays (or None: random).

    ``convention`` and ``calibration`` as for nirc.driver.compile. Fidelity compares the
    chip with the model as trained (the float reference under that convention); when the
    convention is not NIR's own, each row also compares with NIR semantics (the ``*_nir``
    fields).
    """
    from nirc.simulate import simulate

    with tempfile.TemporaryDirectory(prefix="nirc-verify-") as tmp:
        build = Path(out_dir) if out_dir is not None else Path(tmp) / "build"
        result = compile(model, target, build, dt=dt, method=method, granularity=granularity,
                         calibration_steps=calibration_steps, seed=seed,
                         partition_method=partition_method, convention=convention,
                         calibration=calibration)
        if inputs is None:
            inputs = random_spike_input(result.graph, steps, seed=seed + 1, batch=samples)
        chip = Chip.load(build)
        emulated = chip.run(inputs, batch=True, record=True)
    net = result.network
    reference = intref.run(net, inputs, batch=True, record=True)
    mismatches = compare_runs(emulated, reference)
    trained = result.convention
    floated = simulate(result.graph, inputs, dt=net.dt, method=trained.discretisation,
                       batch=True, convention=trained)
    # The same file read with NIR's own rules: a second column when the two differ.
    as_nir = None if trained.is_nir else simulate(
        result.graph, inputs, dt=net.dt, method=trained.discretisation, batch=True)
    first = next(iter(inputs.values()))
    n_steps, n_samples = first.shape[0], first.shape[1]

    latency = result.report.get("pass_reports", {}).get("latency_steps", {})

    def aligned(pop: str, integer: np.ndarray, floating: np.ndarray):
        """Integer and float traces with the hardware's added latency taken out (the
        integer run's step t + L is compared with the float run's step t)."""
        lag = min(int(latency.get(pop, 0)), n_steps - 1)
        return integer[lag:], floating[:n_steps - lag], lag

    def compare(row: dict[str, Any], port, got, want, suffix: str = "") -> None:
        steps = got.shape[0]
        if port.quantity == "spikes":
            row["float_spikes" + suffix] = int(want.sum())
            row["integer_spikes"] = int(got.sum())
            row["count_correlation" + suffix] = _corr(got.sum(axis=0), want.sum(axis=0))
            counts_f = want.reshape(steps, n_samples, -1).sum(axis=0)
            counts_i = got.reshape(steps, n_samples, -1).sum(axis=0)
            if counts_f.shape[1] > 1:
                # The predicted class is the most active output neuron, as rate-coded
                # classifiers read their output layer.
                row["classification_agreement" + suffix] = float(np.mean(
                    np.argmax(counts_f, axis=1) == np.argmax(counts_i, axis=1)))
        else:
            as_float = chip.to_float(port_name, got)
            flat_f = want.reshape(steps, n_samples, -1).mean(axis=0)
            flat_i = as_float.reshape(steps, n_samples, -1).mean(axis=0)
            row["voltage_correlation" + suffix] = _corr(flat_i, flat_f)
            if flat_f.shape[1] > 1:
                row["classification_agreement" + suffix] = float(np.mean(
                    np.argmax(flat_f, axis=1) == np.argmax(flat_i, axis=1)))

    outputs = []
    for port_name, port in net.outputs.items():
        got, want, lag = aligned(port.source, reference.outputs[port_name],
                                 floated.outputs[port_name])
        row: dict[str, Any] = {"output": port_name, "population": port.source,
                               "quantity": port.quantity, "latency_steps": lag}
        compare(row, port, got, want)
        if as_nir is not None:
            compare(row, port, got, aligned(port.source, reference.outputs[port_name],
                                            as_nir.outputs[port_name])[1], "_nir")
        outputs.append(row)

    quant = {row["population"]: row for row in result.report.get("quantization", [])}
    compiled = result.report.get("pass_reports", {}).get("fidelity", {}).get("layers", {})
    copies = fidelity.copies_of(quant.values())
    weighs = fidelity.copy_weights_of(quant.values())
    measured = fidelity.compare(net, reference, floated, latency,
                                {o.source: floated.outputs[k] for k, o in net.outputs.items()
                                 if o.quantity != "spikes" and k in floated.outputs},
                                {name: row["count_scale"] for name, row in quant.items()
                                 if row.get("count_scale", 1) != 1},
                                copies, weighs)
    damage = fidelity.activity_warnings(measured)
    copy_names = {c for names in copies.values() for c in names}
    layers = []
    for name, pop in net.populations.items():
        if name in copy_names:
            continue        # its spikes are counted with the population it copies
        row = {"population": name, "weight_rel_error": quant.get(name, {}).get("weight_rel_error")}
        if pop.spiking and name in floated.spikes and name in reference.spikes:
            fired = reference.spikes[name]
            if copies.get(name):
                fired = np.asarray(fired, np.int64) + sum(
                    np.asarray(reference.spikes[c], np.int64) * int(weighs.get(c, 1))
                    for c in copies[name])
            got, want, lag = aligned(name, fired, floated.spikes[name])
            row["float_spikes"] = int(want.sum())
            row["integer_spikes"] = int(got.sum())
            row["count_correlation"] = _corr(got.sum(axis=0), want.sum(axis=0))
            row["latency_steps"] = lag
        if name in measured:
            row.update({k: measured[name][k] for k in ("agreement", "spike_ratio", "burst_share",
                                                       "voltage_correlation")
                        if k in measured[name]})
        # Weights quantization zeroed (measured by the compile), and what this run shows.
        row["warnings"] = list(damage.get(name, [])) + [
            w for w in compiled.get(name, {}).get("warnings", []) if "round to zero" in w]
        layers.append(row)
    notes = []
    if trained.exporter not in ("nir", "unknown") or as_nir is not None:
        notes.append(f"float reference: the model as trained ({trained.describe()})")
    if as_nir is not None:
        notes.append("columns marked NIR compare the chip with the same file under NIR's own "
                     "rules (reset to v_reset, one spike per step, v > threshold)")
    delivery = get_model(net.neuron_model).spike_delivery
    if any(latency.values()):
        why = f" ({delivery})" if delivery else ""
        notes.append(f"integer runs lag the float simulation where the hardware adds synaptic "
                     f"delay{why}; fidelity compares integer step t + latency_steps with float "
                     f"step t")
    elif delivery:
        notes.append(f"{delivery}; integer and float runs are compared step for step")
    from nirc.passes.balance_delays import misaligned_inputs

    misaligned = misaligned_inputs(result.report.get("pass_reports", {}))
    if misaligned:
        fix = ("" if "delay_balance" in result.report.get("pass_reports", {}) else
               " (add balance_delays after quantize in the target's passes)")
        notes += [f"latency: {line}{fix}" for line in misaligned]
    rasters = {name: (floated.spikes[name][:, 0].reshape(n_steps, -1),
                      emulated.spikes[name][:, 0].reshape(n_steps, -1))
               for name in net.populations
               if name in floated.spikes and name in emulated.spikes}
    fidelity_notes = []
    for row in layers:
        differs = compiled.get(row["population"], {}).get("rule_differences")
        if not differs:
            continue
        row["rule_differences"] = differs
        effect = measured.get(row["population"], {})
        by = (f"; on this run the chip fires {effect['chip_spikes']} spikes against "
              f"{effect['float_spikes']} (x{effect['spike_ratio']:.2f}), "
              f"{100 * effect['burst_share']:.0f}% of them in bursts, agreement "
              f"{effect['agreement']:.2f}") if effect.get("spike_ratio") is not None else ""
        fidelity_notes.append(f"population '{row['population']}' fires by other rules than the "
                              f"model: {'; '.join(differs)}{by}")
    damaged = [row["population"] for row in layers if row["warnings"]]
    if damaged:
        fidelity_notes.append(f"the chip does not compute the float model faithfully in "
                              f"{len(damaged)} population(s): {', '.join(damaged)} (see their "
                              f"warnings)")
    return VerifyReport(bit_exact=not mismatches, mismatches=mismatches, outputs=outputs,
                        layers=layers, steps=n_steps, samples=n_samples, compile=result,
                        notes=notes, rasters=rasters, fidelity_notes=fidelity_notes)
