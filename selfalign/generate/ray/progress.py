"""The Ray run's one status line: prompts and pairs from the ledger, tok/s over this session,
workers live, and requests in flight and done per stage summed over the workers' snapshots."""

from __future__ import annotations

import time
from collections import Counter

PROGRESS_S = 10.0


class ClusterProgress:
    """Counts from recorded shards; `show` reads the workers' `state` and `snapshot`."""

    def __init__(self, total: int | None, done: dict, log) -> None:
        self.log, self.total = log, total
        self.prompts = sum(e["prompts"] for e in done.values())
        self.pairs = sum(sum(e["pairs"].values()) for e in done.values())
        self.output_tokens = 0
        self.started = self.last_shown = time.monotonic()

    def shard_done(self, entry: dict) -> None:
        self.prompts += entry["prompts"]
        self.pairs += sum(entry["pairs"].values())
        self.output_tokens += entry["output_tokens"]

    def due(self) -> bool:
        return time.monotonic() - self.last_shown >= PROGRESS_S

    def show(self, workers: list, force: bool = False) -> None:
        if not (force or self.due()):
            return
        now = time.monotonic()
        in_flight, done = Counter(), Counter()
        for worker in workers:
            if worker.state == "live":
                in_flight.update(worker.snapshot.get("in_flight", {}))
                done.update(worker.snapshot.get("done", {}))
        stages = ", ".join(f"{s} {in_flight[s]}/{done[s]}" for s in done) or "-"
        of = f"/{self.total}" if self.total is not None else ""
        live = sum(w.state == "live" for w in workers)
        rate = self.output_tokens / max(now - self.started, 1e-9)
        self.log(f"[{now - self.started:7.0f}s] prompts {self.prompts}{of}, pairs {self.pairs}, "
                 f"{rate:.0f} tok/s, workers {live}/{len(workers)} live, "
                 f"in flight/done: {stages}")
        self.last_shown = now
