"""User-facing errors: raised for bad input, printed without a traceback by the CLI."""


class UserError(Exception):
    """Bad input or settings; the message says what, where, and how to fix it."""
