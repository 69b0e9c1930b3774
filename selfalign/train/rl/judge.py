"""The live judge as an RL reward: reward = P(completion ≻ reference), asked in both orders.

The reference is the SFT model's own answer to the prompt, made once before training (or read
from a generate run's `sft/`), so a reward above 0.5 means "better than where training started"
in the judge's eyes. The questions are those of `stages/judge.py`: comparison principles drawn
per completion, both orders averaged, option log-probabilities renormalised.

The reward function is async and sends the whole generation batch at once, so the engine batches
every question. The engines live on one event loop in a thread of their own (`EngineLoop`):
vLLM's AsyncLLM binds to the loop that first uses it, while TRL runs async rewards on its own.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Coroutine

from selfalign.constitution import Constitution
from selfalign.engine.base import Request, SamplingSettings
from selfalign.errors import UserError
from selfalign.records import PromptRecord
from selfalign.stable_hash import derived_seed
from selfalign.stages.judge import Ask, draw_comparison_principles, judge_pair

REWARD_NAME = "judge"  # metrics: rewards/judge/mean
REFERENCE_STAGE = "reference"


class EngineLoop:
    """An event loop in a daemon thread; every engine call runs on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="selfalign-engines")
        self.thread.start()

    def run(self, coroutine: Coroutine) -> Any:
        """Run on the engine loop and wait here (from synchronous code)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def submit(self, coroutine: Coroutine) -> Any:
        """Run on the engine loop and await the result from another loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@dataclass
class JudgeReward:
    """Async reward function `f(prompts, completions, prompt_id, **kw) -> P(completion ≻ ref)`.

    A failed judgment gives None, which TRL leaves out of the reward (NaN).
    """

    ask: Ask
    constitution: Constitution
    references: dict[str, str]  # prompt id → the SFT model's answer
    principles_per_pair: int = 1
    seed: int = 0
    loop: EngineLoop | None = None  # None: the caller's loop may use the engine directly
    calls: int = 0

    __name__ = REWARD_NAME

    async def __call__(self, prompts, completions, prompt_id, **_: Any) -> list[float | None]:
        self.calls += 1
        answers = [completion[-1]["content"] for completion in completions]
        work = self.preferences(prompts, answers, prompt_id, f"rl/{self.calls}")
        return await (self.loop.submit(work) if self.loop else work)

    async def preferences(self, conversations: list[list[dict]], answers: list[str],
                          prompt_ids: list[str], key: str) -> list[float | None]:
        """P(answer ≻ reference) of every answer, all questions in flight at once."""
        missing = sorted({p for p in prompt_ids if p not in self.references})
        if missing:
            raise KeyError(f"no reference answer for prompt(s) {missing[:5]}")

        async def one(index: int) -> float | None:
            prompt_id = str(prompt_ids[index])
            pair_key = f"{key}/{index}"
            principles = draw_comparison_principles(self.constitution, self.seed, prompt_id,
                                                    pair_key, self.principles_per_pair)
            judgment = await judge_pair(self.ask, conversations[index], answers[index],
                                        self.references[prompt_id], principles,
                                        derived_seed(self.seed, prompt_id, pair_key))
            return judgment.preference

        return list(await asyncio.gather(*(one(i) for i in range(len(answers)))))


# ---------------------------------------------------------------- reference answers

async def answer_all(ask: Ask, records: list[PromptRecord], sampling: SamplingSettings,
                     seed: int) -> dict[str, str]:
    """Each prompt's answer from `ask` (one request per prompt, all in flight); failures skipped."""
    async def one(record: PromptRecord):
        request = Request(record.conversation(), sampling, seed=derived_seed(seed, record.id,
                                                                            REFERENCE_STAGE),
                          stage=REFERENCE_STAGE)
        return record.id, await ask(request)

    done = await asyncio.gather(*(one(r) for r in records))
    return {prompt_id: c.text for prompt_id, c in done if not c.error and c.text.strip()}


def references_from_run(folder: Path) -> dict[str, str]:
    """prompt id → final answer, from the `sft/` rows of a generate run (every split)."""
    from selfalign.store.reader import split_files
    from selfalign.train.data import read_rows

    if not folder.is_dir():
        raise UserError(f"--reference-run {folder}: folder does not exist")
    references = {}
    for files in split_files(folder, "sft").values():
        for row in read_rows(files, ("messages", "prompt_id")):
            references.setdefault(str(row["prompt_id"]), row["messages"][-1]["content"])
    return references


# ---------------------------------------------------------------- engines

def engine_settings(settings, base_url: list[str] | None = None) -> SimpleNamespace:
    """What `make_engine` reads: the in-process backend, or the openai one for judge servers."""
    return SimpleNamespace(backend="openai" if base_url else settings.backend,
                           base_url=list(base_url or []), seed=settings.seed,
                           max_model_len=None, api_key_env=None)


@dataclass
class JudgeEngines:
    """The judge's engine and the one that writes references (the same when they are one model)."""

    judge: Any
    reference: Any
    loop: EngineLoop

    @classmethod
    def start(cls, settings, policy_model: str, judge_model: str,
              make_engine: Callable[[Any, str], Any]) -> "JudgeEngines":
        loop = EngineLoop()
        judge = make_engine(engine_settings(settings, settings.judge_base_url), judge_model)
        shared = judge_model == policy_model and not settings.judge_base_url
        reference = judge if shared else None
        return cls(judge, reference, loop)

    def reference_engine(self, settings, policy_model: str, make_engine) -> Any:
        if self.reference is None:
            self.reference = make_engine(engine_settings(settings), policy_model)
        return self.reference

    def close_reference(self) -> None:
        """Free the reference engine once references are written, unless it is the judge."""
        if self.reference is not None and self.reference is not self.judge:
            self.reference.close()
        self.reference = None

    def close(self) -> None:
        self.close_reference()
        self.judge.close()
        self.loop.close()
