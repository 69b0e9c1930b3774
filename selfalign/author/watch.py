"""`--watch`: the files a constitution was loaded from, polled for saves.

Polling modification times needs no dependency and no platform's file events, and a few dozen
`stat` calls every quarter second cost nothing beside a model turn. Watched: every file given
(every YAML file below a folder given, so a new file counts) and every file the last good load
read (a manifest's principles and exemplars).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Iterable

from selfalign.constitution.loader import YAML_SUFFIXES

POLL_SECONDS = 0.25
SETTLE_SECONDS = 0.05  # an editor's save may write in steps: wait until the file holds still

Stamps = dict[Path, tuple[int, int] | None]


class Watcher:
    """Notices saves to the given paths and to the files of the last good load."""

    def __init__(self, paths: Iterable[Path], poll: float = POLL_SECONDS) -> None:
        self.paths = [Path(p) for p in paths]
        self.loaded: list[Path] = []
        self.poll = poll
        self.stamps = self._stamps()

    def files(self) -> list[Path]:
        found: list[Path] = []
        for path in self.paths:
            found += (sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES)
                      if path.is_dir() else [path])
        return list(dict.fromkeys(found + self.loaded))

    def now_loaded(self, files: Iterable[str]) -> None:
        """The files a good load read; watched from now on. The stamps are taken again, so
        a save made while the trial ran is seen by the next `saved`."""
        self.loaded = [Path(f) for f in files]
        self.stamps.update({p: s for p, s in self._stamps().items() if p not in self.stamps})

    async def saved(self) -> tuple[list[Path], float]:
        """Wait for the next save; return the files that changed and when (the newest
        modification time, as `time.time()` counts)."""
        while True:
            await asyncio.sleep(self.poll)
            now = self._stamps()
            if now == self.stamps:
                continue
            await asyncio.sleep(SETTLE_SECONDS)
            settled = self._stamps()
            if settled != now:
                continue
            changed = [p for p in settled if settled[p] != self.stamps.get(p)]
            self.stamps = settled
            when = max((settled[p][0] / 1e9 for p in changed if settled[p]), default=time.time())
            return changed, when

    def _stamps(self) -> Stamps:
        stamps: Stamps = {}
        for path in self.files():
            try:
                stat = path.stat()
                stamps[path] = (stat.st_mtime_ns, stat.st_size)
            except OSError:  # removed, or mid-save by an editor that replaces the file
                stamps[path] = None
        return stamps
