"""The compiler driver: NIR file -> passes -> placement -> deployment config on disk.

``compile(model, target, out_dir)`` reads the model, runs the target's passes
(a plain list of names from its YAML, looked up in nirc.passes.registry),
places the hardware network with nirc.partition, and writes config.json,
arrays.npz and report.json atomically (nirc.emitter), plus timings.json —
the only file that differs between two runs of the same compile. Each stage
is timed and logged; ``dump_after`` writes the stage after a named pass.
"""

from __future__ import annotations

import gc
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from nirc import __version__
from nirc.convention import Convention
from nirc.emitter import build_config, dumps, write_atomically, write_build
from nirc.errors import NircError
from nirc.hwnet import HardwareNetwork
from nirc.ir.nodes import NIRGraph
from nirc.neuron_models import get_model
from nirc.passes.context import PassContext
from nirc.passes.registry import get_pass
from nirc.placement import Placement
from nirc.simulate.engine import resolve_dt
from nirc.simulate.neurons import METHODS
from nirc.target import TARGET_PACKAGE

log = logging.getLogger("nirc.driver")

TIMINGS_NAME = "timings.json"
@contextmanager
def _fewer_full_collections() -> Iterator[None]:
    """Python's cyclic collector runs its full pass (over every object the process holds)
    after 1000 passes over the younger objects instead of 10, until the block ends. A compile
    keeps its graphs and networks alive from pass to pass, so those full passes found little
    to free: on a 10^5-node chain they walked millions of objects some 35 times, a twelfth of
    the CPU time. Young cycles are still collected as usual."""
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, max(full, 1000))
    try:
        yield
    finally:
        gc.set_threshold(young, middle, full)


# Where report.json's dt_source says dt came from: the option, the file, the target.
DT_SOURCES = ("command line", "model metadata", "target default")
GRANULARITIES = ("layer", "channel")


@dataclass
class CompileResult:
    """What a compilation produced (the files are in ``out_dir``)."""

    out_dir: Path | None
    graph: NIRGraph
    network: HardwareNetwork
    placement: Placement | None
    report: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    convention: Convention | None = None     # the rules the model was compiled under


class _Stopwatch:
    def __init__(self):
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        # extra: nirc.progress shows the running stage on a terminal.
        log.debug("%-12s ...", name, extra={"stage": name, "seconds": None})
        yield
        self.timings[name] = time.perf_counter() - start
        log.info("%-12s %.3f s", name, self.timings[name],
                 extra={"stage": name, "seconds": self.timings[name]})


def random_spike_input(graph: NIRGraph, steps: int, seed: int = 0, rate: float = 0.2,
                       batch: int | None = None) -> dict[str, np.ndarray]:
    """Seeded Bernoulli spike trains for every Input node: (T, *shape) or (T, B, *shape)."""
    from nirc.ir.graph import flatten, infer_shapes

    shapes = infer_shapes(flatten(graph))
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(graph.inputs()):
        shape = tuple(shapes[name].output)
        lead = (steps,) if batch is None else (steps, batch)
        out[name] = (rng.random((*lead, *shape)) < rate).astype(np.float64)
    return out


def spike_rates(graph: NIRGraph, dt: float, method: str, steps: int, seed: int,
                convention: Convention | None = None) -> dict[str, np.ndarray]:
    """Spikes per step of every spiking node in the float simulation of random input."""
    from nirc.simulate import simulate

    result = simulate(graph, random_spike_input(graph, steps, seed), dt=dt, method=method,
                      convention=convention)
    return {name: s.reshape(s.shape[0], -1).mean(axis=0) for name, s in result.spikes.items()}


def run_passes(graph: NIRGraph, names: list[str], ctx: PassContext, watch: _Stopwatch | None = None,
               dump_after: str | None = None, dump_dir: Path | None = None):
    """Run the named passes in order; returns the last stage."""
    from nirc.dump import dump_stage

    if dump_after is not None and dump_after not in names:
        raise NircError(f"--dump-after {dump_after}: not one of this target's passes "
                        f"({', '.join(names)})", field="dump_after")
    stage: Any = graph
    watch = watch or _Stopwatch()
    for name in names:
        fn = get_pass(name)
        with watch.stage(name):
            before = stage
            try:
                stage = fn(stage, ctx)
            except NircError as err:
                from nirc.hints import refine

                refined = refine(err, ctx.convention)
                # A message naming a node is about the model: say which file it is in.
                if refined.node and not refined.file and ctx.file:
                    raise refined.at(file=ctx.file) from None
                if refined is not err:
                    raise refined from None
                raise
            if isinstance(before, HardwareNetwork) and not before.quantized and \
                    isinstance(stage, HardwareNetwork) and stage.quantized:
                ctx.report["float_network"] = before     # popped by compile: not JSON
        if name == dump_after and dump_dir is not None:
            for path in dump_stage(stage, dump_dir, f"after-{name}"):
                log.info("wrote %s", path)
    return stage


