"""User-facing errors: raised for bad input, printed without a traceback by the CLI."""


class UserError(Exception):
    """Bad input or settings; the message says what, where, and how to fix it."""


class NothingToDo(Exception):
    """The work asked for is already done (e.g. `--resume` on a complete run): the CLI prints
    the message and exits 0, so a requeued batch job that resumes unconditionally succeeds."""
