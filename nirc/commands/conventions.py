"""The options that state how a model was trained, shared by simulate, compile and verify.

--from names the exporter (default: detected from the file), --reset/--spikes/--v-min/
--max-spikes/--reset-delay state what the file cannot carry, and --dt stays the last word
on dt. ``resolve_for(graph, args)`` turns them into a nirc.convention.Convention and
warns (NircWarning) when the file fits several exporters.
"""

from __future__ import annotations

import argparse
import logging
import math
import warnings

from nirc.convention import FROM_CHOICES, RESETS, SPIKE_RULES, Convention, resolve
from nirc.errors import NircError, NircWarning

log = logging.getLogger("nirc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "how the model was trained (a NIR file carries no reset or spike rule; "
        "'nirc inspect' shows what is detected)")
    group.add_argument("--from", dest="exporter", choices=FROM_CHOICES, default="auto",
                       help="the framework that exported the file (default: auto, detected "
                            "from its parameters; nir: NIR's own rules)")
    group.add_argument("--reset", choices=RESETS, default=None,
                       help="reset after a spike: to v_reset (zero) or by subtracting the "
                            "threshold (default: the exporter's)")
    group.add_argument("--reset-delay", action=argparse.BooleanOptionalAction, default=None,
                       help="the reset is applied one step late, as snnTorch's reset_delay=True "
                            "(its default) does")
    group.add_argument("--spikes", choices=SPIKE_RULES, default=None,
                       help="one spike per neuron per step, or a count (Sinabs MultiSpike, "
                            "Rockpool) (default: the exporter's)")
    group.add_argument("--max-spikes", type=int, default=None, metavar="N",
                       help="with --spikes multi: at most N spikes per step (Sinabs MaxSpike, "
                            "Rockpool max_spikes_per_dt)")
    group.add_argument("--v-min", type=float, default=None, metavar="V",
                       help="membrane floor applied after the reset (Sinabs min_v_mem)")
    group.add_argument("--input-scaling", choices=("nir", "unscaled"), default=None,
                       help="unscaled: every neuron adds its input without the dt/tau factor "
                            "(Sinabs LIF with norm_input=False); nir: as NIR's equations "
                            "(default: the exporter's)")


def options(args: argparse.Namespace) -> dict:
    """The keyword arguments of nirc.convention.resolve the command line gives."""
    v_min = getattr(args, "v_min", None)
    if v_min is not None and not math.isfinite(v_min):
        raise NircError(f"--v-min must be a finite number, got {v_min:g}")
    max_spikes = getattr(args, "max_spikes", None)
    if max_spikes is not None and max_spikes < 1:
        raise NircError(f"--max-spikes must be at least 1, got {max_spikes}")
    return dict(exporter=getattr(args, "exporter", "auto"), dt=getattr(args, "dt", None),
                method=getattr(args, "method", None), reset=getattr(args, "reset", None),
                spikes=getattr(args, "spikes", None), v_min=v_min,
                reset_delay=getattr(args, "reset_delay", None), max_spikes=max_spikes,
                input_scaling=getattr(args, "input_scaling", None))


def resolve_for(graph, args: argparse.Namespace, file: str | None = None,
                default_dt: float | None = None) -> Convention:
    """The convention the command runs ``graph`` under; logs it and warns when ambiguous."""
    kwargs = options(args)
    if default_dt is not None:
        kwargs["default_dt"] = default_dt
    try:
        convention = resolve(graph, **kwargs)
    except NircError as err:
        raise err.at(file=file) from None
    announce(convention, file)
    return convention


def announce(convention: Convention, file: str | None = None) -> None:
    """Say what was assumed (info; 'nirc inspect' gives the evidence), and warn when the
    file fits several exporters."""
    where = f"{file}: " if file else ""
    log.info("%s%s", where, convention.describe())
    if len(convention.candidates) > 1 and convention.source("exporter") == "detection":
        ambiguous = next(e for e in convention.evidence if e.startswith("ambiguous"))
        warnings.warn(NircWarning(f"{where}{ambiguous}"), stacklevel=2)
