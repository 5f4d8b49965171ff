"""The passes by name, as target YAML files list them (``passes: [normalize, ...]``).

Explicit on purpose: a pass exists when it is listed here, and
tests/test_passes_normalize_fuse.py checks that every module of this package is.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def _serves(contract: Contract, neuron_model: str, claimed: set[str]) -> bool:
    if contract.models is not None:
        return neuron_model in contract.models
    return contract.produces != LAST_STAGE or neuron_model not in claimed


def chain_for(neuron_model: str) -> list[str]:
    """The shortest pass list that takes a NIR graph to a quantized network for
    ``neuron_model`` (what an error suggests), [] if none does."""
    claimed = set().union(*(c.models for c in CONTRACTS.values() if c.models))
    paths = {FIRST_STAGE: []}
    frontier = [FIRST_STAGE]
    while frontier:
        stage = frontier.pop(0)
        for name, contract in CONTRACTS.items():
            if contract.requires == stage and contract.produces not in paths \
                    and _serves(contract, neuron_model, claimed):
                paths[contract.produces] = paths[stage] + [name]
                frontier.append(contract.produces)
    return paths.get(LAST_STAGE, [])


def order_problem(names: list[str], neuron_model: str, complete: bool = False
                  ) -> tuple[int, str] | None:
    """(index, why) of the first pass of ``names`` that cannot run where it stands for
    ``neuron_model``, or None when each can; with ``complete``, also when the list does
    not end in a quantized network (`nirc targets check`; loading a target for a test or
    a partial pipeline allows a prefix, and compile refuses it in one line).
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
            chain = chain_for(neuron_model)
            hint = f"; the {neuron_model} model runs passes: [{', '.join(chain)}]" if chain else ""
            return i, f"pass {name!r} does not serve the {neuron_model!r} neuron model{hint}"
        if stage is not None and contract.requires != stage:
            return i, (f"pass {name!r} needs {_STAGE_WORDS.get(contract.requires, contract.requires)}"
                       f", but gets {_STAGE_WORDS.get(stage, stage)} at this point in the list")
        stage = contract.produces
    if complete and stage is not None and stage != LAST_STAGE:
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
