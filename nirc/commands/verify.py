"""`nirc verify`: compile, then check emulator == integer reference bit for bit, and report
fidelity against the float simulation, for one or several models on one or several targets.

    nirc verify a.nir b.nir --target loihi2 --target spinnaker2 --json --junit verify.xml

Exit status: 0 when every (model, target) pair fits and is bit-exact; 1 when some pair does
not fit, cannot be compiled for its target, or differs from the integer reference (a compiler
bug), or, with ``--require-fidelity``, when a layer no longer computes the float model (each
record's ``faithful``, each layer's ``warnings``: nirc.fidelity); 2 on bad input (a missing model file, an invalid target YAML...) before any work.
``--json`` prints one machine-readable record per pair; ``--junit FILE`` writes one test
case per pair for CI (docs/ci-recipe.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nirc.commands import count
from nirc.commands.compile import add_common, convention_options
from nirc.errors import FitError, NircError

log = logging.getLogger("nirc")

JSON_FORMAT = "nirc-verify"
JSON_SCHEMA_VERSION = 1


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="compile and prove the build bit-exact against the integer reference",
        description="Compile each MODEL.nir for each target (into a temporary directory unless "
                    "-o), run the float simulator, the integer reference and the emulator on the "
                    "same input, and print how they agree. Exit 1 if some model does not fit a "
                    "target or its emulator and integer reference differ.")
    parser.add_argument("models", nargs="+", metavar="MODEL.nir")
    add_common(parser, multiple_targets=True)
    parser.add_argument("-o", "--output", metavar="OUT_DIR", default=None,
                        help="keep the build here (with several models or targets: "
                             "OUT_DIR/<model>-<target>/; default: a temporary directory)")
    parser.add_argument("--input", metavar="IN.npz", default=None,
                        help="input spikes as for 'nirc emulate' (default: seeded random "
                             "spikes)")
    parser.add_argument("--batch", action="store_true", help="IN.npz arrays are (T, B, *shape)")
    parser.add_argument("--steps", type=count(1), default=100, help="steps of random input")
    parser.add_argument("--samples", type=count(1), default=8, help="samples of random input")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random input")
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON on stdout (one record per model and "
                             "target) instead of tables")
    parser.add_argument("--junit", metavar="FILE", default=None,
                        help="also write the results as a JUnit XML file (one test case per "
                             "model and target) for CI")
    parser.add_argument("--require-fidelity", action="store_true",
                        help="also exit 1 when a layer of the chip no longer computes the float "
                             "model (a fidelity warning: activity that explodes or dies, spike "
                             "counts uncorrelated with the float model's, weights rounded to zero)")
    parser.add_argument("--report", action="store_true",
                        help="also write report.html into each build directory (needs -o): the "
                             "mapping pictures plus spike rasters, float vs emulator")
    parser.set_defaults(run=run)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _build_dir(args, model: str, target: str, several: bool) -> str | None:
    if args.output is None:
        return None
    if not several:
        return args.output
    return str(Path(args.output) / f"{Path(model).stem}-{Path(target).stem}")


def _check_inputs(args) -> dict[str, Any]:
    """Inputs per model; bad input stops everything before any compilation (exit 2)."""
    from nirc.nirio import read
    from nirc.target import load_target

    if args.report and args.output is None:
        raise NircError("--report needs -o OUT_DIR (report.html is written into the build "
                        "directory)")
    from nirc.driver import _calibration

    neuron_models = sorted({load_target(target).neuron_model for target in args.target})
    graphs = {model: read(model) for model in args.models}
    if args.calibration:
        for graph in graphs.values():
            _calibration(graph, args.calibration)      # a bad file stops everything (exit 2)
    return {model: _inputs_for(args, graph, neuron_models) for model, graph in graphs.items()}


def _inputs_for(args, graph, neuron_models: list[str]):
    """The --input arrays for ``graph`` (None: random input), with a warning for each
    target's neuron model that reads them other than as given."""
    if not args.input:
        return None
    from nirc.commands.emulate import (check_input_events, read_npz_inputs,
                                       warn_about_input_values)
    from nirc.ir.graph import flatten, infer_shapes
    from nirc.neuron_models import get_model

    shapes = infer_shapes(flatten(graph))
    inputs = read_npz_inputs(args.input, {n: tuple(shapes[n].output)
                                          for n in sorted(graph.inputs())}, args.batch)
    for model in neuron_models:
        check_input_events(args.input, inputs, get_model(model), args.batch)
        warn_about_input_values(args.input, inputs, get_model(model))
    return inputs if args.batch else {k: v[:, None] for k, v in inputs.items()}


