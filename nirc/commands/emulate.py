"""`nirc emulate`: run a build directory bit-accurately, reading nothing but its files.

A thin layer over nirc.emulator.Chip. Input/output NPZ layout as `nirc
simulate` (nirc.npzio: ``input`` / ``input_<name>``, ``output`` / ``output_<name>``),
with ``--batch`` adding a sample axis after time. Input values the chip would
read differently (e.g. counts above 1 where inputs are binary spikes) are
warned about by the chip's neuron model (``NeuronModel.input_notice``).
"""

from __future__ import annotations

import argparse
import logging
import warnings

import numpy as np

from nirc.errors import NircError, NircWarning
from nirc.neuron_models import NeuronModel
from nirc.npzio import input_key, output_key, read_inputs, write_atomically

log = logging.getLogger("nirc")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "emulate", help="run a compiled build bit-accurately",
        description="Run the deployment configuration in BUILD_DIR on IN.npz with the "
                    "bit-accurate emulator and write OUT.npz.")
    parser.add_argument("build", metavar="BUILD_DIR", help="a directory written by nirc compile")
    parser.add_argument("--input", required=True, metavar="IN.npz",
                        help="'input' (T, *shape) or 'input_<name>' per input port: events per "
                             "channel and step (0/1 spikes on Loihi, 0-15 events on Xylo)")
    parser.add_argument("--output", required=True, metavar="OUT.npz",
                        help="receives 'output' / 'output_<name>' (raw chip values) and "
                             "'voltage_<name>' for readouts in float units")
    parser.add_argument("--batch", action="store_true",
                        help="inputs are (T, B, *shape): B samples run at once")
    parser.add_argument("--record", action="store_true",
                        help="also write spikes_<pop> and each state (u_<pop>, v_<pop>) per "
                             "population")
    parser.set_defaults(run=run)


def read_npz_inputs(path: str, shapes: dict[str, tuple[int, ...]], batch: bool,
                    model: NeuronModel | None = None) -> dict[str, np.ndarray]:
    """Input arrays by port name (nirc.npzio.read_inputs); with ``model``, a NircWarning for
    each array the chip would read other than as given (``model.input_notice``)."""
    inputs = read_inputs(path, shapes, batch)
    if model is not None:
        check_input_events(path, inputs, model, batch)
        warn_about_input_values(path, inputs, model)
    return inputs


def check_input_events(path: str, inputs: dict[str, np.ndarray], model: NeuronModel,
                       batch: bool = False) -> None:
    """NircError when one step of an input array holds more events than the chip's neuron
    model states it can take (``model.max_events_per_step``): checked here, where the file
    is read, so no emulator ever expands 2**31 events of one pixel into memory."""
    limit = getattr(model, "max_events_per_step", None)
    if limit is None:
        return
    for name, values in inputs.items():
        key = input_key(name, len(inputs) > 1)
        lead = 2 if batch else 1
        per_step = np.abs(values.reshape(*values.shape[:lead], -1)).sum(axis=-1,
                                                                         dtype=np.float64)
        worst = np.unravel_index(int(np.argmax(per_step)), per_step.shape)
        if per_step[worst] > limit:
            where = f"step {worst[0]}" + (f", sample {worst[1]}" if batch else "")
            raise NircError(f"array '{key}' holds {per_step[worst]:,.0f} events in {where}, "
                            f"more than the {limit:,} per step the {model.name} chip takes",
                            file=path)


def warn_about_input_values(path: str, inputs: dict[str, np.ndarray], model: NeuronModel) -> None:
    """A NircWarning per input array whose values the chip's neuron model reads differently."""
    for name, values in inputs.items():
        notice = model.input_notice(values)
        if notice:
            key = input_key(name, len(inputs) > 1)
            warnings.warn(NircWarning(f"{path}: array '{key}' {notice}"), stacklevel=2)


def _counts(spikes: np.ndarray) -> np.ndarray:
    """Spike counts in the smallest unsigned type that holds them all (Speck neurons spike
    several times a step: uint8 would wrap 469 to 213)."""
    top = int(spikes.max()) if spikes.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return spikes.astype(dtype)
    return spikes.astype(np.uint64)


def run(args: argparse.Namespace) -> int:
    from nirc.builddir import recover
    from nirc.emulator import Chip

    for done in recover(args.build):    # a compile killed mid-replace: find the build it left
        log.info("%s: %s", args.build, done)
    chip = Chip.load(args.build)
    inputs = read_npz_inputs(args.input, chip.inputs, args.batch, chip.model)
    result = chip.run(inputs, batch=args.batch, record=args.record)
    several = len(result.outputs) > 1
    arrays = {output_key(name, several): out for name, out in result.outputs.items()}
    for name, out in result.outputs.items():
        if chip.outputs[name]["quantity"] != "spikes":
            arrays[f"voltage_{name}"] = chip.to_float(name, out)
    if args.record:
        arrays.update({f"spikes_{p}": _counts(s) for p, s in result.spikes.items()})
        for pop, states in result.states.items():
            arrays.update({f"{s}_{pop}": trace for s, trace in states.items()})
    write_atomically(args.output, arrays)
    log.info("emulated %d steps of %s; wrote %s", result.steps, args.build, args.output)
    return 0
