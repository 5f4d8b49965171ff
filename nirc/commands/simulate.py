"""`nirc simulate`: run a NIR model on an input file with the float reference simulator.

A thin layer over nirc.simulate.simulate under the convention the file was trained
with (nirc.commands.conventions: detected, or stated by --from/--reset/...): it maps NPZ arrays to Input nodes
(`input`, or `input_<name>` for several; (T, *shape), or (T, B, *shape) with
--batch; nirc.npzio), checks their shapes before running,
and writes `output` / `output_<name>` (plus `v_<node>`, `i_<node>` and
`spikes_<node>` with --record) atomically, so a failed run leaves no file.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from nirc.commands.conventions import add_arguments, resolve_for
from nirc.errors import NircError
from nirc.npzio import output_key, read_inputs, write_atomically

log = logging.getLogger("nirc")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate", help="run a NIR model with the float reference simulator",
        description="Run MODEL.nir on the spike/current input in IN.npz as the framework "
                    "that exported it computes it (recognised from the file, or stated with "
                    "--from; NIR semantics for hand-written files; docs/semantics.md) and "
                    "write the outputs to OUT.npz.")
    parser.add_argument("model", metavar="MODEL.nir", help="the NIR file to run")
    parser.add_argument("--input", required=True, metavar="IN.npz",
                        help="array 'input' shaped (T, *input_shape); with several Input nodes "
                             "one array 'input_<name>' each")
    parser.add_argument("--output", required=True, metavar="OUT.npz",
                        help="receives 'output' shaped (T, *output_shape) (several Output "
                             "nodes: 'output_<name>' each)")
    parser.add_argument("--dt", type=float, default=None,
                        help="time step in seconds (default: the detected exporter's, else the "
                             "file's metadata 'dt', else 1e-3)")
    parser.add_argument("--method", choices=("euler", "exact"), default=None,
                        help="discretisation: forward Euler or exact exponential (default: the "
                             "exporter's; euler for NIR)")
    parser.add_argument("--batch", action="store_true",
                        help="arrays carry a batch axis after time: (T, B, *shape) in and out")
    parser.add_argument("--record", action="store_true",
                        help="also write each neuron node's membrane trace v_<node> "
                             "(i_<node> for Cuba nodes) and spike train spikes_<node>")
    add_arguments(parser)
    parser.set_defaults(run=run)


# How the log names where dt came from.
_DT_SOURCE = {"option": "given", "file": "the file's metadata 'dt'",
              "detection": "the exporter's convention", "default": "the default"}


def run(args: argparse.Namespace) -> int:
    from nirc.ir.graph import flatten, infer_shapes
    from nirc.nirio import read
    from nirc.simulate import simulate

    if args.dt is not None and not (np.isfinite(args.dt) and args.dt > 0):
        raise NircError(f"--dt must be a positive number of seconds, got {args.dt:g}")
    graph = read(args.model)
    try:
        shapes = infer_shapes(flatten(graph))
    except NircError as err:
        raise err.at(file=args.model) from None
    convention = resolve_for(graph, args, file=args.model)
    input_shapes = {name: shapes[name].output for name in graph.inputs()}
    inputs = read_inputs(args.input, input_shapes, batch=args.batch, kind="Input node")
    log.info("simulating %s: %d steps of dt = %g s (%s), %s method", args.model,
             next(iter(inputs.values())).shape[0], convention.dt,
             _DT_SOURCE[convention.source("dt")], convention.discretisation)
    try:
        result = simulate(graph, inputs, batch=args.batch, record=args.record,
                          convention=convention)
    except NircError as err:
        raise err.at(file=args.model) from None

    several = len(result.outputs) > 1
    arrays = {output_key(name, several): out for name, out in result.outputs.items()}
    if args.record:
        for node, states in result.states.items():
            arrays.update({f"{key}_{node}": trace for key, trace in states.items()})
        arrays.update({f"spikes_{node}": train for node, train in result.spikes.items()})
    write_atomically(args.output, arrays)
    for node, train in result.spikes.items():
        log.info("  %-24s %8d spikes (%.4f per neuron per step)", node, int(train.sum()),
                 float(train.mean()) if train.size else 0.0)
    log.info("wrote %s (%s)", args.output, ", ".join(sorted(arrays)))
    return 0
