"""Writing NPZ files byte for byte reproducibly.

``numpy.savez`` stamps every member with the current time, so two identical
builds would differ. This writer stores the same .npy members (readable by
``numpy.load``) with a fixed timestamp, in the order given, uncompressed.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

_EPOCH = (1980, 1, 1, 0, 0, 0)
# What the writer holds in memory before writing it out (between members).
_SPOOL_BYTES = 16 << 20


def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as an NPZ archive with reproducible bytes."""
    # Arrays of one dtype and shape share their .npy header: numpy writes it once per kind
    # (a 10^5-node build has 250,000 small arrays of a handful of kinds).
    headers: dict[tuple[np.dtype, tuple[int, ...]], bytes] = {}
    with open(path, "wb") as file:
        spool = _Spool(file)
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED,
                             allowZip64=True) as zf:
            for key, value in arrays.items():
                value = np.ascontiguousarray(value)
                header = headers.get((value.dtype, value.shape))
                if header is None:
                    buf = io.BytesIO()
                    np.lib.format.write_array(buf, value, allow_pickle=False)
                    member = buf.getvalue()
                    headers[value.dtype, value.shape] = member[:len(member) - value.nbytes]
                else:
                    member = header + value.tobytes()
                info = zipfile.ZipInfo(f"{key}.npy", date_time=_EPOCH)
                info.external_attr = 0o644 << 16
                zf.writestr(info, member)
                spool.settle()
        spool.flush()


class _Spool:
    """A file zipfile writes through with what came since the last ``settle`` held in
    memory: zipfile seeks back to each member's header to fill in its CRC, and on a real
    file every such seek is a flush and system calls (a third of writing 250,000 small
    members). ``settle`` (between members: zipfile never seeks back past the member it
    writes) writes the held bytes out once there are _SPOOL_BYTES of them; ``flush`` writes
    out whatever is held."""

    def __init__(self, file: io.BufferedIOBase):
        self._file = file
        self._start = file.tell()          # where the held bytes go in the file
        self._held = io.BytesIO()

    def write(self, data) -> int:
        return self._held.write(data)

    def tell(self) -> int:
        return self._start + self._held.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET or offset < self._start:
            raise OSError("the spool seeks only within what it holds")
        self._held.seek(offset - self._start)
        return offset

    def settle(self) -> None:
        if self._held.tell() >= _SPOOL_BYTES and self._held.tell() == len(self._held.getbuffer()):
            self.flush()

    def flush(self) -> None:
        """Write out everything held (zipfile calls it after the central directory)."""
        held = self._held.getbuffer()
        self._file.write(held)
        self._start += len(held)
        del held
        self._held = io.BytesIO()
