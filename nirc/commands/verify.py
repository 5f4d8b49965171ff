"""`nirc verify`: compile, then check emulator == integer reference bit for bit, and report
fidelity against the float simulation. Exit status 1 when the emulator and the integer
reference differ (a compiler bug), 0 otherwise.
"""

from __future__ import annotations

import argparse
import logging

from rich.console import Console
from rich.table import Table

from nirc.commands.compile import add_common

log = logging.getLogger("nirc")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="compile and prove the build bit-exact against the integer reference",
        description="Compile MODEL.nir (into a temporary directory unless -o), run the float "
                    "simulator, the integer reference and the emulator on the same input, and "
                    "print how they agree. Exit 1 if emulator and integer reference differ.")
    parser.add_argument("model", metavar="MODEL.nir")
    add_common(parser)
    parser.add_argument("-o", "--output", metavar="OUT_DIR", default=None,
                        help="keep the build here (default: a temporary directory)")
    parser.add_argument("--input", metavar="IN.npz", default=None,
                        help="input spikes as for 'nirc emulate' (default: seeded random "
                             "spikes)")
    parser.add_argument("--batch", action="store_true", help="IN.npz arrays are (T, B, *shape)")
    parser.add_argument("--steps", type=int, default=100, help="steps of random input")
    parser.add_argument("--samples", type=int, default=8, help="samples of random input")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random input")
    parser.set_defaults(run=run)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def run(args: argparse.Namespace) -> int:
    from nirc.commands.emulate import read_npz_inputs
    from nirc.ir.graph import flatten, infer_shapes
    from nirc.nirio import read
    from nirc.verify import verify

    graph = read(args.model)
    inputs = None
    if args.input:
        shapes = infer_shapes(flatten(graph))
        inputs = read_npz_inputs(args.input, {n: tuple(shapes[n].output)
                                              for n in sorted(graph.inputs())}, args.batch)
        if not args.batch:
            inputs = {k: v[:, None] for k, v in inputs.items()}
    report = verify(args.model, args.target, inputs=inputs, steps=args.steps,
                    samples=args.samples, seed=args.seed, out_dir=args.output, dt=args.dt,
                    method=args.method, granularity=args.granularity,
                    calibration_steps=args.calibration_steps)
    console = Console(stderr=False)
    console.print(f"[bold]{args.model}[/bold] on {args.target}: {report.steps} steps x "
                  f"{report.samples} samples; emulator vs integer reference bit-exact: "
                  f"[bold]{'yes' if report.bit_exact else 'NO'}[/bold]")
    outputs = Table(title="outputs: integer (chip) vs float simulation")
    for col in ("output", "quantity", "float spikes", "integer spikes", "count corr.",
                "voltage corr.", "class. agreement"):
        outputs.add_column(col)
    for row in report.outputs:
        outputs.add_row(row["output"], row["quantity"], _fmt(row.get("float_spikes")),
                        _fmt(row.get("integer_spikes")), _fmt(row.get("count_correlation")),
                        _fmt(row.get("voltage_correlation")),
                        _fmt(row.get("classification_agreement")))
    console.print(outputs)
    layers = Table(title="per layer")
    for col in ("population", "weight rel. error", "float spikes", "integer spikes",
                "count corr."):
        layers.add_column(col)
    for row in report.layers:
        layers.add_row(row["population"], _fmt(row.get("weight_rel_error")),
                       _fmt(row.get("float_spikes")), _fmt(row.get("integer_spikes")),
                       _fmt(row.get("count_correlation")))
    console.print(layers)
    for note in report.notes:
        console.print(f"note: {note}")
    for m in report.mismatches[:10]:
        console.print(f"[red]MISMATCH[/red] {m.what}: step {m.step}, sample {m.sample}, "
                      f"index {m.index}: emulator {m.emulator} != reference {m.reference}")
    return 0 if report.bit_exact else 1
