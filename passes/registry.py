"""The passes by name, as target YAML files list them (``passes: [normalize, ...]``).

Explicit on purpose: a pass exists when it is listed here, and
tests/test_passes_normalize_fuse.py checks that every module of this package is.
"""

from __future__ import annotations

from typing import Any, Callable

from nirc.errors import TargetError
from nirc.passes.balance_delays import balance_delays
from nirc.passes.discretize import discretize
from nirc.passes.fuse import fuse
from nirc.passes.neuron_profiles import neuron_profiles
from nirc.passes.normalize import normalize
from nirc.passes.quantize import quantize
from nirc.passes.speck_lower import speck_lower
from nirc.passes.speck_quantize import speck_quantize
from nirc.passes.split_signs import split_signs
from nirc.passes.unroll import unroll
from nirc.passes.xylo_quantize import xylo_quantize

Pass = Callable[[Any, Any], Any]

PASSES: dict[str, Pass] = {
    "normalize": normalize,
    "discretize": discretize,
    "fuse": fuse,
    "unroll": unroll,
    "split_signs": split_signs,
    "quantize": quantize,
    "balance_delays": balance_delays,
    "neuron_profiles": neuron_profiles,
    "speck_lower": speck_lower,
    "speck_quantize": speck_quantize,
    "xylo_quantize": xylo_quantize,
}

# Modules of nirc.passes that are not passes.
SUPPORT_MODULES = ("context", "registry")


def get_pass(name: str, file: str | None = None) -> Pass:
    try:
        return PASSES[name]
    except KeyError:
        raise TargetError(f"unknown pass '{name}' (known: {', '.join(PASSES)})",
                          file=file, field="passes") from None
