"""A `principles try` session: the engine built once, a trial, and with `--watch` one more trial
per save until Ctrl-C. Everything a person reads goes to `out`; engine progress to `err`."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

from selfalign.author.compare import comparison_json, render_comparison
from selfalign.author.render import Page, render_trial, trial_json
from selfalign.author.trial import Remembering, Trial, run_trial
from selfalign.author.watch import Watcher
from selfalign.constitution import Constitution, load_constitution
from selfalign.constitution.model import ConstitutionError
from selfalign.engine.base import Engine, EngineFailure
from selfalign.errors import UserError
from selfalign.generate.settings import GenerateSettings
from selfalign.generate.stops import STOP_SIGNALS
from selfalign.quiet import ENGINE_OWN_GROUP
from selfalign.records import PromptRecord


@dataclass
class Session:
    """What stays the same from one trial to the next: prompts, seeds, the engine."""

    paths: list[Path]
    settings: GenerateSettings
    records: list[PromptRecord]
    page: Page
    out: IO
    err: IO
    as_json: bool = False
    old: tuple[str, Constitution] | None = None  # --against: (label, constitution)
    label: str = ""

    def say(self, lines: list[str]) -> None:
        self.out.write("".join(line + "\n" for line in lines))
        self.out.flush()

    async def trial(self, constitution: Constitution,
                    ask: Remembering) -> tuple[Trial, Trial | None]:
        new = run_trial(self.label, constitution, self.settings, self.records, ask)
        if self.old is None:
            return await new, None
        label, old_constitution = self.old
        old = run_trial(label, old_constitution, self.settings, self.records, ask)
        return tuple(await asyncio.gather(new, old))

    def note(self, line: str) -> None:
        """A line about the session: beside the trials, or on stderr under --json."""
        if self.as_json:
            self.err.write(line + "\n")
        else:
            self.say([line])

    def show(self, new: Trial, old: Trial | None) -> None:
        if self.as_json:
            data = trial_json(new) if old is None else comparison_json(old, new)
            self.say([json.dumps(data, ensure_ascii=False)])
        elif old is None:
            self.say(render_trial(new, self.page))
        else:
            self.say(render_comparison(old, new, self.page))

    def problems(self, err: ConstitutionError) -> None:
        if self.as_json:
            self.say([json.dumps({"problems": [str(p) for p in err.problems]})])
        else:
            self.say([self.page.paint("not valid:", "fail")] + [str(p) for p in err.problems])


def load_or_none(session: Session) -> Constitution | None:
    """The constitution now on disk, or None after showing why it cannot be loaded."""
    try:
        return load_constitution(session.paths)
    except ConstitutionError as err:
        session.problems(err)
        return None


async def run_session(session: Session, constitution: Constitution | None,
                      start_engine: Callable[[], Engine], watch: bool) -> int:
    """Build the engine, try once (if the files are valid), then with `watch` again after every
    save. Returns the exit status: 0, or 130 for Ctrl-C outside --watch."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    signals: list[int] = []

    def stop(signum: int) -> None:
        signals.append(signum)
        task.cancel()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    engine = None
    try:
        started = time.perf_counter()
        # Ctrl-C is this process's to handle: it stops the engine's processes in order, where
        # the terminal's SIGINT would kill them mid-step (with tracebacks).
        engine = _start_in_own_group(start_engine)
        described = engine.describe()
        session.err.write(f"engine: {described['model']} on {described['backend']}, "
                          f"ready in {time.perf_counter() - started:.1f}s\n")
        ask = Remembering(engine.complete)
        if constitution is not None:
            session.show(*await session.trial(constitution, ask))
        if watch:
            await _watch(session, ask, constitution)
        return 0
    except (asyncio.CancelledError, EngineFailure) as why:
        # A stop signal sent to the whole group (kill -INT -PGID) may still kill the engine
        # first: then the signal is the cause, not the engine.
        if isinstance(why, EngineFailure) and not signals:
            raise UserError(f"the engine failed: {why}") from None
        session.err.write("stopped\n")
        return 0 if watch else 130
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        if engine is not None:
            engine.close()


async def _watch(session: Session, ask: Remembering, constitution: Constitution | None) -> None:
    watcher = Watcher(session.paths)
    if constitution is not None:
        watcher.now_loaded(constitution.files)
    while True:
        files = len(watcher.files())
        session.note(session.page.paint(f"watching {files} file{'s' * (files != 1)}: save to "
                                        f"try again, Ctrl-C to stop", "dim"))
        changed, saved_at = await watcher.saved()
        session.note("\nsaved: " + ", ".join(p.as_posix() for p in changed))
        constitution = load_or_none(session)
        if constitution is None:
            continue
        watcher.now_loaded(constitution.files)
        session.show(*await session.trial(constitution, ask))
        session.note(f"shown {time.time() - saved_at:.1f}s after the save")


def _start_in_own_group(start_engine: Callable[[], Any]) -> Any:
    """Start the engine with its processes asking for a process group of their own; the
    setting is put back at once, so it never reaches processes started later (a test run's
    other commands, a subprocess of the caller's)."""
    before = os.environ.get(ENGINE_OWN_GROUP)
    os.environ[ENGINE_OWN_GROUP] = "1"
    try:
        return start_engine()
    finally:
        if before is None:
            del os.environ[ENGINE_OWN_GROUP]
        else:
            os.environ[ENGINE_OWN_GROUP] = before