def compile(model: str | Path | NIRGraph, target: Any, out_dir: str | Path | None,
            dt: float | None = None, method: str | None = None, granularity: str = "layer",
            dump_after: str | None = None, calibration_steps: int = 50, seed: int = 0,
            partition_method: str | None = None,
            convention: Convention | Mapping[str, Any] | None = None,
            calibration: str | None = None) -> CompileResult:
    """Compile ``model`` (a .nir path or a NIRGraph) for ``target`` (name, path or Target).

    Writes the build to ``out_dir`` (atomically) unless it is None. ``calibration_steps``
    of seeded random input are simulated in float to estimate spike rates for the
    partitioner and the traffic report (0: assume one spike per neuron per step).
    ``convention``: how the model was trained (nirc.convention), or the keyword arguments
    of nirc.convention.resolve (e.g. {"exporter": "auto"}) to detect it once the file is
    read, with the target's default_dt as the fallback dt. None: NIR's own rules at ``dt``
    (else the file's metadata dt, else the target's default_dt). ``dt`` and ``method``
    given here always win.
    ``calibration`` (an NPZ of the user's input samples, nirc.fidelity.calibration) is
    what quantizers tune their scales on and what report.json's ``fidelity`` section
    measures against the model as trained; without it, seeded random spikes.
    """
    from nirc.ir.graph import flatten
    from nirc.partition import partition
    from nirc.target import Target, load_target

    if method is not None and method not in METHODS:
        raise NircError(f"method must be one of {', '.join(METHODS)}, got '{method}'",
                        field="method")
    if granularity not in GRANULARITIES:
        raise NircError(f"granularity must be one of {', '.join(GRANULARITIES)}, got "
                        f"'{granularity}'", field="granularity")
    watch = _Stopwatch()
    with watch.stage("read"):
        tgt = target if isinstance(target, Target) else load_target(target)
        if isinstance(model, NIRGraph):
            graph, file = model, None
        else:
            from nirc.nirio import read

            graph, file = read(model), str(model)
        _require_runnable(graph, file)
    convention = _convention_for(graph, convention, dt, method, tgt.default_dt, file)
    dt_value, method = convention.dt, convention.discretisation
    dt_source = CONVENTION_DT_SOURCES[convention.source("dt")]
    ctx = PassContext(model=get_model(tgt.neuron_model), dt=dt_value, method=method,
                      granularity=granularity, formats=tgt.formats.model_dump(),
                      target_name=tgt.name, file=file,
                      target=tgt, convention=convention,
                      calibration=_calibration(graph, calibration))
    staged: dict[str, Any] = {}
    layers = _layers(flatten(graph))

    def passes_into(directory: Path | None) -> HardwareNetwork:
        net = run_passes(graph, list(tgt.passes), ctx, watch, dump_after,
                         directory / "dump" if directory is not None else None)
        if not isinstance(net, HardwareNetwork) or not net.quantized:
            raise NircError(f"target '{tgt.name}': its passes ({', '.join(tgt.passes)}) do not "
                            f"end in a quantized hardware network", file=tgt.source,
                            field="passes")
        return net

    def build(directory: Path | None) -> None:
        from nirc import fidelity

        deep = fidelity.too_deep(layers, ctx.calibration.steps)
        unmeasured = None if deep is None else f"not simulated: {deep}"
        with watch.stage("reference"):
            try:
                if deep is None:
                    fidelity.reference_run(graph, ctx.calibration, dt_value, method,
                                           ctx.convention)
            except NircError as err:
                # The compile does not depend on it; say what could not be checked.
                unmeasured = f"the float reference could not run on the calibration input: {err}"
        net = passes_into(directory)
        float_net = ctx.report.pop("float_network", None)
        with watch.stage("fidelity"):
            if unmeasured is None:
                ctx.report["fidelity"] = check_fidelity(graph, float_net, net, ctx)
            else:
                import warnings

                from nirc.errors import NircWarning

                warnings.warn(NircWarning(f"fidelity not measured: {unmeasured}"), stacklevel=2)
                ctx.report["fidelity"] = {"calibration": ctx.calibration.describe(),
                                          "not_measured": unmeasured}
        rates = None
        uncalibrated = fidelity.too_deep(layers, calibration_steps) if calibration_steps > 0 \
            else None
        if uncalibrated is not None:
            log.info("traffic not calibrated: %s", uncalibrated)
        elif calibration_steps > 0:
            with watch.stage("calibrate"):
                rates = spike_rates(graph, dt_value, method, calibration_steps, seed,
                                    convention)
        with watch.stage("partition"):
            options = {"rates": rates} if rates is not None else {}
            if partition_method:
                options["method"] = partition_method
            placement = partition(net, tgt, **options)
        if placement.system is not None:
            net, placement = _with_link_latency(net, placement, tgt, ctx)
        report = compile_report(net, placement, ctx, tgt, file, dt_source, rates,
                                calibration_steps, uncalibrated)
        staged.update(net=net, placement=placement, report=report)
        if directory is None:
            return
        with watch.stage("emit"):
            backend = _backend_module(tgt)
            if hasattr(backend, "build_config"):
                config, arrays = backend.build_config(net, placement, tgt)
            else:
                config, arrays = build_config(net, placement, tgt.name)
            write_build(directory, config, arrays, report)
        (directory / TIMINGS_NAME).write_text(dumps(
            {"unit": "s", "stages": {k: round(v, 6) for k, v in watch.timings.items()}}))

    with _fewer_full_collections():
        if out_dir is None:
            build(None)
            written = None
        else:
            written = write_atomically(out_dir, build)
    log.info("compiled %s for %s: %d neurons, %d synapses, %d cores", file or "graph", tgt.name,
             staged["net"].neuron_count, staged["net"].synapse_count,
             staged["placement"].cores_used)
    return CompileResult(out_dir=written, graph=graph, network=staged["net"],
                         placement=staged["placement"], report=staged["report"],
                         timings=dict(watch.timings), convention=convention)


