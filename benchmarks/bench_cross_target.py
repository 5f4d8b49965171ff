"""The cross-target table: every example model on every shipped target, side by side.

    .venv/bin/python benchmarks/bench_cross_target.py [--models mlp cnn srnn] [--targets loihi2 ...]

For each model (examples/mlp.nir, the 2x34x34-input cnn.nir, the recurrent srnn.nir) and
each target nirc ships (``nirc targets``), it compiles with the target's defaults and
reports: whether the model fits (and if not, the first line of why), cores used against
the partitioner's lower bound, compile time (every stage, calibration included), emulator
throughput (time steps per second, one sample), whether the emulator equals the integer
reference bit for bit (nirc.verify), and how the chip's outputs agree with the float
simulation of the NIR graph on seeded random spikes: correlation of per-neuron output
spike counts, and how often the chip's most active output neuron is the float one's
(over the samples where the float simulation has a unique winner).

The MLP was trained on scikit-learn's digits (examples/make_examples.py); on its test
split (the same 397 images, rate-coded the same way: pixel/16 * 0.5 spikes per step for 25
steps, seeded) the table gives float accuracy and accuracy on each target's emulator.
Integer outputs arrive later than the float ones where the hardware adds synaptic
delay (Loihi: one step per table; the quantize pass reports it as latency_steps), so
chip inputs are followed by that many silent steps and its outputs compared from then on.

Prints the table, writes benchmarks/results/cross_target.json and the markdown table
benchmarks/results/cross_target.md (for the README: regenerate, never edit by hand).
Wall times depend on the machine and its load; the counts do not.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from _readme import paste_between  # noqa: E402
from nirc import __version__  # noqa: E402
from nirc.driver import random_spike_input  # noqa: E402
from nirc.emulator import Chip  # noqa: E402
from nirc.errors import FitError, NircError, NircWarning  # noqa: E402
from nirc.simulate import simulate  # noqa: E402
from nirc.target import target_names  # noqa: E402
from nirc.verify import verify  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def relative(err: Exception) -> str:
    """An error message with the repository's own path left out (results carry no machine paths)."""
    return str(err).replace(f"{ROOT}/", "")
RESULTS = ROOT / "benchmarks" / "results"
MODELS = {"mlp": ROOT / "examples" / "mlp.nir", "cnn": ROOT / "examples" / "cnn.nir",
          "srnn": ROOT / "examples" / "srnn.nir"}
# Agreement and throughput inputs: (steps, samples) of Bernoulli(0.2) spikes per model.
RANDOM_INPUT = {"mlp": (50, 64), "cnn": (30, 8), "srnn": (50, 64)}
THROUGHPUT_STEPS = {"mlp": 200, "cnn": 30, "srnn": 200}
DIGITS = {"steps": 25, "max_rate": 0.5, "train": 1400, "split_seed": 0, "encode_seed": 0}
ACCURACY_GOAL_PP = 2.0


# --- the digits test split ------------------------------------------------------------------

def digits_test_split() -> tuple[np.ndarray, np.ndarray] | None:
    """(inputs (T, B, 64), labels (B,)) of the MLP's held-out digits, or None without torch.

    The split is examples/make_examples.py's: torch.randperm(1797) seeded with 0, images
    from index 1400 on. The spike encoding is redrawn here with numpy (seeded).
    """
    try:
        import torch
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    digits = load_digits()
    order = torch.randperm(len(digits.target),
                           generator=torch.Generator().manual_seed(DIGITS["split_seed"])).numpy()
    test = order[DIGITS["train"]:]
    rates = digits.data[test] / 16.0 * DIGITS["max_rate"]
    rng = np.random.default_rng(DIGITS["encode_seed"])
    spikes = rng.random((DIGITS["steps"], *rates.shape)) < rates
    return spikes.astype(np.float64), digits.target[test]


# --- comparing float and chip outputs ----------------------------------------------------------

