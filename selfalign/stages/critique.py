"""Stage 2: the model critiques its latest answer under a principle drawn for this round."""

from __future__ import annotations

from selfalign.constitution import Principle
from selfalign.engine.base import Completion, Message, Request, SamplingSettings
from selfalign.stages.sample import Round, Sample


def critique_request(sample: Sample, principle: Principle, round_index: int,
                     prefix: list[Message], sampling: SamplingSettings, seed: int) -> Request:
    """Open round `round_index` under `principle` and ask its critique request.

    `prefix` (system prompt + few-shot exemplars) is identical for every request and comes
    first, so the prefix cache computes it once.
    """
    sample.rounds.append(Round(principle=principle.name,
                               critique_request=principle.critique_request,
                               revision_request=principle.revision_request))
    return Request(prefix + sample.turns(), sampling,
                   seed=sample.seed(seed, "critique", round_index),
                   stage=f"critique r{round_index}")


def take_critique(sample: Sample, completion: Completion, round_index: int) -> bool:
    if not sample.account(completion, f"critique_r{round_index}"):
        return False
    sample.rounds[-1].critique = completion.text.strip()
    sample.rounds[-1].critique_finish = completion.finish_reason
    return True
