"""Rejects counted by reason, with the first places each came from: what a user needs to read
when a step keeps nothing."""

from __future__ import annotations

from collections import Counter, defaultdict

PLACES_SHOWN = 3


class RejectTally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.places: dict[str, list[str]] = defaultdict(list)

    def add(self, reason: str, source: str | None, line: int | None) -> None:
        self.counts[reason] += 1
        if len(self.places[reason]) < PLACES_SHOWN:
            where = source or "input"
            self.places[reason].append(f"{where} line {line}" if line is not None else where)

    def lines(self) -> list[str]:
        """One line per reason, most frequent first: `reason: count (at place, place, ...)`."""
        shown = []
        for reason, count in self.counts.most_common():
            places = ", ".join(self.places[reason])
            more = ", ..." if count > len(self.places[reason]) else ""
            shown.append(f"{reason}: {count} (at {places}{more})")
        return shown

    def message(self, what: str, rejects_file: str) -> str:
        total = sum(self.counts.values())
        return (f"{what}: {total} row(s) read, every one rejected. By reason:\n  "
                + "\n  ".join(self.lines() or ["(the input has no rows)"])
                + f"\nEvery rejected row and its reason is in {rejects_file}.")
