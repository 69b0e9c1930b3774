"""Stage 1: the first answer to each prompt (becomes `rejected`)."""

from __future__ import annotations

from selfalign.engine.base import Engine, Message, SamplingSettings
from selfalign.stages.sample import Sample


def generate(samples: list[Sample], engine: Engine, sampling: SamplingSettings,
             system: list[Message]) -> list[Sample]:
    """Answer every live sample in one engine call.

    The first answer sees only the system prompt and the user's prompt, not the critique
    exemplars: it is the model's unguided answer, the one the revision should improve on.
    """
    live = [s for s in samples if s.alive]
    conversations = [system + s.turns() for s in live]
    for sample, completion in zip(live, engine.chat(conversations, sampling, desc="generate")):
        if sample.account(completion, "generate"):
            sample.initial = completion.text.strip()
            sample.initial_finish = completion.finish_reason
    return samples
