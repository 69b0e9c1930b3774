"""Several click options as one decorator, so commands that share flags share one definition."""

from __future__ import annotations

from typing import Callable


def stacked(options: list[Callable]) -> Callable:
    """One decorator applying `options`; --help lists them in the list's order."""
    def apply(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command
    return apply
