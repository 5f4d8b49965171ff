"""The passes by name, as target YAML files list them (``passes: [normalize, ...]``).

Explicit on purpose: a pass exists when it is listed here, and
tests/test_passes_normalize_fuse.py checks that every module of this package is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from nirc.errors import TargetError
from nirc.passes.discretize import discretize
from nirc.passes.fuse import fuse
from nirc.passes.normalize import normalize
from nirc.passes.quantize import quantize
from nirc.passes.speck_lower import speck_lower
from nirc.passes.speck_quantize import speck_quantize
from nirc.passes.unroll import unroll
from nirc.passes.xylo_quantize import xylo_quantize

Pass = Callable[[Any, Any], Any]

PASSES: dict[str, Pass] = {
    "normalize": normalize,
    "discretize": discretize,
    "fuse": fuse,
    "unroll": unroll,
    "quantize": quantize,
    "speck_lower": speck_lower,
    "speck_quantize": speck_quantize,
    "xylo_quantize": xylo_quantize,
}


@dataclass(frozen=True)
class Contract:
    """What a pass requires of its input and what it produces, as stage names, and the
    neuron models it serves (None: every model no other pass claims). The stages are the
    docstrings' Requires/Guarantees in one word each, so a target's pass list can be
    checked when the YAML is loaded rather than failing inside a pass at compile time."""

    requires: str
    produces: str
    models: frozenset[str] | None = None


# The stage of a freshly read graph, and the stage a pass list must end in.
FIRST_STAGE = "nir"
LAST_STAGE = "quantized"

CONTRACTS: dict[str, Contract] = {
    "normalize": Contract("nir", "normalized"),
    "discretize": Contract("normalized", "discretized"),
    "fuse": Contract("discretized", "fused"),
    "unroll": Contract("fused", "unrolled"),
    "quantize": Contract("unrolled", "quantized"),
    "speck_lower": Contract("normalized", "speck_float", frozenset({"speck_iaf"})),
    "speck_quantize": Contract("speck_float", "quantized", frozenset({"speck_iaf"})),
    "xylo_quantize": Contract("unrolled", "quantized", frozenset({"xylo_lif"})),
}

_STAGE_WORDS = {
    "nir": "a NIR graph as read", "normalized": "a normalized (flat) NIR graph",
    "discretized": "a discretized graph", "fused": "a fused hardware network",
    "unrolled": "an unrolled hardware network", "quantized": "a quantized hardware network",
    "speck_float": "the float Speck network of speck_lower",
}


def order_problem(names: list[str], neuron_model: str) -> tuple[int, str] | None:
    """(index, why) of the first pass of ``names`` that cannot run where it stands for
    ``neuron_model``, or None when the list can run and ends in a quantized network.
    A pass without a contract (a backend's own) makes the stage unknown: the check
    resumes being lenient after it."""
    claimed = set().union(*(c.models for c in CONTRACTS.values() if c.models))
    stage: str | None = FIRST_STAGE
    for i, name in enumerate(names):
        contract = CONTRACTS.get(name)
        if contract is None:
            stage = None
            continue
        serves = contract.models if contract.models is not None else None
        if serves is not None and neuron_model not in serves:
            return i, (f"pass {name!r} is for the {', '.join(sorted(serves))} neuron model, "
                       f"not {neuron_model!r}")
        if serves is None and contract.produces == LAST_STAGE and neuron_model in claimed:
            other = [n for n, c in CONTRACTS.items() if c.models and neuron_model in c.models
                     and c.produces == contract.produces]
            hint = f"; use {other[0]!r}" if other else ""
            return i, f"pass {name!r} does not serve the {neuron_model!r} neuron model{hint}"
        if stage is not None and contract.requires != stage:
            return i, (f"pass {name!r} needs {_STAGE_WORDS.get(contract.requires, contract.requires)}"
                       f", but gets {_STAGE_WORDS.get(stage, stage)} at this point in the list")
        stage = contract.produces
    if stage is not None and stage != LAST_STAGE:
        return len(names) - 1, (f"the passes end in {_STAGE_WORDS.get(stage, stage)}, not "
                                f"{_STAGE_WORDS[LAST_STAGE]}")
    return None


# Modules of nirc.passes that are not passes.
SUPPORT_MODULES = ("context", "registry")


def get_pass(name: str, file: str | None = None) -> Pass:
    try:
        return PASSES[name]
    except KeyError:
        raise TargetError(f"unknown pass '{name}' (known: {', '.join(PASSES)})",
                          file=file, field="passes") from None
