"""FitError messages: which resource, which layer, how much is needed and available, what to change."""

from __future__ import annotations

from nirc.errors import FitError
from nirc.target import unit_of

ADVICE = {
    "neurons": "use fewer neurons per layer, or a chip with more cores",
    "synapses": "use sparser weights (prune), or a chip with more cores",
    "synapse_memory_bits": "use sparser weights (prune) or fewer weight bits, or a chip with more cores",
    "fan_in_axons": "give each neuron fewer inputs (sparser weights, smaller kernels, fewer input "
                    "channels), or a chip with larger cores",
    "fan_out_axons": "give each neuron fewer targets (sparser weights, fewer target layers), "
                     "or a chip with larger cores",
    "routing_entries": "use fewer, larger layers (each layer sends from every core it spans), "
                       "or a chip with a larger routing table",
    "neuron_profiles": "use fewer layers with distinct neuron parameters (each layer needs its own "
                       "profiles), or a chip with more cores",
}


def layer_name(population: str, provenance: tuple[str, ...] = ()) -> str:
    nodes = [p for p in provenance if p != population]
    return f"layer '{population}'" + (f" (NIR nodes {', '.join(provenance)})" if nodes else "")


def neuron_too_big(resource: str, population: str, provenance: tuple[str, ...], demand: int,
                   capacity: int, target: str) -> FitError:
    unit = unit_of(resource)
    return FitError(f"{layer_name(population, provenance)}: one neuron needs {demand} {unit} of "
                    f"'{resource}' but a core of {target} has {capacity}; {ADVICE[resource]}")


def too_few_cores(resource: str, demand: int, capacity: int, cores: int, target: str,
                  largest: tuple[str, tuple[str, ...], int] | None) -> FitError:
    unit = unit_of(resource)
    where = ""
    if largest is not None:
        name, provenance, amount = largest
        where = f"; the largest demand is {layer_name(name, provenance)} with {amount} {unit}"
    return FitError(f"the network needs at least {demand} {unit} of '{resource}' but the {cores} "
                    f"cores of {target} have {capacity}{where}; {ADVICE[resource]}")


def no_placement(resource: str, population: str, provenance: tuple[str, ...], demand: int,
                 capacity: int, cores: int, target: str, time_limit_s: float | None) -> FitError:
    """No assignment found: by CP-SAT within its budget, or (time_limit_s None) by the sequential fill."""
    unit = unit_of(resource)
    how = (f"found within {time_limit_s:g} s" if time_limit_s is not None
           else "found by the sequential fill")
    remedy = (", or raise partitioner.time_limit_s" if time_limit_s is not None
              else ", or use the CP-SAT placement (method 'cpsat', the default)")
    return FitError(f"no placement on the {cores} cores of {target} {how}: "
                    f"placing {layer_name(population, provenance)} needs {demand} {unit} of "
                    f"'{resource}' on a core that has {capacity}; {ADVICE[resource]}{remedy}")


def chip_overflow(resource: str, demand: int, capacity: int, target: str, cores: int,
                  largest: tuple[str, tuple[str, ...], int] | None = None) -> FitError:
    unit = unit_of(resource)
    where = ""
    if largest is not None:
        name, provenance, amount = largest
        where = (f"; the largest demand is {layer_name(name, provenance)} with {amount} {unit} "
                 f"({100 * amount / max(demand, 1):.0f}%)")
    return FitError(f"the placement on {cores} cores needs {demand} {unit} of '{resource}' but "
                    f"{target} has {capacity} for the whole chip{where}; {ADVICE[resource]}",
                    cause="size")