def verify_pair(args, model: str, target: str, inputs, several: bool
                ) -> tuple[dict[str, Any], Any]:
    """One model on one target: the JSON record, and the VerifyReport (None if it failed)."""
    from nirc.verify import verify

    record: dict[str, Any] = {"model": model, "target": target}
    started = time.perf_counter()
    try:
        report = verify(model, target, inputs=inputs, steps=args.steps,
                        samples=args.samples, seed=args.seed,
                        out_dir=_build_dir(args, model, target, several), dt=args.dt,
                        method=args.method, granularity=args.granularity,
                        calibration_steps=args.calibration_steps, partition_method=args.placement,
                        convention=convention_options(args), calibration=args.calibration)
    except FitError as err:
        record.update(status="does-not-fit", fits=False, bit_exact=None, message=str(err))
        report = None
    except NircError as err:
        record.update(status="cannot-compile", fits=False, bit_exact=None, message=str(err))
        report = None
    else:
        placement = report.compile.placement
        record.update(
            status="bit-exact" if report.bit_exact else "mismatch", fits=True,
            bit_exact=report.bit_exact, faithful=report.faithful,
            message="" if report.bit_exact else f"{len(report.mismatches)} differences; first: "
            + _mismatch_text(report.mismatches[0]),
            cores_used=placement.cores_used, lower_bound=placement.lower_bound,
            steps=report.steps, samples=report.samples, outputs=report.outputs,
            layers=report.layers, notes=report.notes, fidelity_notes=report.fidelity_notes,
            mismatches=[_mismatch_dict(m) for m in report.mismatches[:10]])
        if args.report:
            from nirc.mapping_report import REPORT_NAME, write_report

            path = write_report(Path(report.compile.out_dir) / REPORT_NAME, report.compile,
                                report)
            record["report"] = str(path)
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record, report


def _mismatch_text(m) -> str:
    return (f"{m.what}: step {m.step}, sample {m.sample}, index {m.index}: emulator "
            f"{m.emulator} != reference {m.reference}")


def _mismatch_dict(m) -> dict[str, Any]:
    return {"what": m.what, "step": m.step, "sample": m.sample, "index": m.index,
            "emulator": _plain(m.emulator), "reference": _plain(m.reference)}


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _fails(record: dict[str, Any], require_fidelity: bool) -> str | None:
    """Why a (model, target) record fails verify (None: it passes)."""
    if record["status"] != "bit-exact":
        return record["status"]
    if require_fidelity and not record.get("faithful", True):
        return "unfaithful"
    return None


def junit_xml(records: list[dict[str, Any]], require_fidelity: bool = False) -> str:
    """One <testcase> per (model, target): failure when it does not fit or is not bit-exact
    (or, with ``require_fidelity``, no longer computes the float model)."""
    failed = [r for r in records if _fails(r, require_fidelity)]
    suite = ET.Element("testsuite", name="nirc verify", tests=str(len(records)),
                       failures=str(len(failed)), errors="0",
                       time=f"{sum(r['seconds'] for r in records):.3f}")
    for r in records:
        case = ET.SubElement(suite, "testcase", classname=Path(r["model"]).stem,
                             name=f"{Path(r['model']).name} on {r['target']}",
                             time=f"{r['seconds']:.3f}")
        why = _fails(r, require_fidelity)
        if why:
            message = r["message"] or "; ".join(
                f"population '{row['population']}': {w}" for row in r.get("layers", [])
                for w in row.get("warnings", []))
            failure = ET.SubElement(case, "failure", type=why, message=message)
            failure.text = message
        else:
            out = ET.SubElement(case, "system-out")
            out.text = (f"bit-exact over {r['steps']} steps x {r['samples']} samples; "
                        f"{r['cores_used']} cores (lower bound {r['lower_bound']})")
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def run(args: argparse.Namespace) -> int:
    inputs = _check_inputs(args)
    several = len(args.models) * len(args.target) > 1
    records = []
    for model in args.models:
        for target in args.target:
            record, report = verify_pair(args, model, target, inputs[model], several)
            records.append(record)
            if not args.json:
                _print(model, target, record, report)
    passed = not any(_fails(r, args.require_fidelity) for r in records)
    if args.junit:
        from nirc.atomic import replacing

        with replacing(args.junit) as tmp:     # whole or not at all; special files written through
            tmp.write_text(junit_xml(records, args.require_fidelity), encoding="utf-8")
    if args.json:
        json.dump({"format": JSON_FORMAT, "schema_version": JSON_SCHEMA_VERSION,
                   "passed": passed, "results": records}, sys.stdout, indent=2, default=_plain)
        sys.stdout.write("\n")
    return 0 if passed else 1


