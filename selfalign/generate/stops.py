"""How a run stops early on a signal, for both executors: SIGINT and SIGTERM become
`RunInterrupted`, which the run turns into a message with the resume command."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(Exception):
    """SIGINT or SIGTERM arrived; the ledger is consistent and the run can be resumed."""


class SignalFlag:
    """Records the first stop signal; the owner's loop checks it and stops between steps."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def raise_if_set(self) -> None:
        if self.signal:
            raise RunInterrupted(self.signal)

    @contextmanager
    def installed(self) -> Iterator["SignalFlag"]:
        """Our handlers for the duration, the previous ones after. Ray's own SIGTERM handler
        (set by `ray.init`) would exit at once, without the resume command or the lock."""
        def note(signum, frame) -> None:
            self.signal = self.signal or signal.Signals(signum).name

        previous = {signum: signal.signal(signum, note) for signum in STOP_SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