def aligned_counts(chip, result, inputs: dict[str, np.ndarray]
                   ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per output: spike counts (B, n) of the float simulation and of the chip, aligned.

    The chip's input is followed by as many silent steps as the hardware adds latency
    to the output layer (the quantize pass's ``latency_steps``), and its output read
    from that step on, so both count the response to the same input steps.
    """
    net = result.network
    latency = result.report.get("pass_reports", {}).get("latency_steps", {})
    # The model as trained (the convention the compile ran under; NIR's own for files that
    # state their dt, as the examples do).
    floated = simulate(result.graph, inputs, dt=net.dt, batch=True,
                       convention=result.convention).outputs
    out = {}
    for name, port in net.outputs.items():
        lag = int(latency.get(port.source, 0))
        padded = {k: np.concatenate([v, np.zeros((lag, *v.shape[1:]))]) for k, v in
                  inputs.items()}
        chip_out = chip.run(padded, batch=True).outputs[name][lag:]
        steps, batch = chip_out.shape[:2]
        out[name] = (floated[name].reshape(steps, batch, -1).sum(0),
                     chip_out.reshape(steps, batch, -1).sum(0).astype(np.float64))
    return out


def agreement(counts: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float | None]:
    """Count correlation and winner agreement, over all outputs' (sample, neuron) counts."""
    f = np.concatenate([a for a, _ in counts.values()], axis=1)
    c = np.concatenate([b for _, b in counts.values()], axis=1)
    corr = None
    if f.std() > 0 and c.std() > 0:
        corr = float(np.corrcoef(f.ravel(), c.ravel())[0, 1])
    # Samples whose float winner is unique: a tie has no winner to agree with.
    top = np.sort(f, axis=1)
    decided = top[:, -1] > top[:, -2] if f.shape[1] > 1 else f[:, 0] > 0
    winners = (float(np.mean(f[decided].argmax(1) == c[decided].argmax(1)))
               if decided.any() else None)
    return {"count_correlation": corr, "winner_agreement": winners,
            "winner_samples": int(decided.sum())}


# --- one model on one target -----------------------------------------------------------------

def short_reason(message: str) -> str:
    """The first clause of an error, with repository paths made relative."""
    return message.replace(f"{ROOT}/", "").split("; ")[0]


def evaluate(model: str, target: str, digits, float_accuracy: float | None) -> dict[str, Any]:
    record: dict[str, Any] = {"model": model, "target": target}
    steps, samples = RANDOM_INPUT[model]
    with tempfile.TemporaryDirectory(prefix="nirc-cross-") as tmp:
        build = Path(tmp) / "build"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NircWarning)
                report = verify(MODELS[model], target, steps=steps, samples=samples, seed=0,
                                out_dir=build)
        except FitError as err:
            return {**record, "fits": False, "status": "does not fit", "reason": relative(err)}
        except NircError as err:
            return {**record, "fits": False, "status": "not supported", "reason": relative(err)}
        result = report.compile
        chip = Chip.load(build)
        record.update(
            fits=True, status="fits", bit_exact=report.bit_exact,
            cores_used=result.placement.cores_used, lower_bound=result.placement.lower_bound,
            lower_bound_resource=result.placement.lower_bound_resource,
            neurons=result.network.neuron_count, synapses=result.network.synapse_count,
            compile_s=round(sum(result.timings.values()), 3),
            compile_stages_s={k: round(v, 4) for k, v in result.timings.items()})
        inputs = random_spike_input(result.graph, steps, seed=1, batch=samples)
        record.update(agreement(aligned_counts(chip, result, inputs)))
        one = random_spike_input(result.graph, THROUGHPUT_STEPS[model], seed=2, batch=1)
        chip.run(one, batch=True)                              # warm-up (imports, caches)
        started = time.perf_counter()
        chip.run(one, batch=True)
        record["emulator_steps_per_s"] = round(THROUGHPUT_STEPS[model] /
                                               (time.perf_counter() - started), 1)
        if model == "mlp" and digits is not None:
            x, labels = digits
            (_, chip_counts), = aligned_counts(
                chip, result, {next(iter(result.graph.inputs())): x}).values()
            record["digits_accuracy"] = float(np.mean(chip_counts.argmax(1) == labels))
            record["digits_float_accuracy"] = float_accuracy
            record["digits_drop_pp"] = round(100 * (float_accuracy - record["digits_accuracy"]),
                                             2)
    return record


def float_digits_accuracy(digits) -> float | None:
    if digits is None:
        return None
    from nirc.nirio import read

    graph = read(MODELS["mlp"])
    x, labels = digits
    out = simulate(graph, {next(iter(graph.inputs())): x}, batch=True).outputs
    counts = next(iter(out.values())).sum(0)
    return float(np.mean(counts.argmax(1) == labels))


# --- output ----------------------------------------------------------------------------------

def _num(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def markdown(records: list[dict[str, Any]], digits_samples: int | None) -> str:
    lines = [
        "| model | target | fits | cores (lower bound) | compile s | emulator steps/s | "
        "bit-exact | count corr. float vs chip | same winner | digits accuracy chip (float) |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    reasons = []
    for r in records:
        if not r["fits"]:
            reasons.append(f"- **{r['model']} on {r['target']}** ({r['status']}): "
                           f"{short_reason(r['reason'])}")
            lines.append(f"| {r['model']} | {r['target']} | no [{len(reasons)}] | | | | | | | |")
            continue
        accuracy = ""
        if "digits_accuracy" in r:
            accuracy = (f"{100 * r['digits_accuracy']:.1f} % "
                        f"({100 * r['digits_float_accuracy']:.1f} %)")
        lines.append(
            f"| {r['model']} | {r['target']} | yes | {r['cores_used']} ({r['lower_bound']}) | "
            f"{r['compile_s']:.2f} | {r['emulator_steps_per_s']:.0f} | "
            f"{'yes' if r['bit_exact'] else '**NO**'} | {_num(r['count_correlation'], '.3f')} | "
            f"{_num(r['winner_agreement'], '.0%').replace('%', ' %')} | {accuracy} |")
    out = "\n".join(lines) + "\n"
    if reasons:
        out += "\nWhy not:\n\n" + "\n".join(f"{k}. {line[2:]}" for k, line in
                                           enumerate(reasons, 1)) + "\n"
    fitted = [r for r in records if "digits_accuracy" in r]
    if fitted:
        worst = max(fitted, key=lambda r: r["digits_drop_pp"])
        met = all(r["digits_drop_pp"] <= ACCURACY_GOAL_PP for r in fitted)
        out += (f"\nDigits: {digits_samples} held-out test images of the trained MLP. Largest "
                f"drop from float: {worst['digits_drop_pp']:.1f} percentage points "
                f"({worst['target']}); goal of at most {ACCURACY_GOAL_PP:g} points on every "
                f"target that holds the model: {'met' if met else 'NOT met'}.\n")
    out += ("\nGenerated by `benchmarks/bench_cross_target.py`. Count correlation and same winner "
            "compare output spike counts of the float simulation and the chip emulator on "
            "seeded Bernoulli(0.2) input (same winner: the most active output neuron, over the "
            "samples whose float winner is unique).\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument("--targets", nargs="+", default=None,
                        help="target names (default: every shipped target)")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="directory for cross_target.json and cross_target.md")
    args = parser.parse_args(argv)
    targets = args.targets or target_names()

    digits = digits_test_split() if "mlp" in args.models else None
    float_accuracy = float_digits_accuracy(digits)
    records = []
    for model in args.models:
        for target in targets:
            started = time.perf_counter()
            record = evaluate(model, target, digits, float_accuracy)
            record["wall_s"] = round(time.perf_counter() - started, 2)
            records.append(record)
            print(f"{model:5s} {target:16s} {record['status']:13s} "
                  + (f"cores {record['cores_used']} (bound {record['lower_bound']}), "
                     f"bit-exact {record['bit_exact']}, compile {record['compile_s']:.2f} s, "
                     f"{record['emulator_steps_per_s']:.0f} steps/s"
                     + (f", digits {100 * record['digits_accuracy']:.1f} %"
                        if "digits_accuracy" in record else "")
                     if record["fits"] else short_reason(record["reason"])), flush=True)
    table = markdown(records, None if digits is None else len(digits[1]))
    print()
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cross_target.md").write_text(table, encoding="utf-8")
    (args.out / "cross_target.json").write_text(json.dumps({
        "benchmark": "cross_target", "nirc_version": __version__,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor()},
        "random_input": {m: {"steps": s, "samples": b, "rate": 0.2}
                         for m, (s, b) in RANDOM_INPUT.items()},
        "digits": {**DIGITS, "test_samples": None if digits is None else len(digits[1]),
                   "float_accuracy": float_accuracy},
        "results": records}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'cross_target.json'} and {args.out / 'cross_target.md'}")
    if args.models == list(MODELS) and args.targets is None:
        paste_into_readme(table)
        print(f"updated the cross-target table in {README}")
    return 0


README = Path(__file__).resolve().parents[1] / "README.md"
README_MARKERS = ("<!-- cross-target:begin -->", "<!-- cross-target:end -->")


def paste_into_readme(table: str, readme: Path = README) -> None:
    """Replace the README's block between this benchmark's markers with ``table``."""
    paste_between(README_MARKERS, table, readme)


if __name__ == "__main__":
    raise SystemExit(main())
