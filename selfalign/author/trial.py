"""One trial: a constitution over a few prompts through `generate`'s own flow, and its figures.

The conversation is `selfalign.generate.flow.run_prompt` with the recipe `generate` builds from
the same settings (generate/plan.py `recipe_for`): rounds, principle draws, exemplars, the system
prompt, checks and their retries all behave as in a run. Only the engine's answers are kept for
the session (`Remembering`), so a save that changes the revision request does not pay again for
first answers and critiques that cannot have changed.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Awaitable, Callable

from selfalign.constitution import Constitution
from selfalign.engine.base import Completion, Request
from selfalign.generate.flow import Recipe, run_prompt
from selfalign.generate.plan import recipe_for, run_rounds
from selfalign.generate.settings import GenerateSettings
from selfalign.records import PromptRecord
from selfalign.stages import Sample
from selfalign.stages.check import FIRST_ANSWER
from selfalign.stages.sample import CheckVerdict

Ask = Callable[[Request], Awaitable[Completion]]


class Remembering:
    """An engine's answers kept by request. The flow seeds every request from the run seed and
    which request it is, so the same request samples the same text (measured on vLLM CPU, see
    DESIGN.md); asking it again would only cost time. Failures are not kept."""

    def __init__(self, ask: Ask) -> None:
        self._ask = ask
        self._answers: dict[str, asyncio.Future] = {}
        self.asked = self.reused = 0

    async def __call__(self, request: Request) -> Completion:
        key = json.dumps([request.messages, asdict(request.sampling), request.seed,
                          list(request.options)], sort_keys=True)
        self.asked += 1
        if key in self._answers:
            self.reused += 1
            return await asyncio.shield(self._answers[key])
        future = asyncio.get_running_loop().create_future()
        self._answers[key] = future
        try:
            completion = await self._ask(request)
        except BaseException as err:
            del self._answers[key]
            future.set_exception(err)
            future.exception()  # retrieved: nobody else may be waiting on it
            raise
        if completion.error:
            del self._answers[key]
        future.set_result(completion)
        return completion


@dataclass
class Trial:
    """What one version of the files did on the prompts."""

    label: str  # which version: a path, or `HEAD:path`
    recipe: Recipe
    samples: list[list[Sample]]  # per prompt, its samples
    seconds: float = 0.0
    requests: int = 0
    reused: int = 0  # requests answered from earlier in the session

    @property
    def all_samples(self) -> list[Sample]:
        return [sample for group in self.samples for sample in group]


async def run_trial(label: str, constitution: Constitution, settings: GenerateSettings,
                    records: list[PromptRecord], ask: Remembering) -> Trial:
    """Every prompt's samples at once, as `generate` runs them."""
    recipe = recipe_for(settings, constitution, run_rounds(settings, constitution))
    started, asked, reused = time.perf_counter(), ask.asked, ask.reused
    samples = await asyncio.gather(*(run_prompt(record, recipe, ask) for record in records))
    return Trial(label, recipe, list(samples), time.perf_counter() - started,
                 ask.asked - asked, ask.reused - reused)


# -- figures ------------------------------------------------------------------------------------

def verdicts_on(sample: Sample, round_index: int, attempt: int | None = None) -> list[CheckVerdict]:
    """The verdicts on one text: round 0 is the first answer; `attempt` None is the last try."""
    on_round = [v for v in sample.verdicts if v.round == round_index]
    if attempt is None:
        attempt = max((v.attempt for v in on_round), default=0)
    return [v for v in on_round if v.attempt == attempt]


@dataclass
class PrincipleFigures:
    """One principle's rounds in a trial: checks and words before and after, and retries."""

    principle: str
    rounds: int = 0
    passed_before: int = 0
    passed_after: int = 0
    checked: int = 0  # verdicts on each side
    words_before: int = 0
    words_after: int = 0
    retries: int = 0
    checks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def principle_figures(trial: Trial) -> list[PrincipleFigures]:
    """Per principle drawn, over the rounds it was drawn for: the text the round started from
    against its revision (after retries), checked by that principle's checks and the
    constitution's."""
    figures: dict[str, PrincipleFigures] = {}
    for sample in trial.all_samples:
        before_text = sample.initial
        for r, round_ in enumerate(sample.rounds, 1):
            if not round_.revision_finish:  # the sample failed inside this round
                break
            principle = trial.recipe.constitution.principle(round_.principle)
            checks = trial.recipe.checks_for(principle)
            fig = figures.setdefault(round_.principle, PrincipleFigures(
                round_.principle, checks=[c.id for c in checks]))
            if r == 1:
                before = [v.passed for v in verdicts_on(sample, FIRST_ANSWER, 0)]
            else:  # the previous round's text was checked under its own principle
                before = [c.check.verify(before_text, sample.record.prompt).passed for c in checks]
            after = verdicts_on(sample, r)
            fig.rounds += 1
            fig.checked += len(after)
            fig.passed_before += sum(before)
            fig.passed_after += sum(v.passed for v in after)
            fig.words_before += len(before_text.split())
            fig.words_after += len(round_.revision.split())
            fig.retries += sum(1 for retry in sample.retries if retry.round == r)
            before_text = round_.revision
    return sorted(figures.values(), key=lambda f: f.principle)


def pass_rate(trial: Trial) -> tuple[int, int]:
    """Samples whose final text passes every check (the ones `generate` keeps), of those that
    finished."""
    finished = [s for s in trial.all_samples if s.alive]
    return sum(1 for s in finished if not s.final_check_failures), len(finished)
