"""One progress display for a run: prompts done of the total, pairs so far, output tok/s, and
per stage the requests in flight and done.

On a terminal it is a tqdm bar; elsewhere (CI, nohup, a log file) carriage-return redraws would
pile up, so it prints a plain status line every `interval` seconds, and each time another tenth
of the prompts is done: a log of a long or slowed-down run stays short, a quick one still shows
its pace.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from tqdm.auto import tqdm

from selfalign.engine.base import Completion, Request
from selfalign.generate.rows import sample_status
from selfalign.stages.sample import Sample

REDRAW_SECONDS = 0.5


class RunProgress:
    def __init__(self, total: int | None, stream: TextIO = sys.stderr,
                 interval: float = 60.0) -> None:
        self.total, self.stream, self.interval = total, stream, interval
        self.live = hasattr(stream, "isatty") and stream.isatty()
        self.bar = tqdm(total=total, unit="prompt", desc="prompts", file=stream,
                        dynamic_ncols=True, disable=not self.live)
        self.in_flight: Counter = Counter()
        self.done: Counter = Counter()
        self.prompts = self.pairs = self.output_tokens = 0
        self.started = time.monotonic()
        self.last_shown = 0.0
        self.tenths_shown = 0  # tenths of the total prompts already reported (plain lines)
        self.counts_shown: tuple = ()  # what the last plain line said

    # -- what the flow reports ---------------------------------------------------------------

    def request_sent(self, request: Request) -> None:
        self.in_flight[_stage(request)] += 1

    def request_done(self, request: Request, completion: Completion) -> None:
        stage = _stage(request)
        self.in_flight[stage] -= 1
        self.done[stage] += 1
        self.output_tokens += completion.output_tokens
        self._show()

    def prompt_done(self, samples: list[Sample]) -> None:
        self.prompts += 1
        # A sample's own pair, or (rank mode) the comparisons it won.
        self.pairs += sum((sample_status(s) == "pair") + len(s.won) for s in samples)
        self.bar.update(1)
        self._show()

    def skipped(self, prompts: int) -> None:
        """Prompts of shards a resumed run had already finished."""
        self.prompts += prompts
        self.bar.update(prompts)

    def close(self) -> None:
        self._show(force=self._counts() != self.counts_shown)  # no repeat of the last line
        self.bar.close()

    # -- rendering ---------------------------------------------------------------------------

    def status(self) -> str:
        seconds = time.monotonic() - self.started
        rate = self.output_tokens / seconds if seconds > 0 else 0.0
        stages = ", ".join(f"{s} {self.in_flight[s]}/{self.done[s]}" for s in self.in_flight)
        return f"pairs {self.pairs}, {rate:.0f} tok/s, in flight/done: {stages or '-'}"

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.live:
            if force or now - self.last_shown >= REDRAW_SECONDS:
                self.bar.set_postfix_str(self.status(), refresh=True)
                self.last_shown = now
        elif force or now - self.last_shown >= self.interval or self._new_tenth():
            self.tenths_shown = self._tenths()
            of = f"/{self.total}" if self.total is not None else ""
            print(f"[{now - self.started:7.0f}s] prompts {self.prompts}{of}, {self.status()}",
                  file=self.stream, flush=True)
            self.last_shown, self.counts_shown = now, self._counts()

    def _counts(self) -> tuple:
        return self.prompts, self.pairs, sum(self.done.values())

    def _tenths(self) -> int:
        return 10 * self.prompts // self.total if self.total else 0

    def _new_tenth(self) -> bool:
        return self._tenths() > self.tenths_shown


def _stage(request: Request) -> str:
    """'critique r2' and 'critique r1' are one stage on the display."""
    return request.stage.split()[0] if request.stage else "request"
