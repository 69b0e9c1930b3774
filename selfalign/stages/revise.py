"""Stage 3: the model rewrites its answer following the same principle's revision request."""

from __future__ import annotations

from selfalign.engine.base import Engine, Message, SamplingSettings
from selfalign.stages.cleaning import clean_revision
from selfalign.stages.sample import Sample


def revise(samples: list[Sample], engine: Engine, sampling: SamplingSettings,
           round_index: int, prefix: list[Message]) -> list[Sample]:
    """Ask every live sample's revision request in one engine call; clean the lead-in."""
    live = [s for s in samples if s.alive]
    conversations = []
    for sample in live:
        round_ = sample.rounds[-1]
        conversations.append(prefix + sample.turns()
                             + [{"role": "user", "content": round_.revision_request}])
    for sample, completion in zip(live, engine.chat(conversations, sampling,
                                                    desc=f"revise r{round_index}")):
        if sample.account(completion, f"revise_r{round_index}"):
            round_ = sample.rounds[-1]
            round_.raw_revision = completion.text
            round_.revision = clean_revision(completion.text)
            round_.revision_finish = completion.finish_reason
    return samples
