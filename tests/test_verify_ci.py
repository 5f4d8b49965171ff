"""`nirc verify` in CI: several models and targets per call, --json records, --junit test cases,
exit 1 when a model stops fitting or stops being bit-exact, exit 2 on bad input."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from nirc.cli import main
from nirc.emulator import Chip

ROOT = Path(__file__).resolve().parents[1]
MLP, SRNN = str(ROOT / "examples" / "mlp.nir"), str(ROOT / "examples" / "srnn.nir")
FAST = ["--steps", "10", "--samples", "2", "--calibration-steps", "0"]


@pytest.fixture
def small_chip(tmp_path) -> str:
    """loihi2 with two cores of 30 neurons: the 72-neuron srnn does not fit, nor the mlp."""
    data = yaml.safe_load((ROOT / "targets" / "loihi2.yaml").read_text())
    data.update(name="small_chip")
    data["cores"].update(count=2)
    data["cores"]["limits"].update(neurons=30)
    path = tmp_path / "small_chip.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def run_json(argv, capsys) -> tuple[int, dict]:
    code = main(["-q", "verify", *argv, "--json", *FAST])
    return code, json.loads(capsys.readouterr().out)


def test_json_has_one_record_per_model_and_target_in_order(small_chip, capsys):
    code, out = run_json([MLP, SRNN, "--target", "loihi2", "--target", small_chip], capsys)
    assert code == 1
    assert (out["format"], out["schema_version"], out["passed"]) == ("nirc-verify", 1, False)
    assert [(Path(r["model"]).name, Path(r["target"]).name, r["status"])
            for r in out["results"]] == [
        ("mlp.nir", "loihi2", "bit-exact"), ("mlp.nir", "small_chip.yaml", "does-not-fit"),
        ("srnn.nir", "loihi2", "bit-exact"), ("srnn.nir", "small_chip.yaml", "does-not-fit")]
    fitted = out["results"][2]
    assert (fitted["fits"], fitted["bit_exact"], fitted["cores_used"], fitted["steps"],
            fitted["samples"], fitted["mismatches"]) == (True, True, 1, 10, 2, [])
    assert [row["output"] for row in fitted["outputs"]] == ["output"]
    unfit = out["results"][3]
    assert (unfit["fits"], unfit["bit_exact"]) == (False, None)
    assert "'neurons'" in unfit["message"] and "small_chip" in unfit["message"]


def test_all_pairs_bit_exact_exit_0(capsys):
    code, out = run_json([MLP, SRNN, "--target", "loihi2"], capsys)
    assert code == 0 and out["passed"] is True
    assert [r["status"] for r in out["results"]] == ["bit-exact", "bit-exact"]


def test_junit_has_a_failing_test_case_for_each_pair_that_does_not_fit(small_chip, tmp_path,
                                                                          capsys):
    junit = tmp_path / "verify.xml"
    assert main(["-q", "verify", SRNN, "--target", "loihi2", "--target", small_chip,
                 "--junit", str(junit), *FAST]) == 1
    suite = ET.parse(junit).getroot()
    assert (suite.tag, suite.get("tests"), suite.get("failures")) == ("testsuite", "2", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["srnn.nir on loihi2",
                                              f"srnn.nir on {small_chip}"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure.get("type") == "does-not-fit" and "'neurons'" in failure.get("message")


def test_a_build_that_stops_being_bit_exact_is_a_failure(monkeypatch, tmp_path, capsys):
    original = Chip.run

    def corrupted(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        result.outputs["output"][3, 0, 0] ^= 1
        return result

    monkeypatch.setattr(Chip, "run", corrupted)
    junit = tmp_path / "verify.xml"
    code, out = run_json([MLP, "--target", "loihi2", "--junit", str(junit)], capsys)
    record, = out["results"]
    assert (code, record["status"], record["bit_exact"]) == (1, "mismatch", False)
    assert record["mismatches"][0]["what"] == "output 'output'"
    assert ET.parse(junit).getroot().find("testcase/failure").get("type") == "mismatch"


def test_bad_input_exits_2_before_any_work_and_writes_no_junit(tmp_path, capsys):
    junit = tmp_path / "verify.xml"
    assert main(["-q", "verify", MLP, str(tmp_path / "missing.nir"), "--target", "loihi2",
                 "--junit", str(junit), *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing.nir" in err[0]
    assert not junit.exists()


def test_report_needs_an_output_directory(capsys):
    assert main(["-q", "verify", MLP, "--target", "loihi2", "--report", *FAST]) == 2
    assert capsys.readouterr().err == ("error: --report needs -o OUT_DIR "
                                       "(report.html is written into the build directory)\n")


def test_several_pairs_build_into_one_directory_each(tmp_path, capsys):
    code, _ = run_json([MLP, SRNN, "--target", "loihi2", "-o", str(tmp_path / "b")], capsys)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["mlp-loihi2", "srnn-loihi2"]
