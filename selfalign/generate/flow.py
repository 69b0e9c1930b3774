"""The flow of a run: each conversation goes through its stages on its own, many at once.

`constitutional_ai` is the recipe for one sample, written as the sequence it is: answer, then
per round a critique and a revision under a drawn principle. `run_prompt` runs a prompt's samples
side by side and then, if asked, the AI judge's comparisons of them (generate/feedback.py). Each request goes to the engine the
moment the previous one of the same conversation returns, so no conversation waits for an
unrelated one, and the engine batches whatever is in flight.

`run_shards` keeps enough prompts open that the engine never runs dry: it admits the next shard
while the open ones still have work, so there is no drain at a shard boundary. A shard is only
the unit of checkpoint: when all its samples are done, `on_shard_done` writes it (possibly out of
input order). Open work is bounded, so memory stays flat however long the stream.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable

from selfalign.checks import CONSTITUTION, check_ids, shared_not_held
from selfalign.constitution import Constitution, Principle
from selfalign.engine.base import Completion, Message, Request, SamplingSettings
from selfalign.generate import feedback as ai_feedback
from selfalign.generate.feedback import Feedback
from selfalign.generate.shards import Shard
from selfalign.records import PromptRecord
from selfalign.stages import (Sample, answer_request, critique_request, revise_request,
                              take_answer, take_critique, take_revision)
from selfalign.stages.check import (FIRST_ANSWER, NamedCheck, check_text, retry_request,
                                    take_retry)
from selfalign.stages.echo import echo_of_revision

Ask = Callable[[Request], Awaitable[Completion]]
ShardDone = Callable[[Shard, list[Sample], float], None]


@dataclass
class Recipe:
    """What every conversation of a run is asked with."""

    constitution: Constitution
    sampling: SamplingSettings
    seed: int
    rounds: int
    samples: int
    feedback: Feedback | None = None
    check_retries: int = 0  # asks again of a revision that fails a check
    system: list[Message] = field(init=False)
    prefix: list[Message] = field(init=False)  # system prompt + few-shot exemplars
    _checks: dict[str | None, list[NamedCheck]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        text = self.constitution.system_prompt
        self.system = [{"role": "system", "content": text}] if text else []
        self.prefix = self.system + self.constitution.fewshot_messages()
        shared = self.constitution.checks
        shared_ids = check_ids(CONSTITUTION, shared)
        self._checks = {None: [NamedCheck(i, c) for i, c in zip(shared_ids, shared)]}
        for p in self.constitution.principles:
            own = [NamedCheck(i, c) for i, c in zip(check_ids(p.name, p.checks), p.checks)]
            everywhere = zip(*shared_not_held(shared_ids, shared, p.checks))
            self._checks[p.name] = [NamedCheck(i, c) for i, c in everywhere] + own

    def checks_for(self, principle: Principle | None) -> list[NamedCheck]:
        """The constitution's checks and `principle`'s own (None: the constitution's only)."""
        return self._checks[principle.name if principle else None]


async def constitutional_ai(sample: Sample, recipe: Recipe, ask: Ask) -> Sample:
    """Answer, then `rounds` × (critique, revise, and revise again while a check fails, at most
    `check_retries` times); stops at the first request that fails. The first answer is checked
    against round 1's principle's checks, each revision against its round's (with the
    constitution's, always)."""
    request = answer_request(sample, recipe.system, recipe.sampling, recipe.seed)
    if not take_answer(sample, await ask(request)):
        return sample
    constitution, prompt_id = recipe.constitution, sample.record.id
    first = constitution.draw(recipe.seed, prompt_id, 1) if recipe.rounds else None
    check_text(sample, recipe.checks_for(first), sample.initial, FIRST_ANSWER, 0)
    for r in range(1, recipe.rounds + 1):
        principle = constitution.draw(recipe.seed, prompt_id, r)
        request = critique_request(sample, principle, r, recipe.prefix, recipe.sampling,
                                   recipe.seed)
        if not take_critique(sample, await ask(request), r):
            return sample
        request = revise_request(sample, r, recipe.prefix, recipe.sampling, recipe.seed)
        if not take_revision(sample, await ask(request), r):
            return sample
        if not await _revise_until_checked(sample, recipe, ask, r, recipe.checks_for(principle)):
            return sample
        # The round's revision is kept now; one that only echoes what it was told is no answer.
        sample.echo = echo_of_revision(sample)
    return sample


async def _revise_until_checked(sample: Sample, recipe: Recipe, ask: Ask, r: int,
                                checks: list[NamedCheck]) -> bool:
    """Check round r's revision; ask it again while a check fails and retries are left.
    False if a retry's request failed (the sample has failed)."""
    failing = check_text(sample, checks, sample.rounds[-1].revision, r, 0)
    for attempt in range(1, recipe.check_retries + 1):
        if not failing:
            break
        request = retry_request(sample, r, attempt, failing, recipe.prefix, recipe.sampling,
                                recipe.seed)
        if not take_retry(sample, await ask(request), r, attempt):
            return False
        failing = check_text(sample, checks, sample.rounds[-1].revision, r, attempt)
    return True


async def run_prompt(record: PromptRecord, recipe: Recipe, ask: Ask,
                     judge: Ask | None = None) -> list[Sample]:
    """All samples of one prompt side by side, then the judge's feedback on them, if asked.

    `judge` answers the judge's questions (the run's own engine unless another judge is set).
    """
    samples = [Sample(record, i) for i in range(recipe.samples)]
    samples = list(await asyncio.gather(*(constitutional_ai(s, recipe, ask) for s in samples)))
    feedback, judge = recipe.feedback, judge or ask
    if feedback is not None and feedback.mode == "verify":
        await asyncio.gather(*(ai_feedback.verify(s, recipe.constitution, feedback, recipe.seed,
                                                  judge) for s in samples))
    elif feedback is not None and feedback.mode == "rank":
        await ai_feedback.rank(samples, recipe.constitution, feedback, recipe.seed, judge)
    return samples


class ShardScheduler:
    """Admits shards while fewer than `open_prompts` prompts are unfinished; writes each shard
    as soon as its last prompt is done; the first failure cancels everything else."""

    def __init__(self, recipe: Recipe, ask: Ask, on_shard_done: ShardDone, open_prompts: int,
                 on_prompt_done: Callable[[list[Sample]], None] = lambda samples: None,
                 judge: Ask | None = None) -> None:
        self.recipe, self.ask, self.judge = recipe, ask, judge
        self.on_shard_done, self.on_prompt_done = on_shard_done, on_prompt_done
        self.open_prompts = max(1, open_prompts)
        self.unfinished = 0
        self.room = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()
        self.failure: BaseException | None = None

    async def run(self, shards: Iterable[Shard]) -> None:
        try:
            for shard in shards:
                while self.unfinished >= self.open_prompts and self.failure is None:
                    self.room.clear()
                    await self.room.wait()
                if self.failure is not None:
                    break
                self.unfinished += len(shard.records)
                task = asyncio.create_task(self._shard(shard))
                self.tasks.add(task)
                task.add_done_callback(self._task_done)
            while self.tasks and self.failure is None:
                await asyncio.wait(set(self.tasks), return_when=asyncio.FIRST_EXCEPTION)
        finally:
            await self._cancel_all()
        if self.failure is not None:
            raise self.failure

    async def _shard(self, shard: Shard) -> None:
        started = time.perf_counter()
        per_prompt = await asyncio.gather(*(self._prompt(r) for r in shard.records))
        samples = [sample for group in per_prompt for sample in group]
        self.on_shard_done(shard, samples, time.perf_counter() - started)

    async def _prompt(self, record: PromptRecord) -> list[Sample]:
        samples = await run_prompt(record, self.recipe, self.ask, self.judge)
        self.unfinished -= 1
        self.room.set()
        self.on_prompt_done(samples)
        return samples

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self.failure is None:
            self.failure = task.exception()
        self.room.set()

    async def _cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
