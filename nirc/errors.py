"""The errors and warnings nirc shows to users.

Every problem with a user's input is a NircError whose message is one line
naming the file, the node and the parameter; the CLI prints it as
``error: ...`` and exits with status 2. Recoverable oddities (exporter quirks)
are NircWarning, issued through :mod:`warnings` so callers can record them.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (ANSI escapes, newlines, tabs) shown
    as Python escapes (\\x1b, \\n), so a node name cannot recolour the terminal or forge a
    second line of output."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def locate(file: str | None = None, node: str | None = None, field: str | None = None) -> str:
    """'model.nir: node 'lif1', parameter 'tau'' — the prefix every message starts with."""
    parts = []
    if file:
        parts.append(str(file))
    where = []
    if node:
        where.append(f"node '{node}'")
    if field:
        where.append(f"parameter '{field}'")
    if where:
        parts.append(", ".join(where))
    return ": ".join(parts)


class NircError(Exception):
    """A problem with the user's input (model, target, options): shown as one line, exit 2."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, node: str | None = None,
                 field: str | None = None, why: str | None = None, next: str | None = None,
                 cause: str | None = None, details: dict | None = None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.node = node
        self.field = field
        # The CLI prints these under the error line: the real cause, and a fix it offers.
        self.why = why
        self.next = next
        # What kind of refusal this is ('time_constant', 'topology', 'size', ...), and the
        # numbers behind it, so that code knowing more (the exporter) can refine why/next.
        self.cause = cause
        self.details = dict(details or {})
        super().__init__(self.__str__())

    def __str__(self) -> str:
        prefix = locate(self.file, self.node, self.field)
        return f"{prefix}: {self.message}" if prefix else self.message

    def at(self, *, file: str | None = None, node: str | None = None,
           field: str | None = None) -> "NircError":
        """A copy with missing location parts filled in (inner code knows the field, outer the file)."""
        return type(self)(self.message,
                          file=self.file or file,
                          node=self.node or node,
                          field=self.field or field,
                          why=self.why, next=self.next, cause=self.cause, details=self.details)

    def hinted(self, why: str | None, next: str | None) -> "NircError":
        """A copy with other why/next lines."""
        err = self.at()
        err.why, err.next = why, next
        return err


class ModelError(NircError):
    """The NIR model is malformed or inconsistent."""


class TargetError(NircError):
    """A target description (YAML) is invalid, or the model cannot run on the target."""


class FitError(TargetError):
    """The model is valid but does not fit the chip's resources."""


class NircWarning(UserWarning):
    """An oddity nirc recovered from (an exporter quirk); always shown, never silent."""
