"""Where a NIR file came from and the conventions it was trained under: one record.

NIR carries no time step, no reset rule and no spike rule, and each exporter
writes time constants under its own convention (docs/semantics.md has the
table). ``detect(graph)`` recognises the exporter from the parameter patterns
it leaves (snnTorch r = tau/1e-4, Norse r = 1 with tau = dt*tau, Sinabs tau in
steps, Rockpool r = tau exp(-dt/tau)/dt, hand-written files with metadata
"dt") and returns a Convention: the dt, discretisation, reset, spike and
threshold rules and input scaling under which the float reference reproduces
the framework's own forward pass. ``with_options`` lays the command line's
explicit choices over it. Every field records where it came from
(file / detection / option / default) and the record carries the evidence.

The record is consumed by the simulator (nirc.simulate), the passes
(PassContext.convention), report.json and ``nirc inspect``; its field names
are a contract (docs/DESIGN.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

import numpy as np

from nirc.errors import NircError

EXPORTERS = ("snntorch", "norse", "sinabs", "rockpool", "nir", "unknown")
# What --from accepts: 'auto' detects; 'nir' means the file's own (NIR) semantics.
FROM_CHOICES = ("auto", "nir", "snntorch", "sinabs", "norse", "rockpool")
DISCRETISATIONS = ("euler", "exact")
RESETS = ("zero", "subtract")
SPIKE_RULES = ("single", "multi")
THRESHOLD_TESTS = (">", ">=")
SOURCES = ("file", "detection", "option", "default")
# How a neuron's input enters its first state (per NIR node type, see input_rule()):
#   nir      - NIR's equations discretised (Euler: dt/tau * r * x; exact: (1 - e^-dt/tau) r x)
#   unscaled - added as r*x (w_in*x for a Cuba current) with no dt/tau factor
#   rockpool - Rockpool's order: a current decays after the input is added, i = e^-dt/tau (i + x),
#              a membrane adds current or input with gain r*dt*e^(dt/tau)/tau (1 for its exports)
INPUT_RULES = ("nir", "unscaled", "rockpool")
# The fields a source is recorded for.
RULE_FIELDS = ("dt", "discretisation", "reset", "reset_delay", "spikes", "max_spikes",
               "threshold_test", "v_min", "input_scaling")

# The dt nirc assumes when neither the file nor the user says (Norse's and Rockpool's
# export default); equal to nirc.simulate.DEFAULT_DT.
DEFAULT_DT = 1e-3
# Time steps outside this range are refused: they only arise from typos (1e300, 1e-300)
# and overflow the discretised constants into Inf/NaN.
DT_RANGE = (1e-12, 1e3)
SNNTORCH_DT = 1e-4            # hard-coded in snnTorch 1.0's exporter
NORSE_EXPORT_DT = 1e-3        # norse.torch.utils.export_nir.to_nir's default dt
ROCKPOOL_MAX_SPIKES = 2 ** 16  # LIFTorch's default max_spikes_per_dt


@dataclass(frozen=True)
class Convention:
    """How to run a NIR file so that it computes what its framework computed.

    exporter: 'snntorch' | 'norse' | 'sinabs' | 'rockpool' | 'nir' (NIR semantics, e.g. a
      hand-written file with metadata dt) | 'unknown' (NIR semantics, nothing recognised).
    dt: seconds per step. discretisation: 'euler' | 'exact'.
    reset: 'zero' (v = v_reset, NIR's rule) | 'subtract' (v -= v_threshold per spike).
    reset_delay: the reset is applied one step late, from the stored membrane (snnTorch's
      default): the membrane a spike is read from is not reset in that step.
    spikes: 'single' (0/1 per step) | 'multi' (a count per step); max_spikes bounds the
      count (None: unbounded; 1 for 'single').
    threshold_test: '>' (NIR, snnTorch, Norse) | '>=' (Sinabs, Rockpool).
    v_min: membrane floor applied after the reset each step (Sinabs' min_v_mem), or None.
    input_scaling: (NIR node type, rule) pairs whose input does not follow NIR's equations
      (rules in INPUT_RULES; types not listed follow 'nir').
    sources: (field, 'file' | 'detection' | 'option' | 'default') for every RULE_FIELDS entry.
    evidence: sentences saying what was recognised and assumed. candidates: exporters that
      fit the file equally well (ambiguous when more than one).
    """

    exporter: str = "nir"
    dt: float = DEFAULT_DT
    discretisation: str = "euler"
    reset: str = "zero"
    reset_delay: bool = False
    spikes: str = "single"
    max_spikes: int | None = 1
    threshold_test: str = ">"
    v_min: float | None = None
    input_scaling: tuple[tuple[str, str], ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    evidence: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()
    exporter_version: str = ""

    def __post_init__(self):
        checks = (("exporter", EXPORTERS), ("discretisation", DISCRETISATIONS),
                  ("reset", RESETS), ("spikes", SPIKE_RULES),
                  ("threshold_test", THRESHOLD_TESTS))
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise NircError(f"{name} must be one of {', '.join(allowed)}, got "
                                f"{getattr(self, name)!r}", field=name)
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise NircError(f"dt must be a positive number of seconds, got {self.dt!r}",
                            field="dt")
        if not DT_RANGE[0] <= self.dt <= DT_RANGE[1]:
            raise NircError(f"dt must be between {DT_RANGE[0]:g} and {DT_RANGE[1]:g} s, got "
                            f"{self.dt:g} ({self.source('dt')})", field="dt")
        for node_type, rule in self.input_scaling:
            if rule not in INPUT_RULES:
                raise NircError(f"input scaling of {node_type} must be one of "
                                f"{', '.join(INPUT_RULES)}, got {rule!r}", field="input_scaling")
        if self.max_spikes is not None and self.max_spikes < 1:
            raise NircError(f"max_spikes must be >= 1, got {self.max_spikes}",
                            field="max_spikes")

    # --- reading ----------------------------------------------------------------------

    def source(self, name: str) -> str:
        """Where field ``name`` came from: 'file', 'detection', 'option' or 'default'."""
        return dict(self.sources).get(name, "default")

    def input_rule(self, node_type: str) -> str:
        """How a node of NIR type ``node_type`` takes its input (one of INPUT_RULES)."""
        return dict(self.input_scaling).get(node_type, "nir")

    @property
    def spike_limit(self) -> int | None:
        """Most spikes one neuron emits per step (1 for single-spike, None: unbounded)."""
        return 1 if self.spikes == "single" else self.max_spikes

    @property
    def is_nir(self) -> bool:
        """True when every rule is NIR's own (only dt may differ)."""
        return (self.reset == "zero" and not self.reset_delay and self.spikes == "single"
                and self.threshold_test == ">" and self.v_min is None
                and all(rule == "nir" for _, rule in self.input_scaling))

    def rules(self) -> str:
        """The rules in one phrase: 'dt = 0.0001 s, euler, subtract reset one step late, ...'."""
        reset = {"zero": "reset to v_reset", "subtract": "subtract reset"}[self.reset]
        if self.reset_delay:
            reset += " one step late"
        spikes = "one spike per step" if self.spikes == "single" else (
            "several spikes per step" + (f" (at most {self.max_spikes})"
                                         if self.max_spikes else ""))
        parts = [f"dt = {self.dt:g} s", self.discretisation, reset, spikes,
                 f"spike when v {self.threshold_test} threshold"]
        if self.v_min is not None:
            parts.append(f"membrane floor {self.v_min:g}")
        unscaled = [f"{t} input {rule}" for t, rule in self.input_scaling if rule != "nir"]
        return ", ".join(parts + unscaled)

    def describe(self) -> str:
        """One line for a user: the exporter recognised and what nirc assumes."""
        who = {"snntorch": "an snnTorch", "norse": "a Norse", "sinabs": "a Sinabs",
               "rockpool": "a Rockpool"}.get(self.exporter)
        if who:
            version = f" {self.exporter_version}" if self.exporter_version else ""
            how = "stated by --from" if self.source("exporter") == "option" else "looks like"
            head = f"{how} {who}{version} export" if how == "looks like" else \
                f"{who}{version} export ({how})"
        elif self.exporter == "nir":
            head = "NIR semantics"
        else:
            head = "exporter unknown, NIR semantics"
        return f"{head}; assuming {self.rules()}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, its source, the evidence (report.json, inspect --json)."""
        return {
            "exporter": self.exporter,
            "exporter_version": self.exporter_version,
            "dt": self.dt,
            "discretisation": self.discretisation,
            "reset": self.reset,
            "reset_delay": self.reset_delay,
            "spikes": self.spikes,
            "max_spikes": self.spike_limit,
            "threshold_test": self.threshold_test,
            "v_min": self.v_min,
            "input_scaling": {t: rule for t, rule in self.input_scaling},
            "sources": {name: self.source(name) for name in ("exporter", *RULE_FIELDS)},
            "evidence": list(self.evidence),
            "candidates": list(self.candidates),
            "summary": self.describe(),
        }


# --- exporter profiles -------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """The conventions one exporter's files are trained under (dt may be found in the file)."""

    version: str
    dt: float
    discretisation: str = "euler"
    reset: str = "zero"
    reset_delay: bool = False
    spikes: str = "single"
    max_spikes: int | None = 1
    threshold_test: str = ">"
    input_scaling: tuple[tuple[str, str], ...] = ()
    dt_note: str = ""


PROFILES: dict[str, Profile] = {
    # snnTorch 1.0: v = beta v + x is NIR Euler at dt = 1e-4 with its r = tau/1e-4; the
    # default reset subtracts the threshold one step late; spikes at v > threshold.
    "snntorch": Profile("1.0", SNNTORCH_DT, reset="subtract", reset_delay=True,
                        dt_note="snnTorch's exporter writes tau = 1e-4/(1 - beta)"),
    # Norse 1.1 writes tau = dt/tau_inv (dt * tau): its own Euler step is NIR Euler at
    # dt**2; IAF adds its input unscaled, LIFCell's current jumps by the input unscaled.
    "norse": Profile("1.1", NORSE_EXPORT_DT ** 2,
                     input_scaling=(("IF", "unscaled"), ("CubaLIF", "unscaled")),
                     dt_note="Norse writes tau = dt * tau with its export dt (1e-3 by "
                             "default), so its Euler step is NIR's at dt**2"),
    # Sinabs 3.1: discrete time (tau in steps), LIF normalises its input (exact at dt = 1),
    # ExpLeak does not; default MultiSpike with MembraneSubtract; fires at v >= threshold.
    "sinabs": Profile("3.1", 1.0, discretisation="exact", reset="subtract", spikes="multi",
                      max_spikes=None, threshold_test=">=",
                      input_scaling=(("LI", "unscaled"),),
                      dt_note="Sinabs writes time constants in steps"),
    # Rockpool 3.1 LIFTorch: exact decays, subtractive reset, several spikes per step (at most
    # 2**16), fires at v >= threshold; its own order of input, decay and integration.
    "rockpool": Profile("3.1", DEFAULT_DT, discretisation="exact", reset="subtract",
                        spikes="multi", max_spikes=ROCKPOOL_MAX_SPIKES, threshold_test=">=",
                        input_scaling=(("LIF", "rockpool"), ("LI", "rockpool"),
                                       ("CubaLIF", "rockpool"), ("CubaLI", "rockpool")),
                        dt_note="Rockpool writes r = tau exp(-dt/tau)/dt"),
}


def nir_convention(graph=None, exporter: str = "nir", evidence: Iterable[str] = (),
                   candidates: Iterable[str] = (), default_dt: float = DEFAULT_DT) -> Convention:
    """NIR's own semantics; dt from the file's metadata when it has one, else ``default_dt``."""
    dt, dt_source = default_dt, "default"
    metadata = getattr(graph, "metadata", None) or {}
    if "dt" in metadata:
        dt, dt_source = _metadata_dt(metadata["dt"]), "file"
    sources = tuple((name, dt_source if name == "dt" else "default") for name in RULE_FIELDS)
    return Convention(exporter=exporter, dt=dt, sources=(("exporter", "detection"), *sources),
                      evidence=tuple(evidence), candidates=tuple(candidates))


def profile_convention(exporter: str, source: str, evidence: Iterable[str] = (),
                       dt: float | None = None, dt_source: str | None = None,
                       candidates: Iterable[str] = ()) -> Convention:
    """The convention of ``exporter``'s files; every rule attributed to ``source``."""
    p = PROFILES[exporter]
    sources = [(name, source) for name in RULE_FIELDS if name != "v_min"]
    sources.append(("v_min", "default"))
    if dt is not None:
        sources = [(n, dt_source or source) if n == "dt" else (n, s) for n, s in sources]
    return Convention(exporter=exporter, exporter_version=p.version,
                      dt=p.dt if dt is None else dt, discretisation=p.discretisation,
                      reset=p.reset, reset_delay=p.reset_delay, spikes=p.spikes,
                      max_spikes=p.max_spikes, threshold_test=p.threshold_test,
                      input_scaling=p.input_scaling,
                      sources=(("exporter", source), *sources), evidence=tuple(evidence),
                      candidates=tuple(candidates))


def _metadata_dt(value: Any) -> float:
    try:
        dt = float(np.asarray(value).reshape(()))
    except (TypeError, ValueError):
        raise NircError(f"dt must be a number of seconds, got {value!r} (the file's metadata "
                        f"'dt')", field="dt") from None
    if not math.isfinite(dt) or dt <= 0:
        raise NircError(f"dt must be a positive number of seconds, got {dt:g} (the file's "
                        f"metadata 'dt')", field="dt")
    return dt


# --- overrides -------------------------------------------------------------------------


def with_options(convention: Convention, *, dt: float | None = None,
                 discretisation: str | None = None, reset: str | None = None,
                 spikes: str | None = None, v_min: float | None = None,
                 max_spikes: int | None = None, reset_delay: bool | None = None,
                 input_scaling: Mapping[str, str] | None = None) -> Convention:
    """``convention`` with the user's explicit choices laid over it (source 'option').

    None leaves a field as it is. A reset rule keeps the reset timing (snnTorch delays
    both of its mechanisms by default; ``reset_delay`` changes that); choosing 'multi'
    spikes without max_spikes makes the count unbounded.
    """
    changes: dict[str, Any] = {}
    if dt is not None:
        changes["dt"] = float(dt)
    if discretisation is not None:
        changes["discretisation"] = discretisation
    if reset is not None:
        changes["reset"] = reset
    if reset_delay is not None:
        changes["reset_delay"] = bool(reset_delay)
    if spikes is not None:
        changes["spikes"] = spikes
        if max_spikes is None and spikes != convention.spikes:
            changes["max_spikes"] = 1 if spikes == "single" else None
    if max_spikes is not None:
        changes["max_spikes"] = int(max_spikes)
    if v_min is not None:
        if not math.isfinite(v_min):
            raise NircError(f"--v-min must be a finite number, got {v_min:g}", field="v_min")
        changes["v_min"] = float(v_min)
    if input_scaling is not None:
        changes["input_scaling"] = tuple(sorted(input_scaling.items()))
    if not changes:
        return convention
    sources = dict(convention.sources)
    for name in changes:
        sources[name] = "option"
    return replace(convention, **changes,
                   sources=tuple((n, sources.get(n, "default")) for n in ("exporter", *RULE_FIELDS)))


def resolve(graph, exporter: str = "auto", *, dt: float | None = None,
            method: str | None = None, reset: str | None = None, spikes: str | None = None,
            v_min: float | None = None, reset_delay: bool | None = None,
            max_spikes: int | None = None, input_scaling: str | None = None,
            default_dt: float = DEFAULT_DT, notes: Iterable[str] = ()) -> Convention:
    """The convention to run ``graph`` under: detected (``exporter='auto'``) or named by
    --from, then the explicit options laid over it (``dt`` is the last word on dt).
    ``input_scaling``: 'nir' (every neuron as NIR's equations) or 'unscaled' (every neuron
    adds its input without the dt/tau factor, as Sinabs' norm_input=False)."""
    if exporter not in FROM_CHOICES:
        raise NircError(f"--from must be one of {', '.join(FROM_CHOICES)}, got '{exporter}'",
                        field="from")
    if exporter == "auto":
        base = detect(graph, notes=notes, default_dt=default_dt)
    elif exporter == "nir":
        found = detect(graph, notes=notes, default_dt=default_dt)
        looks = (f"; the file looks like {found.exporter} (--from {found.exporter})",) \
            if found.exporter in PROFILES else ()
        base = nir_convention(graph, evidence=("--from nir: NIR semantics as the file states "
                                               "them" + "".join(looks),),
                              candidates=(found.exporter,) if looks else (),
                              default_dt=default_dt)
        base = replace(base, sources=tuple((n, "option" if n == "exporter" else s)
                                           for n, s in base.sources))
    else:
        found = detect(graph, notes=notes, default_dt=default_dt, only=exporter)
        base = found if found.exporter == exporter else profile_convention(
            exporter, "option", evidence=(f"--from {exporter}: {PROFILES[exporter].dt_note}; "
                                          f"the file does not show the pattern itself",))
        base = replace(base, sources=tuple((n, "option" if n == "exporter" else s)
                                           for n, s in base.sources))
    scaling = None
    if input_scaling is not None:
        if input_scaling not in ("nir", "unscaled"):
            raise NircError(f"--input-scaling must be nir or unscaled, got '{input_scaling}'",
                            field="input_scaling")
        scaling = {} if input_scaling == "nir" else {
            t: "unscaled" for t in ("I", "IF", "LI", "LIF", "CubaLI", "CubaLIF")}
    return with_options(base, dt=dt, discretisation=method, reset=reset, spikes=spikes,
                        v_min=v_min, reset_delay=reset_delay, max_spikes=max_spikes,
                        input_scaling=scaling)


# --- detection -------------------------------------------------------------------------


def detect(graph, notes: Iterable[str] = (), default_dt: float = DEFAULT_DT,
           only: str | None = None) -> Convention:
    """Recognise the exporter of ``graph`` (a NIRGraph as read) from its parameters.

    ``notes``: the warnings reading the file raised (exporter quirks), used as extra
    evidence. ``only``: test that exporter's pattern alone (for --from). Never raises for
    an unrecognised file: the result is then exporter 'unknown' (NIR semantics) with the
    reason in its evidence.
    """
    from nirc.provenance import detect_exporter

    return detect_exporter(graph, notes=tuple(notes), default_dt=default_dt, only=only)


__all__ = ["Convention", "Profile", "PROFILES", "EXPORTERS", "FROM_CHOICES", "RESETS",
           "SPIKE_RULES", "THRESHOLD_TESTS", "DISCRETISATIONS", "INPUT_RULES", "SOURCES",
           "RULE_FIELDS", "DEFAULT_DT", "detect", "resolve", "with_options",
           "nir_convention", "profile_convention"]
