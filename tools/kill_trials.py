"""kill -9 a compile at random moments over an existing build; check nothing is lost.

    .venv/bin/python tools/kill_trials.py [--trials 30] [--seed 0] [--json PATH]

A mid-size model (an MLP with about 3,100 neurons and 3M synapses, for loihi2) is
compiled once with dt = 1 ms (the "old" build) and once with dt = 2 ms (the "new" one).
Each trial puts the old build in place, starts the new compile, sends SIGKILL at a
random moment (half uniform over a whole compile, half in its last 15 %, where the
build is swapped into place), and checks that:

1. right after the kill, ``build/`` holds the old build or the new one, complete
   (config.json, arrays.npz, report.json and the marker byte-identical to one of them);
2. the next compile succeeds, leaves the new build, and no hidden ``.build.*`` leftover
   remains beside it.

Prints one line per trial and a summary; exit status 0 when every trial passed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from h5tree import graph_tree, write_tree  # noqa: E402

COMPARED = (".nirc-build", "config.json", "arrays.npz", "report.json")


def model(path: Path) -> Path:
    rng = np.random.default_rng(0)
    sizes = [384, 1536, 1536, 10]
    nodes = {"input": {"type": "Input", "shape": np.array([sizes[0]])}}
    edges, prev = [], "input"
    for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
        nodes[f"fc{k}"] = {"type": "Affine", "weight": rng.normal(0, 0.3, (b, a)),
                           "bias": np.zeros(b)}
        nodes[f"lif{k}"] = {"type": "LIF", "tau": np.full(b, 0.02), "r": np.ones(b),
                            "v_leak": np.zeros(b), "v_threshold": np.ones(b),
                            "v_reset": np.zeros(b)}
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"lif{k}")]
        prev = f"lif{k}"
    nodes["output"] = {"type": "Output", "shape": np.array([sizes[-1]])}
    edges.append((prev, "output"))
    return write_tree(path, graph_tree(nodes, edges))


def command(nir: Path, out: Path, dt: str) -> list[str]:
    return [sys.executable, "-m", "nirc", "-q", "compile", str(nir), "--target", "loihi2",
            "--dt", dt, "-o", str(out), "--calibration-steps", "50"]


def snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.is_dir():
        return None
    try:
        return {name: (folder / name).read_bytes() for name in COMPARED}
    except OSError:
        return None


def hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".build."))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="nirc-kill-") as tmp:
        work = Path(tmp)
        nir = model(work / "mid.nir")
        subprocess.run(command(nir, work / "ref-old", "1e-3"), check=True, env=env)
        start = time.perf_counter()
        subprocess.run(command(nir, work / "ref-new", "2e-3"), check=True, env=env)
        full = time.perf_counter() - start
        old, new = snapshot(work / "ref-old"), snapshot(work / "ref-new")
        assert old and new and old["config.json"] != new["config.json"]
        print(f"model: {nir.stat().st_size / 1e6:.1f} MB; one compile takes {full:.1f} s")
        counts = {"old": 0, "new": 0, "neither": 0, "finished": 0, "leftovers_after": 0,
                  "recompile_failed": 0, "leftovers_right_after_kill": 0}
        trials = []
        site = work / "site"
        for k in range(args.trials):
            shutil.rmtree(site, ignore_errors=True)
            site.mkdir()
            shutil.copytree(work / "ref-old", site / "build")
            delay = full * (rng.uniform(0, 1.0) if k % 2 == 0 else rng.uniform(0.85, 1.05))
            proc = subprocess.Popen(command(nir, site / "build", "2e-3"), env=env)
            time.sleep(delay)
            finished = proc.poll() is not None
            if not finished:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            found = snapshot(site / "build")
            state = "old" if found == old else "new" if found == new else "neither"
            counts[state] += 1
            counts["finished"] += finished
            left = hidden(site)
            counts["leftovers_right_after_kill"] += bool(left)
            again = subprocess.run(command(nir, site / "build", "2e-3"), env=env)
            after = hidden(site)
            ok_after = again.returncode == 0 and snapshot(site / "build") == new and not after
            counts["leftovers_after"] += bool(after)
            counts["recompile_failed"] += again.returncode != 0
            trials.append({"trial": k, "kill_after_s": round(delay, 3), "finished": finished,
                           "found": state, "leftovers": left, "after_next_compile": after,
                           "ok": state != "neither" and ok_after})
            print(f"trial {k:2}: kill at {delay:5.2f} s{' (already done)' if finished else ''}: "
                  f"build/ holds the {state} build; leftovers {left or 'none'}; next compile "
                  f"{'ok' if ok_after else 'FAILED'}{' ' + str(after) if after else ''}",
                  flush=True)
    passed = sum(t["ok"] for t in trials)
    print(f"\n{passed}/{len(trials)} trials passed: old build {counts['old']}, new build "
          f"{counts['new']}, neither {counts['neither']}; leftovers right after the kill "
          f"{counts['leftovers_right_after_kill']}, after the next compile "
          f"{counts['leftovers_after']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"trials": len(trials), "passed": passed,
                                         "compile_seconds": round(full, 2), **counts,
                                         "per_trial": trials}, indent=1) + "\n")
    return 0 if passed == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
