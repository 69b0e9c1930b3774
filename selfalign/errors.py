"""User-facing errors: raised for bad input, printed without a traceback by the CLI."""

from __future__ import annotations

from dataclasses import dataclass


class UserError(Exception):
    """Bad input or settings; the message says what, where, and how to fix it."""


class NothingToDo(Exception):
    """The work asked for is already done (e.g. `--resume` on a complete run): the CLI prints
    the message and exits 0, so a requeued batch job that resumes unconditionally succeeds."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file; `str()` gives `file:line: field: message`."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
