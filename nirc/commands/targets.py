"""`nirc targets`: list the chips nirc ships, show one, or validate a target YAML.

    nirc targets                 # name, chips, cores, neuron model, mapping, description
    nirc targets show loihi2     # every limit with its unit, formats, passes, sources
    nirc targets check my.yaml   # validate a file; one-line error naming the field if not
    nirc targets schema          # JSON Schema of a target YAML (for editors)
    nirc targets schema --markdown   # the field reference table of docs/targets.md

A thin layer over nirc.target (load_target, list_targets, check_target_file).
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from nirc.errors import TargetError, printable
from nirc.target import CHIP_RESOURCES, RESOURCES, Target, check_target_file, load_target, target_names


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "targets", help="list the chips nirc can compile for, or check a target YAML",
        description="Without arguments, list the shipped targets. 'show NAME_OR_PATH' prints one "
                    "target's limits and formats; 'check FILE.yaml' validates a target file "
                    "(exit 0 if valid, 2 with a one-line error naming the field if not).")
    sub = parser.add_subparsers(dest="targets_action", metavar="ACTION")
    check = sub.add_parser("check", help="validate a target YAML file")
    check.add_argument("file", metavar="FILE.yaml")
    show = sub.add_parser("show", help="print one target's limits, formats and passes")
    show.add_argument("target", metavar="NAME_OR_PATH")
    schema = sub.add_parser("schema", help="print the JSON Schema of a target YAML",
                            description="Print the JSON Schema of target YAML files (generated "
                                        "from the schema the loader validates with), or with "
                                        "--markdown the field reference table of "
                                        "docs/targets.md.")
    schema.add_argument("--markdown", action="store_true",
                        help="print the field reference as a markdown table instead")
    parser.set_defaults(run=run)


def run(args) -> int:
    console = Console(file=sys.stdout, width=120, highlight=False)
    action = getattr(args, "targets_action", None)
    if action == "check":
        target = check_target_file(args.file)
        chips = f"{target.chip_count} chips of " if target.system is not None else ""
        console.print(f"{args.file}: valid target '{target.name}' ({target.mapping}, "
                      f"{chips}{target.core_count} cores, neuron model {target.neuron_model})",
                      soft_wrap=True)
        return 0
    if action == "schema":
        from nirc.target_schema import json_schema_text, markdown_field_table

        sys.stdout.write(markdown_field_table() if args.markdown else json_schema_text())
        return 0
    if action == "show":
        _show(console, load_target(args.target))
        return 0
    table = Table(title="nirc targets", title_justify="left")
    for column in ("name", "chips", "cores", "neuron model", "mapping", "description"):
        table.add_column(column, justify="right" if column in ("chips", "cores") else "left")
    broken = []
    for name in target_names():
        try:
            target = load_target(name)
        except TargetError as err:     # a broken shipped file must not hide the others
            broken.append(err)
            continue
        table.add_row(target.name, str(target.chip_count),
                      str(target.chip_count * target.core_count), target.neuron_model, target.mapping,
                      " ".join(target.description.split()))
    console.print(table)
    for err in broken:
        print(f"error: {printable(str(err))}", file=sys.stderr)
    return 2 if broken else 0


def _show(console: Console, target: Target) -> None:
    console.print(f"[bold]{target.name}[/bold]: {' '.join(target.description.split())}", soft_wrap=True)
    console.print(f"neuron model {target.neuron_model}, mapping {target.mapping}, "
                  f"default dt {target.default_dt:g} s, passes: {', '.join(target.passes)}",
                  soft_wrap=True)
    limits = Table(title=f"per-core limits ({target.core_count} cores)", title_justify="left")
    limits.add_column("resource")
    limits.add_column("cores")
    limits.add_column("capacity", justify="right")
    limits.add_column("unit")
    rows = [("all", target.cores.limits.named())]
    rows += [(", ".join(map(str, o.cores)), o.limits.named()) for o in target.cores.overrides]
    for cores, named in rows:
        for name, value in named.items():
            limits.add_row(name, cores, str(value), RESOURCES[name].unit)
    chip = getattr(target, "chip", None)
    for name, value in (chip.named().items() if chip is not None else ()):
        limits.add_row(name, "whole chip", str(value), CHIP_RESOURCES[name].unit)
    console.print(limits)
    if target.system is not None:
        s = target.system
        where = f"mesh {' x '.join(map(str, s.mesh))}" if s.mesh else f"{len(s.link_pairs())} links"
        console.print(f"system: {s.chips} chips of {s.chip} ({where}); a link carries "
                      f"{s.link.messages_per_step or 'unbounded'} messages per step with "
                      f"{s.link.latency_steps} step(s) latency; inter-chip routing entries per "
                      f"chip: {s.routing_entries or 'unbounded'}", soft_wrap=True)
    formats = {k: v for k, v in target.formats.model_dump().items() if v is not None}
    console.print("formats: " + ", ".join(f"{k}={v}" for k, v in formats.items()), soft_wrap=True)
    for source in target.sources:
        console.print(f"source: {source}", soft_wrap=True, markup=False)
