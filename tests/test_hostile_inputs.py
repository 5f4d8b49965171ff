"""Hostile inputs (issue 11): every finding as a named regression test, the data-loss cases
with the user's files checked byte for byte, and a short seeded fuzz run over NIR files,
target YAMLs and NPZ inputs (the long one is marked slow; tools/fuzz_hostile.py prints
the counts). Cases come from tests/hostile_cases.py; tests/fuzz_harness.py runs each in a
forked child and judges it (exit 0/1/2, no traceback, one error line, no partial output,
no leftovers, no raw escapes, time and memory limits)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

import hostile_cases as hc
from fuzz_harness import preload, run_case
from nirc.builddir import MARKER, recover
from nirc.cli import main


@pytest.fixture(scope="module", autouse=True)
def _preloaded():
    preload()


def _run(case: hc.Case, folder: Path):
    outcome = run_case(case, folder)
    assert outcome.ok, (outcome.name, outcome.problems, outcome.stderr[-2000:])
    return outcome


def _error(outcome) -> str:
    lines = [ln for ln in outcome.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, outcome.stderr
    return lines[0]


# --- NIR files ------------------------------------------------------------------------------

NIR_EXPECTED = {
    "nir_self_linking_group": "is linked from more than one place",
    "nir_metadata_links_to_itself": "is linked from more than one place",
    "nir_fixed_string_huge_itemsize": "declares items of 1,000,000,000 bytes each",
    "nir_edges_huge_itemsize": "declares items of 100,000,000 bytes each",
    "nir_many_arrays_just_under_cap": "bytes nirc reads from one file",
    "nir_float64_limit_weights": "holds 1.7e+308; nirc reads parameters up to 1e+30",
    "nir_only_input": "the graph has no Output node",
    "nir_pure_cycle_no_input": "the graph has no Input node",
    "nir_nested_output_edge_to_missing_node":
        "node 'sub', parameter 'edges': edge output -> ghost names a target node 'ghost'",
    "nir_ansi_escape_in_node_name": "node 'evil\\x1b[31mRED\\nerror: forged line'",
    "nir_nested_200_levels": "nested more than 64 levels deep",
}
# inspect shows these (they are valid files) and warns; compile refuses them
INSPECT_WARNS = {"nir_only_input", "nir_pure_cycle_no_input"}


@pytest.mark.parametrize("case", hc.named_nir_cases(), ids=lambda c: c.name)
def test_named_nir_case_ends_in_one_error_line(case, tmp_path):
    outcome = _run(case, tmp_path)
    finding = case.name.split(":")[0]
    if finding == "nir_dt_1e300":
        assert "dt must be between 1e-12 and 1000 s, got 1e+300" in _error(outcome)
        return
    if finding in INSPECT_WARNS and case.name.endswith(":inspect"):
        assert outcome.code == 0
        assert "warning: " in outcome.stderr and "cannot be simulated or compiled" in outcome.stderr
        return
    assert outcome.code == 2
    line = _error(outcome)
    assert str(tmp_path / "m.nir") in line and NIR_EXPECTED[finding] in line
    assert outcome.peak_mb < 2048
    assert not (tmp_path / "out").exists()


def test_huge_string_dataset_is_refused_before_reading(tmp_path):
    """The 1 GB fixed-length string took 16-21 s and 4-6 GB; now the header decides."""
    case = next(c for c in hc.named_nir_cases() if c.name == "nir_fixed_string_huge_itemsize:inspect")
    outcome = _run(case, tmp_path)
    # Memory shows the header decided: reading the data took 4-6 GB.
    assert outcome.peak_mb < 1024


def test_inspect_names_why_a_graph_cannot_run(tmp_path, capsys):
    hc.write_tree(tmp_path / "m.nir", hc.graph_tree(
        {"input": {"type": "Input", "shape": np.array([4])},
         "fc": {"type": "Affine", "weight": np.ones((3, 4)), "bias": np.zeros(3)},
         "lif": hc._lif(3), "idle": hc._lif(3),
         "output": {"type": "Output", "shape": np.array([3])},
         "unused_in": {"type": "Input", "shape": np.array([2])}},
        [("input", "fc"), ("fc", "lif"), ("lif", "output")]))
    assert main(["inspect", str(tmp_path / "m.nir")]) == 0
    err = capsys.readouterr().err
    assert "Input 'unused_in' reaches no Output node" in err
    assert "1 node(s) lie on no Input-to-Output path: 'idle'" in err


# --- target YAML ----------------------------------------------------------------------------

YAML_EXPECTED = {
    "yaml_billion_laughs": "once its aliases are followed",
    "yaml_nesting_3000_flow": "nested more than 50 levels deep",
    "yaml_nesting_10000_flow": "nested more than 50 levels deep",
    "yaml_nesting_1000_block": "nested more than 50 levels deep",
    "yaml_cores_count_1e9": "field 'cores.count': must be <= 65,536, got 1000000000",
    "yaml_synapse_memory_1e30": "field 'cores.limits.synapse_memory_bits': is far too large for this field, got 1e+30",
    "yaml_quantize_before_normalize":
        "field 'passes.0': pass 'quantize' needs an unrolled hardware network, but gets a NIR "
        "graph as read",
    "yaml_xylo_pass_on_loihi_model":
        "field 'passes.4': pass 'xylo_quantize' is for the xylo_lif neuron model, not "
        "'loihi_cuba_lif'",
    "yaml_duplicate_key": "key 'neurons' appears twice in one mapping",
    "yaml_python_tag": "invalid YAML",
    "yaml_binary": "",
}


@pytest.mark.parametrize("case", hc.named_yaml_cases(), ids=lambda c: c.name)
def test_named_yaml_case_ends_in_one_error_line(case, tmp_path):
    outcome = _run(case, tmp_path)
    assert outcome.code == 2
    line = _error(outcome)
    assert str(tmp_path / "t.yaml") in line
    assert YAML_EXPECTED[case.name.split(":")[0]] in line
    assert outcome.peak_mb < 2048   # a hang past fuzz_harness.TIME_LIMIT_S fails in _run


def test_targets_check_requires_a_complete_pass_list(tmp_path, capsys):
    text = hc._strip_aliases(hc._loihi_with(hc._LOIHI_PASSES,
                                            "passes: [normalize, discretize, fuse]"))
    (tmp_path / "t.yaml").write_text(text)
    assert main(["targets", "check", str(tmp_path / "t.yaml")]) == 2
    assert ("field 'passes.2': the passes end in a fused hardware network, not a quantized "
            "hardware network") in capsys.readouterr().err


def test_every_shipped_target_passes_the_stricter_check(capsys):
    for path in sorted(hc.SHIPPED_TARGETS.glob("*.yaml")):
        assert main(["targets", "check", str(path)]) == 0, capsys.readouterr().err


# --- NPZ inputs -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runner_dirs(tmp_path_factory):
    dirs = {}
    for runner in hc.RUNNERS:
        d = tmp_path_factory.mktemp(runner.name)
        hc.prepare_runner(runner, d)
        dirs[runner.name] = d
    return dirs


def _linked(folder: Path, base: Path) -> Path:
    folder.mkdir(exist_ok=True)
    for entry in base.iterdir():
        (folder / entry.name).symlink_to(entry)
    return folder


NPZ_EXPECTED = {
    "npz_plain_npy": "is a single .npy array, not an .npz archive",
    "npz_pickled_member": "holds Python objects (a pickle); nirc never unpickles input files",
    "npz_raw_pickle_member": "is not a .npy array",
    "npz_header_2_40_rows": "has 1,099,511,627,776 time steps, more than the 1,000,000",
    "npz_33M_steps": "has 33,000,000 time steps, more than the 1,000,000",
    "npz_zero_steps": "has 0 time steps",
    "npz_speck_1e5_events_one_pixel": "holds 100,000 events in step 0, more than the 1,048,576",
    "npz_speck_2_31_events_one_pixel": "holds 2,147,483,648 events in step 0",
}


@pytest.mark.parametrize("pair", hc.named_npz_cases(), ids=lambda p: p[1].name)
def test_named_npz_case(pair, tmp_path, runner_dirs):
    runner, case = pair
    folder = _linked(tmp_path / "c", runner_dirs[runner.name])
    outcome = _run(case, folder)
    finding = case.name.split(":")[0]
    if finding == "npz_speck_1e5_events_one_pixel":
        return   # 1e5 < the per-step bound: runs (as many events as it says), no traceback
    if finding == "npz_extra_member_never_read":
        assert outcome.code in (0, 1) and outcome.peak_mb < 1024   # the 256 MiB member: unread
        return
    assert outcome.code == 2
    line = _error(outcome)
    assert str(folder / "in.npz") in line and NPZ_EXPECTED[finding] in line, line
    assert not (folder / "out.npz").exists()


def test_speck_record_counts_do_not_wrap_at_255():
    from nirc.commands.emulate import _counts

    counts = np.array([[0, 255], [256, 469]])
    assert _counts(counts).dtype == np.uint16 and _counts(counts).tolist() == counts.tolist()
    assert _counts(np.array([1, 2])).dtype == np.uint8
    assert _counts(np.array([70_000])).dtype == np.uint32


# --- output paths: data loss ----------------------------------------------------------------

def _compile(model: Path, out: Path, *extra: str) -> int:
    return main(["-q", "compile", str(model), "--target", "loihi2", "-o", str(out),
                 "--calibration-steps", "0", "--placement", "sequential", *extra])


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_folder_holding_a_config_json_is_never_replaced(tmp_path, capsys):
    """It used to be renamed away and deleted with everything in it, the model included."""
    project = tmp_path / "project"
    project.mkdir()
    model = hc.write_seed(project / "model.nir")
    (project / "config.json").write_text('{"mine": true}')
    (project / "notes").mkdir()
    (project / "notes" / "thesis.tex").write_text("years of work")
    before = _tree(project)
    assert _compile(model, project) == 2
    assert "exists and is not a nirc build (no .nirc-build marker)" in capsys.readouterr().err
    assert _tree(project) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_a_build_someone_added_files_to_is_not_replaced(tmp_path, capsys):
    model = hc.write_seed(tmp_path / "m.nir")
    assert _compile(model, tmp_path / "build") == 0
    (tmp_path / "build" / "my_results.csv").write_text("keep")
    before = _tree(tmp_path / "build")
    assert _compile(model, tmp_path / "build") == 2
    assert "also holds files nirc did not write (my_results.csv)" in capsys.readouterr().err
    assert _tree(tmp_path / "build") == before


def test_a_marked_build_is_replaced_whole_and_keeps_ordinary_permissions(tmp_path):
    model = hc.write_seed(tmp_path / "m.nir")
    assert _compile(model, tmp_path / "build") == 0
    assert _compile(model, tmp_path / "build", "--dt", "2e-3") == 0
    assert '"dt": 0.002' in (tmp_path / "build" / "config.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "m.nir"]
    assert (tmp_path / "build" / MARKER).is_file()
    assert stat.S_IMODE((tmp_path / "build").stat().st_mode) & 0o055 == 0o055 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.fixture
def sim(tmp_path):
    model = hc.write_seed(tmp_path / "m.nir")
    hc.write_zip(tmp_path / "in.npz", {"input.npy": hc.npy_bytes(np.ones((5, 4)))})
    return lambda out: main(["-q", "simulate", str(model), "--input", str(tmp_path / "in.npz"),
                             "--output", str(out)])


def test_output_onto_a_device_node_writes_through_it(sim):
    before = os.stat("/dev/null")
    assert sim("/dev/null") == 0
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino


def test_output_onto_a_fifo_writes_through_it(sim, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    assert sim(fifo) == 0
    reader.join(10)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert received and received[0][:2] == b"PK"        # the NPZ went through the pipe


def test_output_onto_a_symlink_follows_it_and_keeps_the_link(sim, tmp_path):
    (tmp_path / "real.npz").write_bytes(b"old")
    (tmp_path / "link.npz").symlink_to("real.npz")
    assert sim(tmp_path / "link.npz") == 0
    assert (tmp_path / "link.npz").is_symlink()
    assert (tmp_path / "real.npz").read_bytes()[:2] == b"PK"


def test_output_onto_a_dangling_symlink_or_a_directory_is_refused(sim, tmp_path, capsys):
    (tmp_path / "dangling.npz").symlink_to("nowhere/x.npz")
    assert sim(tmp_path / "dangling.npz") == 2
    assert "is a symbolic link to nothing" in capsys.readouterr().err
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "keep").write_text("x")
    assert sim(tmp_path / "folder") == 2
    assert "is a directory; give a file name" in capsys.readouterr().err
    assert (tmp_path / "folder" / "keep").read_text() == "x"
    assert not list(tmp_path.glob(".*.tmp"))


def test_compile_output_onto_a_device_node_is_refused(tmp_path, capsys):
    model = hc.write_seed(tmp_path / "m.nir")
    assert _compile(model, Path("/dev/null")) == 2
    assert "exists and is not a directory" in capsys.readouterr().err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


DEAD_PID = 2 ** 22 + 12345      # above pid_max's default: no such process


def _killed_between_renames(tmp_path: Path, model: Path) -> None:
    """The state a kill between the two renames of a non-swapping file system leaves."""
    assert _compile(model, tmp_path / "build") == 0
    old = tmp_path / f".build.old-{DEAD_PID}-abc"
    old.mkdir()
    os.rename(tmp_path / "build", old / "build")
    partial = tmp_path / f".build.tmp-{DEAD_PID}-def"
    partial.mkdir()
    (partial / "config.json").write_text("{")


def test_next_emulate_restores_a_build_left_between_two_renames(tmp_path):
    model = hc.write_seed(tmp_path / "m.nir")
    _killed_between_renames(tmp_path, model)
    saved = _tree(tmp_path / f".build.old-{DEAD_PID}-abc" / "build")
    hc.write_zip(tmp_path / "in.npz", {"input.npy": hc.npy_bytes(np.ones((5, 4)))})
    assert main(["-q", "emulate", str(tmp_path / "build"), "--input", str(tmp_path / "in.npz"),
                 "--output", str(tmp_path / "o.npz")]) == 0
    assert _tree(tmp_path / "build") == saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "in.npz", "m.nir", "o.npz"]


def test_next_compile_removes_leftovers_of_killed_runs(tmp_path):
    model = hc.write_seed(tmp_path / "m.nir")
    _killed_between_renames(tmp_path, model)
    assert _compile(model, tmp_path / "build") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "m.nir"]


def test_a_running_compile_s_folder_is_left_alone(tmp_path):
    live = tmp_path / f".build.tmp-{os.getppid()}-xyz"     # a live process (our parent)
    live.mkdir()
    assert recover(tmp_path / "build") == []
    assert live.is_dir()


@pytest.mark.slow
def test_kill_9_at_random_moments_never_loses_the_build(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "tools" / "kill_trials.py"
    done = subprocess.run([sys.executable, str(script), "--trials", "6", "--seed", "3"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


# --- fuzz -----------------------------------------------------------------------------------

def _fuzz(tmp_path, runner_dirs, n_nir: int, n_yaml: int, n_npz: int, seed: int,
          n_config: int = 0) -> None:
    failures = []
    k = 0
    pairs = [(None, c) for c in hc.nir_mutations(n_nir, seed) + hc.yaml_mutations(n_yaml, seed)]
    pairs += hc.npz_mutations(n_npz, seed) + hc.config_mutations(n_config, seed)
    for runner, case in pairs:
        folder = tmp_path / f"c{k}"
        k += 1
        if runner is not None:
            _linked(folder, runner_dirs[runner.name])
        outcome = run_case(case, folder)
        if not outcome.ok:
            failures.append((outcome.name, outcome.problems, outcome.stderr[-600:]))
    assert not failures, failures


def test_fuzz_short(tmp_path, runner_dirs):
    """About 40 s on an idle 2-core machine."""
    _fuzz(tmp_path, runner_dirs, n_nir=60, n_yaml=30, n_npz=20, seed=0, n_config=15)


@pytest.mark.slow
def test_fuzz_long(tmp_path, runner_dirs):
    _fuzz(tmp_path, runner_dirs, n_nir=400, n_yaml=150, n_npz=80, seed=5, n_config=150)


def test_without_an_atomic_swap_the_old_build_is_moved_aside_then_removed(tmp_path, monkeypatch):
    import nirc.builddir as builddir

    moved = []
    real_rename = os.rename

    def watching_rename(src, dst):
        moved.append((Path(src).name, Path(dst).name))
        return real_rename(src, dst)

    model = hc.write_seed(tmp_path / "m.nir")
    assert _compile(model, tmp_path / "build") == 0
    monkeypatch.setattr(builddir, "_exchange", lambda a, b: False)
    monkeypatch.setattr(builddir.os, "rename", watching_rename)
    assert _compile(model, tmp_path / "build", "--dt", "2e-3") == 0
    assert [dst for _, dst in moved] == ["build", "build"]      # aside, then the new one in
    assert '"dt": 0.002' in (tmp_path / "build" / "config.json").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "m.nir"]


def test_members_the_model_does_not_need_are_never_opened(tmp_path, monkeypatch):
    import zipfile

    from nirc.npzio import read_inputs

    hc.write_zip(tmp_path / "in.npz", {"input.npy": hc.npy_bytes(np.ones((5, 4))),
                                       "junk.npy": hc.npy_header_only((5 << 30,), "|u1"),
                                       "pickle.npy": hc._pickle_member()})
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, name, *a, **k: (
        opened.append(getattr(name, "filename", name)), real_open(self, name, *a, **k))[1])
    arrays = read_inputs(str(tmp_path / "in.npz"), {"in": (4,)})
    assert opened == ["input.npy"] and arrays["in"].shape == (5, 4)
