"""`nirc simulate`: run a NIR model on an input file with the float reference simulator.

A thin layer over nirc.simulate.simulate: it maps NPZ arrays to Input nodes
(`input`, or `input_<name>` for several; (T, *shape), or (T, B, *shape) with
--batch), checks their shapes before running,
and writes `output` / `output_<name>` (plus `v_<node>`, `i_<node>` and
`spikes_<node>` with --record) atomically, so a failed run leaves no file.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from nirc.errors import NircError

log = logging.getLogger("nirc")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate", help="run a NIR model with the float reference simulator",
        description="Run MODEL.nir on the spike/current input in IN.npz with NIR semantics "
                    "(docs/semantics.md) and write the outputs to OUT.npz.")
    parser.add_argument("model", metavar="MODEL.nir", help="the NIR file to run")
    parser.add_argument("--input", required=True, metavar="IN.npz",
                        help="array 'input' shaped (T, *input_shape); with several Input nodes "
                             "one array 'input_<name>' each")
    parser.add_argument("--output", required=True, metavar="OUT.npz",
                        help="receives 'output' shaped (T, *output_shape) (several Output "
                             "nodes: 'output_<name>' each)")
    parser.add_argument("--dt", type=float, default=None,
                        help="time step in seconds (default: the file's metadata 'dt', "
                             "else 1e-3)")
    parser.add_argument("--method", choices=("euler", "exact"), default="euler",
                        help="discretisation: forward Euler (default) or exact exponential")
    parser.add_argument("--batch", action="store_true",
                        help="arrays carry a batch axis after time: (T, B, *shape) in and out")
    parser.add_argument("--record", action="store_true",
                        help="also write each neuron node's membrane trace v_<node> "
                             "(i_<node> for Cuba nodes) and spike train spikes_<node>")
    parser.set_defaults(run=run)


def input_key(name: str, several: bool) -> str:
    return f"input_{name}" if several else "input"


def output_key(name: str, several: bool) -> str:
    return f"output_{name}" if several else "output"


def load_inputs(path: str, input_shapes: dict[str, tuple[int, ...]],
                batch: bool = False) -> dict[str, np.ndarray]:
    """The arrays for each Input node; NircError naming the file and array on any mismatch."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise NircError("no such file", file=path) from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise NircError(f"cannot read as .npz ({str(err).splitlines()[0]})", file=path) from None
    several = len(input_shapes) > 1
    inputs = {}
    steps = None
    for name, shape in input_shapes.items():
        key = input_key(name, several)
        lead = 2 if batch else 1
        expected = f"({'T, B' if batch else 'T'}, {', '.join(map(str, shape))})"
        if key not in arrays:
            raise NircError(f"no array '{key}' for Input node '{name}' (expected shape "
                            f"{expected}; the file holds {sorted(arrays) or 'nothing'})",
                            file=path)
        array = arrays[key]
        if array.ndim != len(shape) + lead or tuple(array.shape[lead:]) != tuple(shape):
            raise NircError(f"array '{key}' has shape {tuple(array.shape)}, expected {expected} "
                            f"for Input node '{name}'", file=path)
        if array.dtype.kind not in "biuf":
            raise NircError(f"array '{key}' has dtype {array.dtype}, expected numbers", file=path)
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise NircError(f"array '{key}' contains NaN or Inf", file=path)
        if steps is not None and array.shape[:lead] != steps:
            raise NircError(f"array '{key}' has (T{', B' if batch else ''}) = "
                            f"{array.shape[:lead]}, the others {steps}", file=path)
        steps = array.shape[:lead]
        inputs[name] = array
    return inputs


def save_atomically(path: str, arrays: dict[str, np.ndarray]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def run(args: argparse.Namespace) -> int:
    from nirc.ir.graph import flatten, infer_shapes
    from nirc.nirio import read
    from nirc.simulate import DEFAULT_DT, resolve_dt, simulate

    if args.dt is not None and not (np.isfinite(args.dt) and args.dt > 0):
        raise NircError(f"--dt must be a positive number of seconds, got {args.dt:g}")
    graph = read(args.model)
    try:
        shapes = infer_shapes(flatten(graph))
        dt, source = resolve_dt(args.dt, graph, DEFAULT_DT)
    except NircError as err:
        raise err.at(file=args.model) from None
    input_shapes = {name: shapes[name].output for name in graph.inputs()}
    inputs = load_inputs(args.input, input_shapes, batch=args.batch)
    log.info("simulating %s: %d steps of dt = %g s (%s), %s method", args.model,
             next(iter(inputs.values())).shape[0], dt, source, args.method)
    try:
        result = simulate(graph, inputs, dt=dt, method=args.method, batch=args.batch,
                          record=args.record)
    except NircError as err:
        raise err.at(file=args.model) from None

    several = len(result.outputs) > 1
    arrays = {output_key(name, several): out for name, out in result.outputs.items()}
    if args.record:
        for node, states in result.states.items():
            arrays.update({f"{key}_{node}": trace for key, trace in states.items()})
        arrays.update({f"spikes_{node}": train for node, train in result.spikes.items()})
    save_atomically(args.output, arrays)
    for node, train in result.spikes.items():
        log.info("  %-24s %8d spikes (%.4f per neuron per step)", node, int(train.sum()),
                 float(train.mean()) if train.size else 0.0)
    log.info("wrote %s (%s)", args.output, ", ".join(sorted(arrays)))
    return 0
