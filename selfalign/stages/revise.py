"""Stage 3: the model rewrites its answer following the same principle's revision request."""

from __future__ import annotations

from selfalign.engine.base import Completion, Message, Request, SamplingSettings
from selfalign.stages.cleaning import clean_revision
from selfalign.stages.sample import Sample


def revise_request(sample: Sample, round_index: int, prefix: list[Message],
                   sampling: SamplingSettings, seed: int) -> Request:
    round_ = sample.rounds[-1]
    return Request(prefix + sample.turns() + [{"role": "user",
                                               "content": round_.revision_request}],
                   sampling, seed=sample.seed(seed, "revise", round_index),
                   stage=f"revise r{round_index}")


def take_revision(sample: Sample, completion: Completion, round_index: int) -> bool:
    """Keep the revision as written and cleaned of its lead-in ("Sure, here is ...:")."""
    if not sample.account(completion, f"revise_r{round_index}"):
        return False
    keep_revision(sample, completion)
    return True


def keep_revision(sample: Sample, completion: Completion) -> None:
    """The completion becomes the latest round's revision (a check retry's replaces the last)."""
    round_ = sample.rounds[-1]
    round_.raw_revision = completion.text
    round_.revision = clean_revision(completion.text)
    round_.revision_finish = completion.finish_reason
