"""The local executor: a run's shards on this machine's engine (and the judge's, if another
model judges), every shard in flight sharing the engine, Ctrl-C and SIGTERM turned into a stop
that can be resumed."""

from __future__ import annotations

import asyncio
import signal
from contextlib import contextmanager
from typing import Iterator

from selfalign.engine.base import Completion, Engine, EngineFailure, Request
from selfalign.generate.engines import (EngineFactory, build_engines, describe_engines,
                                        open_prompt_count, tracked)
from selfalign.generate.flow import ShardScheduler
from selfalign.generate.plan import make_recipe
from selfalign.generate.progress import RunProgress
from selfalign.generate.stops import STOP_SIGNALS, RunInterrupted


class _Interrupts:
    """SIGINT/SIGTERM cancel the run's main task. They are handled by the event loop between
    callbacks, so never in the middle of a shard's files being written (that is synchronous)."""

    def __init__(self) -> None:
        self.signal: str | None = None

    @contextmanager
    def installed(self) -> Iterator["_Interrupts"]:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()

        def stop(signum: int) -> None:
            self.signal = self.signal or signal.Signals(signum).name
            task.cancel()

        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, stop, signum)
        try:
            yield self
        finally:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)


class LocalExecutor:
    """Runs a `Run`'s unfinished shards here; returns the manifest's engine entries."""

    def run(self, run, make_engine: EngineFactory) -> dict:
        return asyncio.run(self.run_async(run, make_engine))

    async def run_async(self, run, make_engine: EngineFactory) -> dict:
        engines: list[Engine] = []
        with _Interrupts().installed() as interrupts:
            try:
                # The engines start only if a shard has a prompt to generate: input whose every
                # row is rejected never loads a model.
                if run.needs_model:
                    engines.extend(build_engines(run.plan, make_engine))
                await self.run_on(run, engines)
                return describe_engines(engines) if engines else {}
            except (asyncio.CancelledError, EngineFailure):
                # Ctrl-C reaches vLLM's engine process too, which then dies: the signal is the
                # cause.
                if interrupts.signal:
                    raise RunInterrupted(interrupts.signal) from None
                raise
            finally:
                for engine in engines:
                    engine.close()

    @staticmethod
    async def run_on(run, engines: list[Engine]) -> None:
        """The run's unfinished shards on engines already built (none: only rejects are left)."""
        settings = run.plan.settings
        progress = RunProgress(run.prompt_total)
        if engines:
            engine, judge_engine = engines[0], engines[-1]
            open_prompts = open_prompt_count(engine.capacity, settings.samples)
            ask, judge = tracked(engine, progress), tracked(judge_engine, progress)
        else:  # only rejected rows are left: their shards are recorded without a model
            open_prompts, ask, judge = 1, _no_engine, _no_engine

        def shard_done(shard, samples: list, seconds: float) -> None:
            run.record(run.write_shard(shard, samples, seconds))

        scheduler = ShardScheduler(make_recipe(run.plan), ask, shard_done, open_prompts,
                                   on_prompt_done=progress.prompt_done, judge=judge)
        try:
            await scheduler.run(run.shards(skipped=progress.skipped))
        finally:
            progress.close()


async def _no_engine(request: Request) -> Completion:
    raise AssertionError("a shard without prompts asked the engine")  # a bug, not bad input
