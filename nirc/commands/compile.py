"""`nirc compile`: a NIR model -> a deployment configuration directory for a target.

A thin layer over nirc.driver.compile; the build directory appears only when
the whole compilation succeeded (docs/config-format.md describes its files).
"""

from __future__ import annotations

import argparse
import logging

from nirc.commands import count
from nirc.commands.conventions import add_arguments, options

log = logging.getLogger("nirc")


def add_common(parser: argparse.ArgumentParser, multiple_targets: bool = False) -> None:
    """Options shared by compile and verify (verify may name several targets)."""
    if multiple_targets:
        parser.add_argument("--target", required=True, action="append", metavar="TARGET",
                            help="target name (see 'nirc targets') or path to a target YAML; "
                                 "repeat for several targets")
    else:
        parser.add_argument("--target", required=True,
                            help="target name (see 'nirc targets') or path to a target YAML")
    parser.add_argument("--dt", type=float, default=None,
                        help="time step in seconds (default: the detected exporter's, else the "
                             "file's metadata 'dt', else the target's default_dt)")
    parser.add_argument("--method", choices=("euler", "exact"), default=None,
                        help="discretisation of the NIR dynamics (default: the exporter's; "
                             "euler for NIR)")
    parser.add_argument("--granularity", choices=("layer", "channel"), default="layer",
                        help="quantization scale per layer (default) or per neuron")
    parser.add_argument("--placement", choices=("cpsat", "sequential"), default=None,
                        help="placement method of neuron-partitioned targets: OR-Tools CP-SAT "
                             "(default) or the fast sequential fill")
    parser.add_argument("--calibration", metavar="DATA.npz", default=None,
                        help="your own input samples ('input' (T, B, *shape) or (T, *shape), "
                             "'input_<name>' per input with several): quantization scales are "
                             "chosen to agree best with the float model on them, and report.json's "
                             "'fidelity' measures them (default: seeded random spikes)")
    parser.add_argument("--calibration-steps", type=count(0), default=50, metavar="N",
                        help="float-simulate N steps of seeded random input to estimate spike "
                             "rates for placement and the traffic report (0: skip)")
    add_arguments(parser)


def convention_options(args: argparse.Namespace) -> dict:
    """The --from/--reset/... choices as nirc.driver.compile's ``convention`` argument."""
    chosen = options(args)
    chosen.pop("dt")
    chosen.pop("method")
    return chosen


def lowering_notes(pass_reports: dict) -> list[str]:
    """One line per delay added to balance a layer's inputs, relay and shared neuron profile."""
    lines = []
    balance = pass_reports.get("delay_balance") or {}
    # A current held as taps gives one connection many tables (delays 1..D): one line for them.
    grouped: dict[tuple, list[dict]] = {}
    for a in balance.get("added_delays", []):
        grouped.setdefault((a["source"], a["target"], a["added_steps"]), []).append(a)
    for (source, target, added), rows in grouped.items():
        relays = list(dict.fromkeys(a["via_relay"] for a in rows if a.get("via_relay")))
        via = f" through relay {', '.join(relays)}" if relays else ""
        before = sorted({a["delay_before"] for a in rows})
        if len(before) == 1:        # one connection (split by sign into several tables)
            change = f"delay {before[0]} -> {before[0] + added} steps"
        else:
            change = f"{len(before)} delays ({before[0]}-{before[-1]}) {added} step(s) later"
        lines.append(f"{source} -> {target}: {change}{via}, so all inputs of {target} arrive "
                     f"together")
    relays = balance.get("relays", [])
    if relays:
        by_source: dict[str, list[dict]] = {}
        for r in relays:
            by_source.setdefault(r["source"], []).append(r)
        each = ", ".join(f"{source} ({len(rows)} x {rows[0]['neurons']})"
                         for source, rows in by_source.items())
        lines.append(f"{sum(r['neurons'] for r in relays)} relay neurons carry delays above the "
                     f"chip's longest ({balance.get('max_delay_steps')} steps): {each}")
    for u in balance.get("unbalanced", []):
        lines.append(f"{u['source']} -> {u['target']}: arrives {u['late_steps']} step(s) later "
                     f"than in the float model (a loop over several layers is longer on the chip)")
    for row in (pass_reports.get("neuron_profiles") or {}).get("populations", []):
        shared = row.get("shared")
        if shared:
            change = ", ".join(f"{k} by up to {v}" for k, v in shared["max_change"].items() if v)
            lines.append(f"{row['population']}: {shared['distinct_before']} distinct neuron "
                         f"profiles shared as {len(row['profiles'])} (a core holds no more); "
                         f"{shared['neurons_changed']} neurons changed: {change}")
    return list(dict.fromkeys(lines))     # a connection split into several tables: one line


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compile", help="compile a NIR model into a deployment configuration",
        description="Compile MODEL.nir for a target chip into OUT_DIR (config.json, arrays.npz, "
                    "report.json, timings.json; see docs/config-format.md).")
    parser.add_argument("model", metavar="MODEL.nir", help="the NIR file to compile")
    add_common(parser)
    parser.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                        help="build directory to create (replaced only by a complete build)")
    parser.add_argument("--dump-after", metavar="PASS", default=None,
                        help="also write the stage after PASS into OUT_DIR/dump/ (.nir for NIR "
                             "graphs, .json + .npz otherwise)")
    parser.add_argument("--report", action="store_true",
                        help="also write OUT_DIR/report.html: pictures of the graph, the cores "
                             "and how full they are, inter-core traffic and quantization error "
                             "(self-contained, opens offline)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from nirc.driver import compile

    result = compile(args.model, args.target, args.output, dt=args.dt, method=args.method,
                     granularity=args.granularity, dump_after=args.dump_after,
                     calibration_steps=args.calibration_steps, partition_method=args.placement,
                     convention=convention_options(args), calibration=args.calibration)
    r = result.report
    log.info("%s: %d neurons, %d synapses on %d cores (lower bound %d, gap %.1f%%), "
             "%.1f inter-core messages per step", result.out_dir, r["neurons"], r["synapses"],
             r["cores_used"], r["lower_bound"], 100 * r["gap"],
             r["traffic"]["inter_core_messages_per_step"])
    fid = r["pass_reports"].get("fidelity", {})
    if "agreement" in fid:
        cal = fid["calibration"]
        log.info("  fidelity: agreement %.3f with the float model on %s (%d steps x %d samples); "
                 "per layer in report.json", fid["agreement"], cal["source"], cal["steps"],
                 cal["samples"])
    for row in r["quantization"]:
        if row.get("notes"):
            log.info("  %s: %s", row["population"], "; ".join(row["notes"]))
    for line in lowering_notes(r.get("pass_reports", {})):
        log.info("  %s", line)
    if args.report:
        from nirc.mapping_report import REPORT_NAME, write_report

        log.info("wrote %s", write_report(result.out_dir / REPORT_NAME, result))
    return 0
