"""Run hostile cases (tests/hostile_cases.py) through `nirc` and judge each run.

Each case runs in a forked child of a process that has imported nirc once (fast, and
the child's own peak memory and exit status are measured with os.wait4). A run passes
when it exits 0, 1 or 2; prints no traceback and no raw control character; on exit 2
prints exactly one ``error:`` line; leaves no output and no hidden leftover when it
fails; ends within the time limit; and, when it refuses the input, peaks under the
memory limit.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile_cases import Case  # noqa: E402

TIME_LIMIT_S = 30.0
MEMORY_LIMIT_MB = 2048
# Hard cap on a child's address space, so a regression cannot take the machine down.
ADDRESS_SPACE_CAP = 12 << 30


@dataclass
class Outcome:
    name: str
    kind: str
    code: int | None
    seconds: float
    peak_mb: float
    stderr: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def preload() -> None:
    """Import what the commands import, once, so forked children start at once."""
    import nirc.cli  # noqa: F401
    from nirc.cli import build_parser

    build_parser()
    import nirc.driver  # noqa: F401
    import nirc.emulator  # noqa: F401
    import nirc.partition  # noqa: F401
    import nirc.simulate  # noqa: F401
    import nirc.verify  # noqa: F401
    from nirc.target import list_targets

    list_targets()


def run_case(case: Case, folder: Path, time_limit: float = TIME_LIMIT_S) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    case.files(folder)
    argv = [a.replace("{d}", str(folder)) for a in case.argv]
    out_path, err_path = folder / ".stdout", folder / ".stderr"
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: run nirc, exit with its status
        code = 99
        try:
            resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))
            os.dup2(os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
            os.dup2(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
            # pytest replaces sys.stdout/err with capture objects: write to the real fds
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            from nirc.cli import main

            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:
            traceback.print_exc()
            code = 99
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code if isinstance(code, int) else 99)
    status, usage, timed_out = None, None, False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() - start > time_limit:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            timed_out = True
            break
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_text(errors="replace")
    stdout = out_path.read_text(errors="replace")
    outcome = Outcome(case.name, case.kind, code, seconds, usage.ru_maxrss / 1024, stderr)
    judge(outcome, case, folder, stdout, timed_out)
    return outcome


def judge(o: Outcome, case: Case, folder: Path, stdout: str, timed_out: bool) -> None:
    if timed_out:
        o.problems.append(f"hang: killed after {o.seconds:.0f} s")
        return
    if "Traceback" in o.stderr:
        o.problems.append("traceback")
    if o.code not in (0, 1, 2):
        o.problems.append(f"exit status {o.code}")
    if "\x1b" in o.stderr or "\x1b" in stdout:
        o.problems.append("raw escape sequence printed")
    errors = [ln for ln in o.stderr.splitlines() if ln.startswith("error:")]
    if o.code == 2 and len(errors) != 1 and "usage:" not in o.stderr:
        o.problems.append(f"{len(errors)} error lines")
    if o.code != 0:
        if case.output and (folder / case.output).exists() and case.output == "out.npz":
            o.problems.append("partial output")
        if o.peak_mb > MEMORY_LIMIT_MB:
            o.problems.append(f"peak memory {o.peak_mb:.0f} MB on a refused input")
    hidden = [p.name for p in folder.iterdir() if p.name.startswith((".out", ".build"))]
    if hidden:
        o.problems.append(f"leftovers {hidden}")
    if case.output == "out" and o.code != 0 and (folder / "out").exists():
        o.problems.append("partial build")


def run_all(cases: list[Case], root: Path, keep: bool = False, progress=None) -> list[Outcome]:
    outcomes = []
    for k, case in enumerate(cases):
        folder = root / f"case{k}"
        outcomes.append(run_case(case, folder))
        if progress:
            progress(outcomes[-1])
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return outcomes
