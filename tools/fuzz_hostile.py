"""Fuzz nirc with hostile NIR files, target YAMLs, NPZ inputs and build configs; print the counts.

    .venv/bin/python tools/fuzz_hostile.py [--nir 500] [--yaml 150] [--npz 60] [--config 120]
                                           [--seed 1] [--json benchmarks/results/fuzz_hostile.json]

Runs the named regression cases of tests/hostile_cases.py plus that many seeded
mutations, each in a forked child (tests/fuzz_harness.py), and reports per input kind:
cases, exits 0/1/2, tracebacks, hangs over 30 s, runs that broke another rule (error
lines, partial output, leftovers, raw escapes) and the peak memory of every refused
input. Exit status 0 when every case passed. The issue 11 acceptance is
>= 500 NIR, 150 YAML and 60 NPZ cases with 0 tracebacks, 0 hangs and every refused input
under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import hostile_cases as hc  # noqa: E402
from fuzz_harness import MEMORY_LIMIT_MB, TIME_LIMIT_S, preload, run_case  # noqa: E402

KINDS = ("nir", "yaml", "npz", "config")


def cases(n_nir: int, n_yaml: int, n_npz: int, n_config: int, seed: int, big: bool):
    """(runner or None, case) pairs: named cases first, then mutations up to each count."""
    nir = hc.named_nir_cases()
    nir += hc.nir_mutations(max(0, n_nir - len(nir)), seed)
    yaml = hc.named_yaml_cases()
    yaml += hc.yaml_mutations(max(0, n_yaml - len(yaml)), seed)
    npz = hc.named_npz_cases()
    if big:   # the 5 GiB member of the issue, deflated (written once, a minute of CPU)
        shape = hc.RUNNERS[0].shape
        npz.append((hc.RUNNERS[0], hc.Case(
            "npz_extra_member_5GiB:simulate", hc.runner_argv(hc.RUNNERS[0]),
            lambda d: hc.write_zeros_member(d / "in.npz", "junk.npy", 5.0,
                                            {"input.npy": hc.npy_bytes(hc.np.zeros((5, *shape)))}),
            "npz", "out.npz")))
    npz += hc.npz_mutations(max(0, n_npz - len(npz)), seed)
    return [(None, c) for c in nir] + [(None, c) for c in yaml] + npz + \
        hc.config_mutations(n_config, seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nir", type=int, default=500)
    parser.add_argument("--yaml", type=int, default=150)
    parser.add_argument("--npz", type=int, default=60)
    parser.add_argument("--config", type=int, default=120,
                        help="builds with one damaged config.json field, emulated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--big", action="store_true", help="also the 5 GiB NPZ member case")
    parser.add_argument("--json", type=Path, default=None, help="write the counts here")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per case")
    args = parser.parse_args()

    preload()
    stats: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    peaks: dict[str, float] = defaultdict(float)
    failures = []
    prepared: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="nirc-fuzz-") as tmp:
        root = Path(tmp)
        for k, (runner, case) in enumerate(cases(args.nir, args.yaml, args.npz, args.config,
                                                 args.seed, args.big)):
            folder = root / f"case{k}"
            folder.mkdir()
            if runner is not None:
                base = prepared.get(runner.name)
                if base is None:
                    base = prepared[runner.name] = root / f"runner-{runner.name}"
                    base.mkdir()
                    hc.prepare_runner(runner, base)
                for entry in base.iterdir():
                    (folder / entry.name).symlink_to(entry)
            o = run_case(case, folder)
            s = stats[case.kind]
            s["cases"] += 1
            s[f"exit_{o.code}"] += 1
            s["tracebacks"] += "traceback" in o.problems
            s["hangs"] += any(p.startswith("hang") for p in o.problems)
            s["other_problems"] += bool(o.problems) and not any(
                p == "traceback" or p.startswith("hang") for p in o.problems)
            s["max_seconds"] = max(s["max_seconds"], round(o.seconds, 2))
            if o.code != 0:
                peaks[case.kind] = max(peaks[case.kind], o.peak_mb)
                s["over_memory_limit"] += o.peak_mb > MEMORY_LIMIT_MB
            if o.problems:
                failures.append(o)
            if args.verbose or o.problems:
                last = (o.stderr.strip().splitlines() or [""])[-1][:150]
                print(f"{'FAIL' if o.problems else 'ok  '} {o.name} exit={o.code} "
                      f"{o.seconds:.1f}s {o.peak_mb:.0f}MB {o.problems or ''} {last}", flush=True)
            import shutil

            shutil.rmtree(folder, ignore_errors=True)

    print(f"\n{'kind':6} {'cases':>6} {'exit0':>6} {'exit1':>6} {'exit2':>6} {'traceb.':>8} "
          f"{'hangs':>6} {'other':>6} {'max s':>7} {'peak MB (refused)':>18}")
    for kind in KINDS:
        s = stats[kind]
        print(f"{kind:6} {s['cases']:6} {s['exit_0']:6} {s['exit_1']:6} {s['exit_2']:6} "
              f"{s['tracebacks']:8} {s['hangs']:6} {s['other_problems']:6} "
              f"{s['max_seconds']:7.1f} {peaks[kind]:18.0f}")
    print(f"limits: {TIME_LIMIT_S:.0f} s per case, {MEMORY_LIMIT_MB} MB peak per refused input; "
          f"{len(failures)} case(s) failed")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "seed": args.seed, "time_limit_s": TIME_LIMIT_S, "memory_limit_mb": MEMORY_LIMIT_MB,
            "kinds": {k: {**dict(stats[k]), "peak_mb_refused": round(peaks[k])}
                      for k in KINDS},
            "failures": [{"case": o.name, "problems": o.problems} for o in failures]},
            indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
