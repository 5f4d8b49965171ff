"""Recognising a NIR file's exporter from the parameter patterns it leaves.

Each exporter writes neuron parameters in its own recognisable way (read from
snnTorch 1.0, Norse 1.1, Sinabs 3.1 and Rockpool 3.1's exporters):

- snnTorch: LIF / CubaLIF with r = tau/1e-4 (tau = 1e-4/(1 - beta)), w_in = tau_syn/1e-4,
  v_leak = 0; weights Affine/Linear/Conv2d, AvgPool2d.
- Norse: LIF / CubaLIF / LI / IF with r = 1 and w_in = 1; tau = dt/tau_inv, i.e. dt * tau,
  tiny (1e-5 for tau = 10 ms at dt = 1e-3); weights Affine (zero bias added), Conv2d.
- Sinabs: IF / LIF / LI with r = 1, tau in steps (>= 1 in practice); SumPool2d, Conv1d.
- Rockpool: CubaLIF / LIF / LI with r = tau exp(-dt/tau)/dt for one dt shared by every
  neuron (recovered here with the Lambert W function), w_in = 1; weights Linear/Affine.

A file whose metadata carries "dt" is hand-written NIR (nirc's examples store it).
The cost is a few vector operations per neuron node: weights are never touched,
so detection stays a small part of reading a file (benchmarks/bench_nirio.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np

from nirc.convention import (DEFAULT_DT, PROFILES, SNNTORCH_DT, Convention, nir_convention,
                             profile_convention)
from nirc.ir.nodes import (NEURON_TYPES, Affine, AvgPool2d, Conv1d, Conv2d, CubaLI, CubaLIF,
                           Flatten, IF, Input, LI, LIF, Linear, NIRGraph, Output, SumPool2d)

# The node types each exporter writes besides its neurons (Input/Output always).
OTHER_NODES = {
    "snntorch": (Affine, Linear, Conv2d, AvgPool2d, Flatten),
    "norse": (Affine, Conv2d),
    "sinabs": (Affine, Conv1d, Conv2d, SumPool2d, Flatten),
    "rockpool": (Affine, Linear),
}
NEURONS = {
    "snntorch": (LIF, CubaLIF),
    "norse": (LIF, CubaLIF, LI, IF),
    "sinabs": (IF, LIF, LI),
    "rockpool": (LIF, CubaLIF, LI),
}
NAMES = {"snntorch": "snnTorch", "norse": "Norse", "sinabs": "Sinabs", "rockpool": "Rockpool"}
# Norse writes dt*tau (tiny), Sinabs tau in steps: a time constant below this is Norse's.
NORSE_SINABS_TAU_SPLIT = 1e-2
# Exported parameters are float32: patterns hold to this relative tolerance.
RTOL = 1e-4
# Keys of a file's metadata that may name the exporter.
METADATA_KEYS = ("exporter", "framework", "source", "generator", "producer")


@dataclass
class Match:
    """How well the file fits one exporter."""

    exporter: str
    fits: bool
    reason: str            # evidence when it fits, why not otherwise
    dt: float | None = None
    strength: int = 2      # 2: exact pattern; 1: fits, but a coincidence is possible


def _arr(value, default=None) -> np.ndarray | None:
    if value is None:
        return None if default is None else np.asarray(default, dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


def _close(a, b, rtol: float = RTOL) -> bool:
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    return bool(np.all(np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))))


def _taus(node) -> list[np.ndarray]:
    if isinstance(node, (LIF, LI)):
        return [_arr(node.tau)]
    if isinstance(node, (CubaLIF, CubaLI)):
        return [_arr(node.tau_mem), _arr(node.tau_syn)]
    return []


def _member_tau(node) -> np.ndarray | None:
    """The membrane time constant (the one r scales)."""
    if isinstance(node, (LIF, LI)):
        return _arr(node.tau)
    if isinstance(node, (CubaLIF, CubaLI)):
        return _arr(node.tau_mem)
    return None


def _w_in_is_one(node) -> bool:
    return not isinstance(node, (CubaLIF, CubaLI)) or _close(_arr(node.w_in, 1.0), 1.0, 1e-6)


def _leak_is_zero(node) -> bool:
    leak = getattr(node, "v_leak", None)
    return leak is None or not np.any(np.asarray(leak))


def _round_dt(dt: float) -> float:
    """dt snapped to 3 significant digits when that is within float32 noise of it."""
    snapped = float(f"{dt:.3g}")
    return snapped if abs(snapped - dt) <= RTOL * dt else dt


def _is_round(dt: float) -> bool:
    return float(f"{dt:.2g}") == dt


def _rockpool_dt(tau: np.ndarray, r: np.ndarray) -> np.ndarray | None:
    """dt solving r = tau exp(-dt/tau)/dt per element: dt = tau W(1/r) (principal branch)."""
    from scipy.special import lambertw

    if np.any(r <= 0) or np.any(~np.isfinite(tau)):
        return None
    return tau * np.real(lambertw(1.0 / r))


def _match(exporter: str, neurons: dict, others: dict) -> Match:
    """Does every node of the file fit ``exporter``'s export pattern?"""
    name = NAMES[exporter]
    foreign = [(n, type(v).nir_type) for n, v in others.items()
               if not isinstance(v, OTHER_NODES[exporter])]
    if foreign:
        return Match(exporter, False, f"{name} does not export {foreign[0][1]} (node "
                                      f"'{foreign[0][0]}')")
    wrong = [(n, v.nir_type) for n, v in neurons.items() if not isinstance(v, NEURONS[exporter])]
    if wrong:
        return Match(exporter, False, f"{name} does not export {wrong[0][1]} neurons (node "
                                      f"'{wrong[0][0]}')")
    count = f"{len(neurons)} of {len(neurons)} neuron node{'s' if len(neurons) > 1 else ''}"
    if exporter == "snntorch":
        for n, v in neurons.items():
            ok = _close(_arr(v.r) * SNNTORCH_DT, _member_tau(v)) and _leak_is_zero(v)
            if isinstance(v, CubaLIF):
                ok = ok and _close(_arr(v.w_in, 1.0) * SNNTORCH_DT, _arr(v.tau_syn))
            if not ok:
                return Match(exporter, False, f"node '{n}': r is not tau/1e-4")
        what = "r = tau/1e-4" + (", w_in = tau_syn/1e-4" if any(
            isinstance(v, CubaLIF) for v in neurons.values()) else "")
        return Match(exporter, True, f"{what} on {count}")
    if exporter in ("norse", "sinabs"):
        for n, v in neurons.items():
            if not (_close(_arr(v.r), 1.0, 1e-6) and _w_in_is_one(v)):
                return Match(exporter, False, f"node '{n}': r is not 1")
        taus = [t for v in neurons.values() for t in _taus(v)]
        if taus:
            low, high = min(float(t.min()) for t in taus), max(float(t.max()) for t in taus)
            if exporter == "norse" and high >= NORSE_SINABS_TAU_SPLIT:
                return Match(exporter, False, f"time constants up to {high:g} are too long "
                                              f"for Norse's dt * tau")
            if exporter == "sinabs" and low < NORSE_SINABS_TAU_SPLIT:
                return Match(exporter, False, f"time constants down to {low:g} steps are too "
                                              f"short for Sinabs")
            span = f"tau {low:g}" + (f"..{high:g}" if high != low else "")
            what = (f"r = 1 and {span} (dt * tau)" if exporter == "norse"
                    else f"r = 1 and {span} (time steps)")
            return Match(exporter, True, f"{what} on {count}")
        # IF only: Norse and Sinabs write the same; the other nodes may tell them apart.
        return Match(exporter, True, f"IF with r = 1 on {count}", strength=1)
    # rockpool
    dts = []
    for n, v in neurons.items():
        if not (_w_in_is_one(v) and _leak_is_zero(v)):
            return Match(exporter, False, f"node '{n}': w_in or v_leak is not Rockpool's")
        found = _rockpool_dt(_member_tau(v), _arr(v.r))
        if found is None:
            return Match(exporter, False, f"node '{n}': r is not tau exp(-dt/tau)/dt")
        dts.append(found)
    every = np.concatenate([d.ravel() for d in dts])
    if not _close(every, every[0], 1e-3):
        return Match(exporter, False, "r = tau exp(-dt/tau)/dt gives a different dt per "
                                      f"neuron ({every.min():g}..{every.max():g} s)")
    dt = _round_dt(float(np.median(every)))
    if not _is_round(dt):
        # Any single (tau, r) pair solves for some dt; a real export's dt is a round number.
        return Match(exporter, False, f"r = tau exp(-dt/tau)/dt only for dt = {dt:.4g} s, not "
                                      f"a step anyone trains with (--from rockpool --dt DT "
                                      f"if it is one)")
    all_r_one = all(_close(_arr(v.r), 1.0, 1e-6) for v in neurons.values())
    return Match(exporter, True, f"r = tau exp(-dt/tau)/dt with one dt = {dt:g} s on {count}",
                 dt=dt, strength=1 if all_r_one else 2)