@contextmanager
def _collector_skips_what_lives_now() -> Iterator[None]:
    """Python's cyclic collector leaves the objects alive now (the graph read, the modules
    imported) out of its full passes until the block ends: each full pass walked them all, a
    fifteenth of a 10^5-node compile's CPU time. They are handed back to it afterwards."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# Where report.json's dt_source says dt came from, by the convention's source of dt.
CONVENTION_DT_SOURCES = {"option": DT_SOURCES[0], "file": DT_SOURCES[1],
                         "default": DT_SOURCES[2], "detection": "exporter convention"}


def _convention_for(graph: NIRGraph, convention, dt: float | None, method: str | None,
                    default_dt: float, file: str | None) -> Convention:
    """The convention to compile under, with explicit ``dt``/``method`` laid over it."""
    from nirc.convention import nir_convention, resolve, with_options

    if convention is None:
        dt_value, dt_source = resolve_dt(dt, graph, default_dt, DT_SOURCES)
        base = nir_convention(graph, default_dt=default_dt)
        base = with_options(base, dt=dt_value, discretisation=method or "euler")
        source = {DT_SOURCES[0]: "option", DT_SOURCES[1]: "file", DT_SOURCES[2]: "default"}
        sources = dict(base.sources, dt=source[dt_source],
                       discretisation="option" if method else "default")
        return replace(base, sources=tuple(sources.items()))
    if isinstance(convention, Mapping):
        options = {**convention, "default_dt": default_dt}
        options.setdefault("dt", dt)
        options.setdefault("method", method)
        try:
            convention = resolve(graph, **options)
        except NircError as err:
            raise err.at(file=file) from None
        from nirc.commands.conventions import announce

        announce(convention, file)
        return convention
    return with_options(convention, dt=dt, discretisation=method)


def _require_runnable(graph: NIRGraph, file: str | None) -> None:
    """Refuse a graph no target can run (no Input, no Output, no path between) before any
    pass, so every target says so in the same words (nirc.ir.reachability)."""
    from nirc.ir.graph import flatten
    from nirc.ir.reachability import require_runnable

    try:
        flat = flatten(graph)
    except NircError as err:
        raise err.at(file=file) from None
    require_runnable(flat, file)


def _calibration(graph: NIRGraph, path: str | None):
    """The calibration input for ``graph`` (nirc.fidelity.calibration)."""
    from nirc import fidelity
    from nirc.ir.graph import flatten, infer_shapes

    from nirc.ir.nodes import NEURON_TYPES

    flat = flatten(graph)
    shapes = infer_shapes(flat)
    neurons = sum(int(np.prod(shapes[name].output)) for name, node in flat.nodes.items()
                  if isinstance(node, NEURON_TYPES) and shapes[name].output is not None)
    return fidelity.calibration({name: tuple(shapes[name].output) for name in graph.inputs()}, path,
                                neurons, _layers(flat))


def _layers(flat: NIRGraph) -> int:
    """Nodes of a flat graph a simulation steps one by one (all but Input and Output)."""
    from nirc.ir.nodes import Input, Output

    return sum(1 for node in flat.nodes.values() if not isinstance(node, (Input, Output)))


def check_fidelity(graph: NIRGraph, float_net: HardwareNetwork | None, net: HardwareNetwork,
                   ctx: PassContext) -> dict[str, Any]:
    """report.json's ``fidelity``: per population, the integer network's agreement with the
    float model on the calibration input and the weights quantization zeroed; a NircWarning
    for every population damaged beyond nirc.fidelity's thresholds."""
    import warnings

    from nirc import fidelity, intref
    from nirc.errors import NircWarning
    from nirc.simulate import simulate

    cal = ctx.calibration
    floated = cal.reference if cal.reference is not None else simulate(
        graph, cal.inputs, dt=net.dt, method=ctx.method, batch=True)
    voltages = {o.source: floated.outputs[k] for k, o in net.outputs.items()
                if o.quantity != "spikes" and k in floated.outputs}
    chip = intref.run(net, cal.inputs, batch=True)
    count_scales = {row["population"]: row["count_scale"] for row in ctx.report.get("quantization", [])
                    if row.get("count_scale", 1) != 1}
    rows = fidelity.compare(net, chip, floated, ctx.report.get("latency_steps", {}), voltages,
                            count_scales, fidelity.copies_of(ctx.report.get("quantization", [])),
                            fidelity.copy_weights_of(ctx.report.get("quantization", [])))
    found = {name: list(notes) for name, notes in fidelity.activity_warnings(rows).items()}
    zeroed = fidelity.zeroed_weights(float_net, net) if float_net is not None else {}
    for name, notes in fidelity.zeroed_warnings(zeroed).items():
        found.setdefault(name, []).extend(notes)
    model = get_model(net.neuron_model)
    convention = ctx.convention
    trained = fidelity.model_rules(convention)
    readouts = {o.source for o in net.outputs.values()}
    quantization = {row["population"]: row for row in ctx.report.get("quantization", [])}
    copy_names = {c for names in fidelity.copies_of(ctx.report.get("quantization", [])).values()
                  for c in names}
    layers = {}
    for name, pop in net.populations.items():
        if name in copy_names:
            continue        # its spikes are counted with the population it copies (compare)
        row = dict(rows.get(name, {}))
        # The always-on neuron some quantizers add (constant currents) and the relays that carry
        # long delays (balance_delays) are no populations of the model.
        chip_rules = model.firing_rules(pop, name in readouts) \
            if pop.spiking and tuple(pop.provenance)[:1] not in (("always_on",), ("relay",)) \
            else None
        if chip_rules is not None:
            row["chip_rules"] = chip_rules
            row["rule_differences"] = fidelity.rule_differences(trained, chip_rules)
        if name in zeroed:
            row["weights_nonzero"] = zeroed[name].nonzero
            row["weights_zeroed"] = zeroed[name].zeroed
        row["warnings"] = found.get(name, [])
        quant = quantization.get(name, {})
        scale = quant.get("scale", quant.get("v_scale"))
        if scale is not None:
            row["scale"] = scale
        row["limited_by"] = fidelity.limited_by(row, quant)
        layers[name] = row
    where = f"{ctx.file}: " if ctx.file else ""

    def rules_cost(row) -> bool:
        # A reset or spike rule the chip cannot follow that costs agreement is said even
        # where no activity warning fires (a threshold test alone, > for >=, is not).
        agreement = row.get("agreement")
        return agreement is not None and agreement < fidelity.RULES_WARN and any(
            d.startswith(("reset", "spikes")) for d in row.get("rule_differences") or ())

    pending = {**found, **{name: [] for name, row in layers.items()
                           if name not in found and rules_cost(row)}}
    for name, notes in pending.items():
        differs = layers.get(name, {}).get("rule_differences")
        if differs and (any("float model" in note for note in notes)
                        or rules_cost(layers[name])):
            # Damage with firing rules the chip cannot follow: name them, and how to see the
            # trained model under the chip's rules.
            chip_rules = layers[name]["chip_rules"]
            agreement = layers[name].get("agreement")
            lost = "" if agreement is None else \
                f"; calibration agreement {agreement:.2f} of 1 ({100 * (1 - agreement):.0f}% lost)"
            notes = [*notes, "the chip cannot fire as the model was trained: "
                     + "; ".join(differs) + lost + f" (`nirc simulate --reset {chip_rules['reset']}"
                     + (" --no-reset-delay" if trained.get("reset_delay") else "")
                     + (" --spikes single" if chip_rules["spikes"] == "single" else
                        f" --max-spikes {chip_rules['max_spikes']}"
                        if chip_rules.get("max_spikes") and chip_rules["max_spikes"]
                        != trained.get("max_spikes") else "")
                     + "` runs the model under the chip's rules)"]
        for note in notes:
            warnings.warn(NircWarning(f"{where}population '{name}': {note}"), stacklevel=2)
    return {"calibration": cal.describe(),
            "reference": f"nirc's float simulation of the NIR graph ({cal.reference_rules})",
            "model_rules": trained,
            "agreement": round(fidelity.score(rows), 6), "layers": layers,
            "thresholds": {"agreement": fidelity.AGREEMENT_WARN,
                           "count_correlation": fidelity.CORRELATION_WARN,
                           "activity_ratio": fidelity.ACTIVITY_RATIO,
                           "zeroed_share": fidelity.ZEROED_WARN}}


