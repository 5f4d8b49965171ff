"""`nirc emulate`: run a build directory bit-accurately, reading nothing but its files.

A thin layer over nirc.emulator.Chip. Input/output NPZ layout as `nirc
simulate` (``input`` / ``input_<name>``, ``output`` / ``output_<name>``), with
``--batch`` adding a sample axis after time.
"""

from __future__ import annotations

import argparse
import logging
import warnings
import zipfile

import numpy as np

from nirc.commands.simulate import input_key, output_key, save_atomically
from nirc.errors import NircError, NircWarning

log = logging.getLogger("nirc")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "emulate", help="run a compiled build bit-accurately",
        description="Run the deployment configuration in BUILD_DIR on IN.npz with the "
                    "bit-accurate emulator and write OUT.npz.")
    parser.add_argument("build", metavar="BUILD_DIR", help="a directory written by nirc compile")
    parser.add_argument("--input", required=True, metavar="IN.npz",
                        help="'input' (T, *shape) or 'input_<name>' per input port; spikes 0/1")
    parser.add_argument("--output", required=True, metavar="OUT.npz",
                        help="receives 'output' / 'output_<name>' (raw chip values) and "
                             "'voltage_<name>' for readouts in float units")
    parser.add_argument("--batch", action="store_true",
                        help="inputs are (T, B, *shape): B samples run at once")
    parser.add_argument("--record", action="store_true",
                        help="also write spikes_<pop> and each state (u_<pop>, v_<pop>) per "
                             "population")
    parser.set_defaults(run=run)


def read_npz_inputs(path: str, shapes: dict[str, tuple[int, ...]], batch: bool
                    ) -> dict[str, np.ndarray]:
    """Input arrays by port name; NircError naming the file and array on any problem."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise NircError("no such file", file=path) from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise NircError(f"cannot read as .npz ({str(err).splitlines()[0]})", file=path) from None
    several = len(shapes) > 1
    out = {}
    for name, shape in shapes.items():
        key = input_key(name, several)
        lead = "(T, B, " if batch else "(T, "
        expected = f"{lead}{', '.join(map(str, shape))})"
        if key not in arrays:
            raise NircError(f"no array '{key}' for input '{name}' (expected {expected}; the file "
                            f"holds {sorted(arrays) or 'nothing'})", file=path)
        a = arrays[key]
        n_lead = 2 if batch else 1
        if a.ndim != len(shape) + n_lead or tuple(a.shape[n_lead:]) != tuple(shape):
            raise NircError(f"array '{key}' has shape {tuple(a.shape)}, expected {expected}",
                            file=path)
        if a.dtype.kind not in "biuf" or (a.dtype.kind == "f" and not np.all(np.isfinite(a))):
            raise NircError(f"array '{key}' must hold finite numbers", file=path)
        if np.any((a != 0) & (a != 1)):
            warnings.warn(NircWarning(f"{path}: array '{key}' holds values other than 0 and 1; "
                                      f"the chip's inputs are binary spikes (non-zero counts "
                                      f"as one spike)"), stacklevel=2)
        out[name] = a
    return out


def run(args: argparse.Namespace) -> int:
    from nirc.emulator import Chip

    chip = Chip.load(args.build)
    inputs = read_npz_inputs(args.input, chip.inputs, args.batch)
    result = chip.run(inputs, batch=args.batch, record=args.record)
    several = len(result.outputs) > 1
    arrays = {output_key(name, several): out for name, out in result.outputs.items()}
    for name, out in result.outputs.items():
        if chip.outputs[name]["quantity"] != "spikes":
            arrays[f"voltage_{name}"] = chip.to_float(name, out)
    if args.record:
        arrays.update({f"spikes_{p}": s.astype(np.uint8) for p, s in result.spikes.items()})
        for pop, states in result.states.items():
            arrays.update({f"{s}_{pop}": trace for s, trace in states.items()})
    save_atomically(args.output, arrays)
    log.info("emulated %d steps of %s; wrote %s", result.steps, args.build, args.output)
    return 0
