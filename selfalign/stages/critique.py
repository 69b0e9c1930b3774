"""Stage 2: the model critiques its latest answer under a principle drawn for this round."""

from __future__ import annotations

from selfalign.constitution import Constitution
from selfalign.engine.base import Engine, Message, SamplingSettings
from selfalign.stages.sample import Round, Sample


def critique(samples: list[Sample], engine: Engine, sampling: SamplingSettings,
             constitution: Constitution, seed: int, round_index: int,
             prefix: list[Message]) -> list[Sample]:
    """Draw a principle per sample, ask its critique request, all in one engine call.

    `prefix` (system prompt + few-shot exemplars) is identical for every request and comes
    first, so vLLM's prefix cache computes it once.
    """
    live = [s for s in samples if s.alive]
    for sample in live:
        principle = constitution.draw(seed, sample.record.id, round_index)
        sample.rounds.append(Round(principle=principle.name,
                                   critique_request=principle.critique_request,
                                   revision_request=principle.revision_request))
    conversations = [prefix + s.turns() for s in live]
    for sample, completion in zip(live, engine.chat(conversations, sampling,
                                                    desc=f"critique r{round_index}")):
        if sample.account(completion, f"critique_r{round_index}"):
            sample.rounds[-1].critique = completion.text.strip()
            sample.rounds[-1].critique_finish = completion.finish_reason
    return samples