def _with_link_latency(net: HardwareNetwork, placement: Placement, target, ctx: PassContext):
    """A system placement's link latency added to the tables that cross chips (nirc.links)."""
    from dataclasses import replace

    from nirc.links import add_link_latency

    net, arrival, notes, summary = add_link_latency(net, placement, target)
    lag = dict(ctx.report.get("latency_steps", {}))
    ctx.report["latency_steps"] = {p: int(lag.get(p, 0)) + arrival.get(p, 0) for p in net.populations}
    ctx.report["link_latency"] = summary
    return net, replace(placement, notes=placement.notes + tuple(notes))


def _backend_module(target):
    """nirc.targets.<backend> when the target names one (it may emit its own config)."""
    if not target.backend:
        return None
    import importlib

    return importlib.import_module(f"{TARGET_PACKAGE}.{target.backend}")


def compile_report(net: HardwareNetwork, placement: Placement, ctx: PassContext, target,
                   file: str | None, dt_source: str, rates, calibration_steps: int,
                   uncalibrated: str | None = None) -> dict[str, Any]:
    """report.json: resources, traffic and quantization error (deterministic: no times).
    ``uncalibrated``: why the traffic calibration was not simulated (fidelity.too_deep)."""
    placed = placement.to_dict()
    return {
        "format": "nirc-compile-report",
        "schema_version": 1,
        "nirc_version": __version__,
        "model": file,
        "target": target.name,
        "neuron_model": net.neuron_model,
        "dt": net.dt,
        "dt_source": dt_source,
        "convention": ctx.convention.to_dict() if ctx.convention is not None else None,
        "method": ctx.method,
        "granularity": ctx.granularity,
        "passes": list(target.passes),
        "neurons": net.neuron_count,
        "synapses": net.synapse_count,
        "populations": {name: {"size": p.size, "nodes": list(p.provenance), "spiking": p.spiking}
                        for name, p in net.populations.items()},
        "cores_used": placement.cores_used,
        "lower_bound": placement.lower_bound,
        "lower_bound_resource": placement.lower_bound_resource,
        "gap": placed["gap"],
        "solver_status": placement.solver_status,
        "peak_utilisation": {k: round(v, 6) for k, v in
                             sorted(placement.peak_utilisation().items())},
        "utilisation": placed["utilisation"],
        "traffic": {
            "estimated_from": (f"float simulation of {calibration_steps} steps of seeded random "
                               f"input (rate 0.2)") if rates is not None
            else "one spike per neuron per step (no calibration"
            + (f": {uncalibrated})" if uncalibrated else ")"),
            "inter_core_messages_per_step": placement.messages,
            "input_messages_per_step": placement.input_messages,
            "messages_by_core_pair": placed["messages_by_pair"],
            "spikes_per_step": {k: float(np.sum(v)) for k, v in sorted((rates or {}).items())},
        },
        "quantization": ctx.report.get("quantization", []),
        "pass_reports": {k: v for k, v in ctx.report.items() if k != "quantization"},
        "placement_notes": placed["notes"],
        **({"system": placed["system"]} if "system" in placed else {}),
    }
