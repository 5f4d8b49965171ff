"""The README's quick start and cross-target table stay true to the repository."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_quick_start_shows_make_demo_and_make_test_first():
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.splitlines()
                if line.startswith("make ")]
    assert commands == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command():
    lines = [line.split("#")[0].strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in lines


def test_cross_target_table_is_the_generated_one():
    generated = (ROOT / "benchmarks" / "results" / "cross_target.md").read_text(encoding="utf-8")
    block = README.split("<!-- cross-target:begin -->", 1)[1].split("<!-- cross-target:end -->")[0]
    assert block.strip() == generated.strip()


def test_accuracy_table_is_the_generated_one():
    generated = (ROOT / "benchmarks" / "results" / "accuracy.md").read_text(encoding="utf-8")
    block = README.split("<!-- accuracy:begin -->", 1)[1].split("<!-- accuracy:end -->")[0]
    assert block.strip() == generated.strip()


def test_every_linked_doc_exists():
    import re

    for link in re.findall(r"\]\(([^)#]+)\)", README):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link
