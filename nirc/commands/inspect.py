"""`nirc inspect`: what a NIR file holds, layer by layer.

A thin layer over nirc.nirio.read and nirc.ir.summary.summarize: nodes (nested graphs
inlined as "sub.inner"), types, shapes, parameter and synapse counts (convolutions
unrolled), neurons per layer, edges, the warnings reading the file raised, and the
exporter recognised from the parameters with the conventions it implies (nirc.convention). Human
output is a table (plain text when piped); ``--json`` prints one JSON document.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

import numpy as np

from nirc.convention import Convention, detect, nir_convention
from nirc.errors import NircError, NircWarning, printable
from nirc.ir.summary import GraphSummary, summarize
from nirc.nirio import read
from nirc.nirio.reader import file_version


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect", help="show the layers, shapes, parameter/synapse/neuron counts of a NIR file",
        description="Read MODEL.nir (repairing known exporter quirks, with warnings) and show "
                    "every node with its shapes, parameter count, synapse count (convolutions "
                    "unrolled), neurons, and the graph's edges.")
    parser.add_argument("model", metavar="MODEL.nir", help="the NIR file to inspect")
    parser.add_argument("--json", action="store_true",
                        help="print one machine-readable JSON document instead of a table")
    parser.set_defaults(run=run)


def run(args) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NircWarning)
        graph = read(args.model)
        summary = summarize(graph)
        warn_if_not_runnable(graph, str(args.model))
    messages = [str(w.message) for w in caught if issubclass(w.category, NircWarning)]
    try:
        convention = detect(graph, notes=messages)
    except NircError as err:
        # Inspect shows what a file holds, even metadata simulate and compile would refuse.
        convention = nir_convention(exporter="unknown", evidence=(
            f"the file's own statement of its rules is unreadable: {err.message}",))
    if not getattr(args, "quiet", False):
        for w in caught:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    version = file_version(args.model)
    if args.json:
        doc = {"file": str(args.model), "nir_version": version, **summary.to_dict(),
               "metadata": _plain(dict(graph.metadata)), "warnings": messages,
               "convention": convention.to_dict()}
        # One write: json.dump writes each of a 10^5-node graph's millions of pieces apart.
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        _print_table(str(args.model), version, summary, len(messages))
        _print_convention(convention)
    return 0


def _print_convention(convention: Convention) -> None:
    """Who exported the file and what simulate/compile/verify assume, with the evidence."""
    print(f"exporter: {convention.exporter}"
          + (f" {convention.exporter_version}" if convention.exporter_version else ""))
    print(f"  {convention.describe()}")
    for line in convention.evidence:
        print(f"  - {_safe(line)}")
    sources = {}
    for name in ("dt", "reset", "spikes", "threshold_test", "v_min"):
        sources.setdefault(convention.source(name), []).append(name)
    print("  from: " + "; ".join(f"{src}: {', '.join(names)}" for src, names in sources.items()))
    print("  (simulate, compile and verify take --from, --reset, --spikes, --v-min and --dt "
          "to state otherwise)")


def warn_if_not_runnable(graph, file: str) -> None:
    """A NircWarning per reason the graph cannot be simulated or compiled (no Input, no
    Output, no path between them) or computes something no Output reads."""
    from nirc.ir.graph import flatten
    from nirc.ir.reachability import problems

    fatal, advisory = problems(flatten(graph))
    for reason in fatal:
        warnings.warn(NircWarning(f"{file}: cannot be simulated or compiled: {reason}"),
                      stacklevel=2)
    for reason in advisory:
        warnings.warn(NircWarning(f"{file}: {reason}"), stacklevel=2)


def _print_table(path: str, version: str | None, summary: GraphSummary, n_warnings: int) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped: no colour, no box drawing, no wrapping
        console = Console(width=1000, no_color=True, highlight=False)
    totals = summary.totals
    console.print(f"{_safe(path)} (NIR {_safe(version or 'version unknown')})", soft_wrap=True,
                  highlight=False)
    table = Table(box=box.SIMPLE_HEAD if console.is_terminal else None, show_footer=True)
    columns = [("node", "total", "left"), ("type", "", "left"), ("input", "", "left"),
               ("output", "", "left"), ("parameters", f"{totals['parameters']:,}", "right"),
               ("synapses", f"{totals['synapses']:,}", "right"),
               ("nonzero", f"{totals['nonzero_synapses']:,}", "right"),
               ("neurons", f"{totals['neurons']:,}", "right")]
    for header, footer, justify in columns:
        table.add_column(header, footer=footer, justify=justify)
    for layer in summary.layers:
        table.add_row(_safe(layer.name), layer.type + (" (spiking)" if layer.spiking else ""),
                      _shape(layer.input_shape), _shape(layer.output_shape),
                      f"{layer.parameters:,}", f"{layer.synapses:,}",
                      f"{layer.nonzero_synapses:,}", f"{layer.neurons:,}" if layer.neurons else "")
    console.print(table)
    console.print(f"edges ({len(summary.edges)}): "
                  + ", ".join(f"{_safe(s)} -> {_safe(t)}" for s, t in summary.edges),
                  soft_wrap=True)
    if n_warnings:
        console.print(f"warnings: {n_warnings} (shown above)")


def _safe(text: str) -> str:
    """A name from the file as rich prints it literally: control characters escaped
    (nirc.errors.printable) and '[' not read as markup."""
    from rich.markup import escape

    return escape(printable(str(text)))


def _shape(shape: list[int] | None) -> str:
    return "?" if shape is None else "x".join(str(d) for d in shape)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
