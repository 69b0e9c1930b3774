"""The run's engines, as both executors build them: from the plan, described for the manifest,
kept full (enough open conversations), and counted on a progress display."""

from __future__ import annotations

from dataclasses import replace
from typing import Awaitable, Callable

from selfalign.engine.base import Completion, Engine, Request
from selfalign.generate.plan import Plan
from selfalign.generate.progress import RunProgress
from selfalign.generate.settings import GenerateSettings

EngineFactory = Callable[[GenerateSettings, str], Engine]
OPEN_REQUESTS_PER_SLOT = 2  # open conversations per engine batch slot


def build_engines(plan: Plan, make_engine: EngineFactory) -> list[Engine]:
    """The run's engine, and the judge's own when `--judge-model` names another one."""
    engines = [make_engine(plan.settings, plan.model)]
    if plan.judge_model is not None:
        judge_settings = replace(plan.settings, base_url=plan.settings.judge_base_url
                                 or plan.settings.base_url)
        try:
            engines.append(make_engine(judge_settings, plan.judge_model))
        except BaseException:
            engines[0].close()
            raise
    return engines


def describe_engines(engines: list[Engine]) -> dict:
    """The manifest's `engine` (and `judge_engine`) entries."""
    described = {"engine": engines[0].describe()}
    if len(engines) > 1:
        described["judge_engine"] = engines[1].describe()
    return described


def open_prompt_count(capacity: int, samples: int) -> int:
    """Enough open conversations that the engine always has a full batch waiting: each open
    prompt keeps `samples` requests in flight, one per conversation."""
    return -(-OPEN_REQUESTS_PER_SLOT * capacity // samples)


def tracked(engine: Engine, progress: RunProgress) -> Callable[[Request], Awaitable[Completion]]:
    """The engine's `complete`, counted on the progress display."""
    async def ask(request: Request) -> Completion:
        progress.request_sent(request)
        completion = await engine.complete(request)
        progress.request_done(request, completion)
        return completion

    return ask