def _metadata_exporter(metadata) -> str | None:
    for key in METADATA_KEYS:
        value = str(metadata.get(key, "")).lower()
        for exporter in NAMES:
            if exporter in value:
                return exporter
    return None


def detect_exporter(graph: NIRGraph, notes: tuple[str, ...] = (),
                    default_dt: float = DEFAULT_DT, only: str | None = None) -> Convention:
    """See nirc.convention.detect."""
    from nirc.ir.graph import flatten

    metadata = dict(graph.metadata or {})
    named = _metadata_exporter(metadata)
    if "dt" in metadata and only is None:
        said = f" and names {NAMES[named]}" if named else ""
        base = nir_convention(graph, evidence=(
            f"the file's metadata gives dt = {metadata['dt']}{said}: it states its own time "
            f"step, so nirc reads it with NIR's rules (--from names an exporter's rules "
            f"instead)",), default_dt=default_dt)
        base = replace(base, sources=tuple((n, "file" if n == "exporter" else v)
                                           for n, v in base.sources))
        return _with_metadata_rules(base, metadata)
    if named and (only is None or only == named):
        return _with_metadata_rules(profile_convention(
            named, "file", evidence=(f"the file's metadata names {NAMES[named]}",)), metadata)
    flat = flatten(graph)
    neurons = {n: v for n, v in flat.nodes.items() if isinstance(v, NEURON_TYPES)}
    others = {n: v for n, v in flat.nodes.items()
              if not isinstance(v, (*NEURON_TYPES, Input, Output))}
    if not neurons:
        return nir_convention(graph, exporter="unknown", evidence=(
            "no neuron nodes: nothing shows an exporter's convention; NIR semantics",),
            default_dt=default_dt)
    exporters = [only] if only else list(NAMES)
    matches = [_match(e, neurons, others) for e in exporters]
    fitting = [m for m in matches if m.fits]
    if not fitting:
        reasons = "; ".join(f"not {NAMES[m.exporter]}: {m.reason}" for m in matches)
        return nir_convention(graph, exporter="unknown", evidence=(
            f"no exporter's pattern fits ({reasons}); NIR semantics, and no metadata 'dt'",),
            default_dt=default_dt)
    best = max(s.strength for s in fitting)
    strong = [m for m in fitting if m.strength == best]
    chosen = _prefer(strong, others, notes)
    candidates = tuple(m.exporter for m in strong)
    article = "an" if chosen.exporter == "snntorch" else "a"
    evidence = [f"looks like {article} {NAMES[chosen.exporter]} {PROFILES[chosen.exporter].version} "
                f"export: {chosen.reason}"]
    if chosen.dt is None:
        evidence.append(f"{PROFILES[chosen.exporter].dt_note}; assuming dt = "
                        f"{PROFILES[chosen.exporter].dt:g} s")
    else:
        evidence.append(f"dt = {chosen.dt:g} s read from r and tau")
    if len(candidates) > 1:
        others_named = ", ".join(NAMES[c] for c in candidates if c != chosen.exporter)
        flags = " or ".join(f"--from {c}" for c in
                            (chosen.exporter, *[c for c in candidates if c != chosen.exporter]))
        evidence.append(f"ambiguous: the file fits {others_named} as well; {flags} "
                        f"settles it")
    return profile_convention(chosen.exporter, "detection", evidence=evidence, dt=chosen.dt,
                              dt_source="detection", candidates=candidates)