def _safe(text: Any) -> str:
    """Text from the user's files as rich prints it literally (control characters escaped)."""
    from rich.markup import escape

    from nirc.errors import printable

    return escape(printable(str(text)))


def _print(model: str, target: str, record: dict[str, Any], report) -> None:
    console = Console(stderr=False)
    model = _safe(model)
    if report is None:
        what = "does not fit" if record["status"] == "does-not-fit" else "cannot be compiled"
        console.print(f"[bold]{model}[/bold] on {target}: [red]{what}[/red]: {_safe(record['message'])}",
                      markup=True, highlight=False)
        return
    console.print(f"[bold]{model}[/bold] on {target}: {report.steps} steps x "
                  f"{report.samples} samples; emulator vs integer reference bit-exact: "
                  f"[bold]{'yes' if report.bit_exact else 'NO'}[/bold]; chip faithful to the float "
                  f"model: [bold]{'yes' if report.faithful else '[red]NO[/red]'}[/bold]")
    outputs = Table(title="outputs: integer (chip) vs float simulation of the model as trained")
    nir_column = any("float_spikes_nir" in row or "voltage_correlation_nir" in row
                     for row in report.outputs)
    columns = ["output", "quantity", "float spikes", "integer spikes", "count corr.",
               "voltage corr.", "class. agreement"]
    if nir_column:
        columns += ["count corr. (NIR)", "voltage corr. (NIR)", "class. agreement (NIR)"]
    for col in columns:
        outputs.add_column(col)
    for row in report.outputs:
        cells = [_safe(row["output"]), row["quantity"], _fmt(row.get("float_spikes")),
                 _fmt(row.get("integer_spikes")), _fmt(row.get("count_correlation")),
                 _fmt(row.get("voltage_correlation")),
                 _fmt(row.get("classification_agreement"))]
        if nir_column:
            cells += [_fmt(row.get("count_correlation_nir")),
                      _fmt(row.get("voltage_correlation_nir")),
                      _fmt(row.get("classification_agreement_nir"))]
        outputs.add_row(*cells)
    console.print(outputs)
    layers = Table(title="per layer")
    for col in ("population", "weight rel. error", "float spikes", "integer spikes",
                "count corr.", "agreement", "bursts"):
        layers.add_column(col)
    for row in report.layers:
        layers.add_row(_safe(row["population"]), _fmt(row.get("weight_rel_error")),
                       _fmt(row.get("float_spikes")), _fmt(row.get("integer_spikes")),
                       _fmt(row.get("count_correlation")), _fmt(row.get("agreement")),
                       _fmt(row.get("burst_share")))
    console.print(layers)
    for row in report.layers:
        for warning in row.get("warnings", []):
            console.print(f"[red]warning[/red]: population '{_safe(row['population'])}': "
                          f"{_safe(warning)}", markup=True, highlight=False)
    for note in report.notes + report.fidelity_notes:
        console.print(f"note: {_safe(note)}")
    for m in report.mismatches[:10]:
        console.print(f"[red]MISMATCH[/red] {_safe(_mismatch_text(m))}")
    if "report" in record:
        log.info("wrote %s", record["report"])
