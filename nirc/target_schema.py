"""The target YAML's JSON Schema and field reference, generated from nirc.target's pydantic models.

The loader validates with :class:`nirc.target.Target`; this module derives from
the same models what editors and people read, so neither can drift from it:

- :func:`json_schema`: JSON Schema (draft 2020-12) of a target file, with the
  neuron models, passes and mapping strategies registered in this nirc as
  enumerations (``nirc targets schema > target.schema.json``; the copy in
  docs/target.schema.json is checked by a test to be current).
- :func:`field_rows` / :func:`markdown_field_table`: one row per field
  (dotted path, type, required or default, unit, meaning), the table in
  docs/targets.md (``nirc targets schema --markdown``);
  :func:`markdown_resource_table`: which strategy enforces which limit;
  :func:`with_generated_tables` puts both into the guide.

Units are written at the end of each field's description in square brackets
(``"... [bits]"``); the table shows them in a column of their own.
"""

from __future__ import annotations

import json
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from nirc.errors import TargetError
from nirc.target import CHIP_RESOURCES, MAPPINGS, RESOURCES, Target, target_names

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_UNIT = re.compile(r"\s*\[([^\]]+)\]$")


@dataclass(frozen=True)
class FieldRow:
    """One field of the target YAML, as the reference table shows it."""

    path: str
    type: str
    required: bool
    default: str
    unit: str
    meaning: str


def _registries() -> tuple[list[str], list[str]]:
    """Registered neuron models and passes, after every shipped backend has registered its own."""
    from nirc.neuron_models import MODELS
    from nirc.passes.registry import PASSES
    from nirc.target import load_target

    for name in target_names():     # loading imports the target's backend, which may register
        try:
            load_target(name)
        except TargetError:         # a broken shipped file is reported by 'nirc targets'
            pass
    return sorted(MODELS), sorted(PASSES)


def json_schema() -> dict[str, Any]:
    """JSON Schema of a target YAML file, with registry names as enumerations."""
    schema = Target.model_json_schema()
    models, passes = _registries()
    props = schema["properties"]
    props["neuron_model"]["enum"] = models
    props["passes"]["items"] = {"type": "string", "enum": passes}
    props["mapping"].setdefault("enum", list(MAPPINGS))
    # A system file (with 'system') inherits the other fields from its chip target.
    chip_required = schema.pop("required", [])
    schema["anyOf"] = [{"required": chip_required},
                       {"required": ["name", "description", "system"]}]
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "nirc target"
    schema["description"] = ("A neuromorphic chip as nirc compiles for it (one YAML file; see "
                             "docs/targets.md). Generated from nirc.target.Target by "
                             "'nirc targets schema'.")
    return schema


def json_schema_text() -> str:
    """The schema as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(names)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(
        annotation, str(annotation))


def _submodel(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def field_rows(model: type[BaseModel] = Target, prefix: str = "",
               expanded: dict[type, str] | None = None) -> list[FieldRow]:
    """Every field of ``model`` and its sections, depth first, in declaration order.

    A section type met a second time (``cores.overrides[].limits``) is not expanded
    again: its row says which section it has the fields of.
    """
    expanded = {} if expanded is None else expanded
    rows = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        description = info.description or ""
        match = _UNIT.search(description)
        unit = match.group(1) if match else ""
        meaning = _UNIT.sub("", description)
        required = info.is_required()
        sub = _submodel(info.annotation)
        if sub is not None and sub in expanded:
            meaning += f" (the fields of `{expanded[sub]}`)"
        if required:
            default = ""
        elif info.default_factory is not None:
            default = "(see below)" if sub is not None and sub not in expanded else "empty"
        else:
            default = "absent" if info.default is None else f"`{info.default}`"
        rows.append(FieldRow(path, _type_name(info.annotation), required, default, unit, meaning))
        if sub is not None and sub not in expanded:
            expanded[sub] = path
            item = "[]" if typing.get_origin(info.annotation) is list else ""
            rows.extend(field_rows(sub, f"{path}{item}.", expanded))
    return rows


def markdown_field_table() -> str:
    """The field reference of docs/targets.md."""
    lines = ["| field | type | required / default | unit | meaning |",
             "|---|---|---|---|---|"]
    for row in field_rows():
        need = "**required**" if row.required else row.default
        lines.append(f"| `{row.path}` | {row.type} | {need} | {row.unit} | "
                     f"{row.meaning.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def markdown_resource_table() -> str:
    """Which mapping strategy enforces which limit, from nirc.target's resource lists."""
    lines = ["| limit | unit | enforced by | counts |", "|---|---|---|---|"]
    for section, resources in (("cores.limits", RESOURCES), ("chip", CHIP_RESOURCES)):
        for r in resources.values():
            by = ("all strategies" if set(r.mappings) == set(MAPPINGS)
                  else ", ".join(f"`{m}`" for m in r.mappings))
            lines.append(f"| `{section}.{r.name}` | {r.unit} | {by} | {r.meaning} |")
    return "\n".join(lines) + "\n"


# Generated sections of docs/targets.md: (begin marker, end marker, content).
GUIDE_SECTIONS = (("<!-- resources:begin", "<!-- resources:end -->", markdown_resource_table),
                  ("<!-- fields:begin", "<!-- fields:end -->", markdown_field_table))


def with_generated_tables(guide: str) -> str:
    """The guide's text with every generated section between its markers replaced."""
    for begin, end_marker, content in GUIDE_SECTIONS:
        start = guide.index("\n", guide.index(begin)) + 1
        end = guide.index(end_marker)
        guide = guide[:start] + content() + guide[end:]
    return guide
