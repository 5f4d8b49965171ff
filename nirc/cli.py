"""The `nirc` command line: a thin layer over library functions.

Each subcommand lives in nirc/commands/<name>.py with ``add_parser(subparsers)``
and ``run(args) -> int``. Errors in the user's input (NircError) print one line
``error: ...`` on stderr and exit 2; exporter quirks print ``warning: ...``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from nirc import __version__
from nirc.errors import FitError, NircError, NircWarning, printable
from nirc.progress import install as install_progress
from nirc.progress import uninstall as uninstall_progress

# Explicit, ordered registry of subcommands (module names in nirc.commands).
COMMANDS = ["inspect", "simulate", "targets", "compile", "emulate", "verify"]

log = logging.getLogger("nirc")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nirc",
        description="Compile spiking neural networks written in NIR onto neuromorphic chips, "
                    "and check by emulation that the chip computes what you trained.",
        epilog="Run 'nirc COMMAND --help' for the options of one command.")
    parser.add_argument("--version", action="version", version=f"nirc {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only print errors")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="print debugging detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"nirc.commands.{name}").add_parser(sub)
    return parser


class _PrintableFormatter(logging.Formatter):
    """Log lines with control characters from the user's files (node names) escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, NircWarning):
        print(f"warning: {printable(str(message))}", file=sys.stderr)
    else:
        log.debug("%s:%s: %s: %s", filename, lineno, category.__name__, message)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:
            handler.setFormatter(_PrintableFormatter("%(message)s"))
    if args.quiet:
        warnings.simplefilter("ignore", NircWarning)
    else:
        warnings.simplefilter("always", NircWarning)
    warnings.showwarning = _show_warning
    if args.command is None:
        parser.print_help()
        return 2
    from nirc.nirio import reader

    reader.READ_TIME_LIMIT_S = 20.0     # a stuck HDF5 read ends in one error line
    progress = install_progress(quiet=args.quiet, verbose=args.verbose)
    try:
        return int(args.run(args) or 0)
    except NircError as err:
        if progress is not None:
            progress.close()
        print(f"error: {printable(str(err))}", file=sys.stderr)
        if not args.quiet:
            if err.why or err.next:
                lines = [f"why: {err.why}"] if err.why else []
                lines += [f"next: {err.next}"] if err.next else []
            elif isinstance(err, FitError) and err.cause in (None, "size"):
                lines = fit_hints(err, getattr(args, "target", None))
            else:
                lines = []
            for line in lines:
                print(f"  {line}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        # The file system said no (missing folder, permissions, disk full): one line, naming the path.
        log.debug("file system error", exc_info=True)
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {printable(where + str(err.strerror or err))}", file=sys.stderr)
        return 2
    except MemoryError:
        # Inputs are bounded (docs/limits.md), but a valid model can still need more
        # memory than the machine has: say so in one line rather than a traceback.
        log.debug("out of memory", exc_info=True)
        print("error: out of memory: the model or input needs more memory than is available "
              "(try fewer steps or samples, or a smaller model)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        uninstall_progress()


def fit_hints(err: FitError, target) -> list[str]:
    """Two lines after a FitError for a newcomer: what the resource is, where to look next."""
    from nirc.target import CHIP_RESOURCES, RESOURCES

    known = {**RESOURCES, **CHIP_RESOURCES}
    named = [name for name in known if f"'{name}'" in str(err)]
    chip = target if isinstance(target, str) else "TARGET"
    lines = []
    if named:
        r = known[named[0]]
        scope = "the whole chip" if r.name in CHIP_RESOURCES else "one core"
        lines.append(f"why: the model is valid, but the chip is too small for it. '{r.name}' "
                     f"counts {r.meaning} [{r.unit}], a limit of {scope} in the target file.")
    else:
        lines.append("why: the model is valid, but the chip is too small for it.")
    lines.append(f"next: 'nirc targets show {chip}' lists every limit; 'nirc targets' lists "
                 f"other chips; or make the layer named above smaller or sparser.")
    return lines


if __name__ == "__main__":
    sys.exit(main())