def _prefer(matches: list[Match], others: dict, notes: Iterable[str]) -> Match:
    """Among equally good fits, the exporter whose other nodes say most about it."""
    if len(matches) == 1:
        return matches[0]

    def telling(m: Match) -> int:
        # Node types only this exporter writes among the candidates.
        own = OTHER_NODES[m.exporter]
        rivals = [OTHER_NODES[o.exporter] for o in matches if o is not m]
        return sum(1 for v in others.values()
                   if isinstance(v, own) and not any(isinstance(v, r) for r in rivals))

    def biases(m: Match) -> int:
        # IF-only files read the same from Norse and Sinabs. Speck-bound Sinabs networks
        # are built without biases; Norse's exporter keeps torch.nn.Linear's (on by default).
        with_bias = any(isinstance(v, Affine) and np.any(np.asarray(v.bias))
                        for v in others.values())
        return int(with_bias == (m.exporter == "norse"))

    order = {"sinabs": 0, "norse": 1, "snntorch": 2, "rockpool": 3}
    return max(matches, key=lambda m: (telling(m), biases(m), -order[m.exporter]))


# Metadata entries a file may carry to state its rules (as the --reset/--spikes/... options).
METADATA_RULES = ("reset", "reset_delay", "spikes", "max_spikes", "threshold_test", "v_min")


def _with_metadata_rules(convention: Convention, metadata) -> Convention:
    """``convention`` with the dt and rules the file's metadata states (source 'file')."""
    from nirc.convention import _metadata_dt
    from nirc.errors import ModelError, NircError

    changes = {}
    if "dt" in metadata:
        changes["dt"] = _metadata_dt(metadata["dt"])
    for key in METADATA_RULES:
        if key not in metadata:
            continue
        value = metadata[key]
        if isinstance(value, np.ndarray):
            value = value.item() if value.size == 1 else value.tolist()
        if key == "reset_delay":
            value = bool(value) if not isinstance(value, str) else value.lower() == "true"
        elif key == "max_spikes":
            value = int(value)
        elif key == "v_min":
            value = float(value)
        elif not isinstance(value, str):
            value = str(value)
        changes[key] = value
    if not changes:
        return convention
    sources = tuple((n, "file" if n in changes else s) for n, s in convention.sources)
    try:
        return replace(convention, **changes, sources=sources)
    except NircError as err:
        raise ModelError(f"{err.message} (the file's metadata)", field=err.field) from None
    except (TypeError, ValueError) as err:
        raise ModelError(f"the file's metadata states rules nirc cannot read ({err})",
                         field="metadata") from None
