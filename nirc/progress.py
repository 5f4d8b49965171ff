"""What the command line shows while it works: progress on a terminal, quiet in a pipe.

The driver logs the start and end of every stage (read, each pass, calibrate,
partition, emit) with ``extra={"stage": name, "seconds": None | s}`` on the
``nirc.driver`` logger. :func:`install` routes those records by where stderr goes:

- a terminal: a rich spinner names the running stage (``compiling: partition``),
  and each finished stage leaves one dim line with its time;
- a pipe or file: nothing per stage (the command's own summary and errors still
  print), so CI logs and redirected output stay short;
- ``--verbose``: every log line, as plain text, wherever stderr goes;
- ``--quiet``: errors only.
"""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.status import Status

DRIVER_LOGGER = "nirc.driver"


class StageProgress(logging.Handler):
    """Shows the driver's stages on a rich console: a live spinner, then a line per stage."""

    def __init__(self, console: Console):
        super().__init__(level=logging.DEBUG)
        self.console = console
        self.status: Status | None = None

    def emit(self, record: logging.LogRecord) -> None:
        stage = getattr(record, "stage", None)
        if stage is None:
            if record.levelno >= logging.INFO:
                self._stop()
                self.console.print(record.getMessage(), markup=False, highlight=False)
            return
        seconds = getattr(record, "seconds", None)
        if seconds is None:
            if self.status is None:
                self.status = self.console.status(f"compiling: {stage}", spinner="dots")
                self.status.start()
            else:
                self.status.update(f"compiling: {stage}")
            return
        self.console.print(f"[dim]  {stage:<12} {seconds:7.3f} s[/dim]", highlight=False)

    def _stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def close(self) -> None:
        self._stop()
        super().close()


def uninstall() -> None:
    """Give the driver's logger back to the root logger (the library default)."""
    driver = logging.getLogger(DRIVER_LOGGER)
    for handler in [h for h in driver.handlers if isinstance(h, StageProgress)]:
        driver.removeHandler(handler)
        handler.close()
    driver.propagate = True
    driver.setLevel(logging.NOTSET)


def install(quiet: bool, verbose: bool, stream=None) -> logging.Handler | None:
    """Configure the driver's logger for the CLI; returns the progress handler if one is shown.

    Call :func:`uninstall` when the command is done (nirc.cli.main does).
    """
    stream = stream if stream is not None else sys.stderr
    uninstall()
    driver = logging.getLogger(DRIVER_LOGGER)
    if quiet or verbose:
        return None
    if not stream.isatty():
        driver.setLevel(logging.WARNING)
        return None
    handler = StageProgress(Console(file=stream))
    driver.setLevel(logging.DEBUG)
    driver.addHandler(handler)
    driver.propagate = False
    return handler
