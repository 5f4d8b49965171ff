"""Files that appear whole or not at all: write to a temporary path beside the target, then rename.

Only a regular file (or nothing) is ever replaced. A symbolic link is followed: the file
it points to is replaced and the link stays. A device node, FIFO or other special file
(``--output /dev/null``, a named pipe another program reads) is written through — opened
and written like any file, never renamed over. A directory, or a link to nothing, is
refused with a one-line NircError.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from nirc.errors import NircError


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path; when the block succeeds its content becomes ``path``'s
    (renamed over a regular file, copied into a special file). On failure ``path`` is
    untouched and the temporary file removed."""
    given = Path(path)
    if given.is_symlink() and not given.exists():
        raise NircError("is a symbolic link to nothing; refusing to write through it",
                        file=str(given))
    target = Path(os.path.realpath(given))
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise NircError("is a directory; give a file name", file=str(given))
    special = mode is not None and not stat.S_ISREG(mode)
    if special:
        fd, tmp = tempfile.mkstemp(prefix="nirc-", suffix=".tmp")   # not beside /dev/null
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        if special:
            with open(tmp, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            Path(tmp).unlink()
        else:
            os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
