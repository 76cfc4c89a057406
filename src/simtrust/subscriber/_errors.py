"""Errors specific to the subscriber package (all under :mod:`simtrust.errors`).

::

    InvalidInput
    └── ImportRejected      a bulk file had bad rows; ``errors`` lists every one by line
    NotImplementedHere (501) a request for a feature this home network does not offer
                            (e.g. a SUCI protection scheme; TS 29.503 UNSUPPORTED_PROTECTION_SCHEME)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from simtrust.errors import InvalidInput, SimtrustError

__all__ = ["ImportRejected", "NotImplementedHere", "RowError"]

#: At most this many row errors are copied into the problem document.
_CONTEXT_ERRORS = 1000


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad row of an imported file: 1-based line number (header is line 1)."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "field": self.field, "message": self.message}


class ImportRejected(InvalidInput):
    """A file was rejected whole; nothing was written. ``errors`` holds every bad row."""

    code = "import-rejected"
    title = "Import rejected"

    def __init__(self, errors: Sequence[RowError], rows: int) -> None:
        first = errors[0] if errors else None
        bad_rows = len({e.line for e in errors})
        super().__init__(
            f"{bad_rows} bad row(s) of {rows}; nothing was imported"
            + (f" (first: {first})" if first else ""),
            bad_rows=bad_rows,
            rows=rows,
            errors=[str(e) for e in errors[:_CONTEXT_ERRORS]],
        )
        self.errors = list(errors)
        self.rows = rows


class NotImplementedHere(SimtrustError):
    """The request needs a feature this home network does not offer."""

    code = "not-implemented"
    status = 501
    title = "Not implemented"
