"""Stage 1: the first answer to a prompt (becomes `rejected`)."""

from __future__ import annotations

from selfalign.engine.base import Completion, Message, Request, SamplingSettings
from selfalign.stages.sample import Sample


def answer_request(sample: Sample, system: list[Message], sampling: SamplingSettings,
                   seed: int) -> Request:
    """The first answer sees only the system prompt and the user's conversation, not the
    critique exemplars: it is the model's unguided answer, the one the revision improves on."""
    return Request(system + sample.turns(), sampling, seed=sample.seed(seed, "answer"),
                   stage="answer")


def take_answer(sample: Sample, completion: Completion) -> bool:
    if not sample.account(completion, "generate"):
        return False
    sample.initial = completion.text.strip()
    sample.initial_finish = completion.finish_reason
    return True
