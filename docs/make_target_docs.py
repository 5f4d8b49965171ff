"""Regenerate what docs/ derives from the target schema (nirc.target.Target):

- docs/target.schema.json: the JSON Schema of target YAML files;
- the resource and field tables in docs/targets.md (between their markers).

Run after changing the schema or a registry: .venv/bin/python docs/make_target_docs.py
(tests/test_target_authoring.py fails while either is out of date).
"""

from pathlib import Path

from nirc.target_schema import json_schema_text, with_generated_tables

DOCS = Path(__file__).resolve().parent


def main() -> None:
    (DOCS / "target.schema.json").write_text(json_schema_text(), encoding="utf-8")
    guide = DOCS / "targets.md"
    guide.write_text(with_generated_tables(guide.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {DOCS / 'target.schema.json'} and the generated tables of {guide}")


if __name__ == "__main__":
    main()
