"""The README's generated blocks: a benchmark replaces the text between its two markers."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def paste_between(markers: tuple[str, str], table: str, readme: Path = README) -> None:
    """Replace the README's block between ``markers`` (begin, end) with ``table``."""
    text = readme.read_text(encoding="utf-8")
    begin, end = markers
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{table.strip()}\n{end}{tail}", encoding="utf-8")
