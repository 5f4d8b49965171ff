"""Build directories that are replaced whole, never lost, and only when nirc wrote them.

A build is written into a hidden sibling ``.<name>.tmp-<pid>-<random>`` and put in place
only when complete. Replacing an earlier build swaps the two directories in one atomic
``renameat2(RENAME_EXCHANGE)`` (Linux), so at every instant ``<name>`` is the old build
or the new one; where the file system cannot swap, the old build is first moved into
``.<name>.old-<pid>-<random>/`` and the new one renamed in, and a run killed between the
two renames leaves the old build there to be restored.

:func:`recover` is the other half: run at the start of every compile into, and every
emulate of, a build directory, it restores a build left in ``.old-*`` when ``<name>`` is
missing, and removes every ``.tmp-*`` / ``.old-*`` leftover of a process that no longer
runs (a concurrent run's own working folder is left alone).

Only a folder nirc can prove it wrote may be replaced: it holds the marker file
:data:`MARKER` listing the files of the build, and nothing else but those files (and the
optional ones in :data:`OPTIONAL`). Anything else — a project folder that happens to hold
a config.json, a build someone added files to — is refused, never renamed or deleted.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from nirc.errors import NircError

MARKER = ".nirc-build"
MARKER_FORMAT = "nirc-build-marker"
# Files nirc may add to a build after it is in place (`compile --report`).
OPTIONAL = ("report.html",)
_KINDS = ("tmp", "old")


def write_marker(directory: Path) -> None:
    """Record what nirc wrote into ``directory`` (call last, once the build is complete)."""
    files = sorted(p.name for p in directory.iterdir() if p.name != MARKER)
    (directory / MARKER).write_text(json.dumps({"format": MARKER_FORMAT, "files": files},
                                               indent=1) + "\n")


def foreign_entries(directory: Path) -> list[str] | None:
    """Entries of ``directory`` nirc did not write ([] for a pure nirc build or an empty
    folder), or None when it has no readable marker (and is not empty)."""
    entries = sorted(p.name for p in directory.iterdir())
    if not entries:
        return []
    try:
        marker = json.loads((directory / MARKER).read_text())
        listed = set(marker["files"]) if marker.get("format") == MARKER_FORMAT else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        listed = None
    if listed is None:
        return None
    return [e for e in entries if e != MARKER and e not in listed and e not in OPTIONAL]


def is_build(directory: Path) -> bool:
    return directory.is_dir() and not directory.is_symlink() \
        and foreign_entries(directory) == [] and (directory / MARKER).is_file()


def _leftovers(out: Path) -> list[tuple[str, int | None, Path]]:
    found = []
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return found
    for entry in entries:
        for kind in _KINDS:
            prefix = f".{out.name}.{kind}-"
            if entry.name.startswith(prefix) and entry.is_dir() and not entry.is_symlink():
                pid_text = entry.name[len(prefix):].split("-", 1)[0]
                found.append((kind, int(pid_text) if pid_text.isdigit() else None, entry))
    return found


def _alive(pid: int | None) -> bool:
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(out: str | Path) -> list[str]:
    """Tidy after a killed run: restore ``out`` from a complete ``.old-*`` build when it is
    missing, and remove the leftovers of dead processes. Returns what was done, in words."""
    out = Path(os.path.abspath(out))
    done = []
    leftovers = [(kind, pid, path) for kind, pid, path in _leftovers(out) if not _alive(pid)]
    if not out.exists() and not out.is_symlink():
        for kind, _, path in leftovers:
            saved = path / out.name
            if kind == "old" and is_build(saved):
                os.rename(saved, out)
                done.append(f"restored the previous build from {path.name}")
                break
    for _, _, path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
        done.append(f"removed {path.name}")
    return done


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))


def check_replaceable(out: Path) -> None:
    """NircError unless ``out`` is absent, an empty folder, or a build nirc wrote."""
    if out.is_symlink() and not out.exists():
        raise NircError("is a symbolic link to nothing; choose another output path",
                        file=str(out))
    if out.exists() and not out.is_dir():
        raise NircError("exists and is not a directory; choose another output path", file=str(out))
    if out.is_dir():
        foreign = foreign_entries(out)
        if foreign is None:
            raise NircError(f"exists and is not a nirc build (no {MARKER} marker); refusing to "
                            "replace it: choose a new or empty output directory (a build "
                            "written by an older nirc has no marker: delete it yourself)",
                            file=str(out))
        if foreign:
            shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
            raise NircError(f"is a nirc build but also holds files nirc did not write ({shown}); "
                            "refusing to replace it, move them or choose another output "
                            "directory", file=str(out))


def write_build_dir(out_dir: str | Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp_dir)`` and put tmp_dir in place of ``out_dir`` only if it succeeded;
    ``out_dir`` is at every instant the previous build or the new one."""
    out = Path(out_dir).resolve()
    recover(out)
    check_replaceable(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NircError(f"cannot create the output directory ({err.strerror})",
                        file=str(out.parent)) from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        write(tmp)
        write_marker(tmp)
        _default_permissions(tmp)
        _put_in_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _default_permissions(directory: Path) -> None:
    """mkdtemp creates 0700; a build is an ordinary folder (0777 minus the umask)."""
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)


def _put_in_place(tmp: Path, out: Path) -> None:
    for _ in range(3):      # a concurrent run may create out between the check and the rename
        if not out.exists():
            try:
                os.rename(tmp, out)
                return
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
        check_replaceable(out)
        if _exchange(tmp, out):
            shutil.rmtree(tmp, ignore_errors=True)     # now holds the previous build
            return
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
        os.rename(out, old / out.name)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
        return
    raise NircError("is being replaced by another nirc run; try again", file=str(out))
