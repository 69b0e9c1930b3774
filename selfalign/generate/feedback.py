"""AI feedback in a run: after a prompt's samples are done, the judge labels its pairs.

`verify` asks, for each sample, whether its final revision beats its first answer; a pair the
judge does not prefer enough is refused. `rank` compares all C(K, 2) pairs of a prompt's K final
answers, writes each pair oriented by the judge, and ranks the answers (Bradley–Terry).
Every principle draw is seeded from (run seed, prompt id, pair), so a resumed run asks the same.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Iterable, Sequence

from selfalign.constitution import Constitution
from selfalign.generate.rows import sample_status
from selfalign.stages.cleaning import same_text
from selfalign.stages.judge import (Ask, Judgment, bradley_terry, draw_comparison_principles,
                                    judge_pair, orient, ranks_from_scores)
from selfalign.stages.judge_figures import FeedbackTally
from selfalign.stages.sample import RankedPair, Sample

MODES = ("verify", "rank")


@dataclass(frozen=True)
class Feedback:
    """How a run asks for AI feedback."""

    mode: str  # "verify" or "rank"
    principles: int = 1  # comparison principles drawn per pair, labels averaged
    cot: bool = False
    min_preference: float = 0.5  # verify: pairs the judge prefers less are refused


async def verify(sample: Sample, constitution: Constitution, feedback: Feedback, seed: int,
                 judge: Ask) -> None:
    """Judge (final revision, first answer); refuse the pair below `min_preference`."""
    if sample.judgment is not None or sample_status(sample) != "pair":
        return
    record = sample.record
    principles = draw_comparison_principles(constitution, seed, record.id,
                                            f"verify/{sample.index}", feedback.principles)
    judgment = await judge_pair(judge, record.conversation(), sample.final, sample.initial,
                                principles, sample.seed(seed, "verify"), cot=feedback.cot)
    _count_tokens(sample, judgment)
    sample.judgment = judgment
    if judgment.preference is None:
        sample.judge_reject = ("judge_failed", f"the judge could not answer: {judgment.error}")
    elif judgment.preference < feedback.min_preference:
        sample.judge_reject = ("judge_prefers_rejected",
                               f"P(chosen ≻ rejected) = {judgment.preference:.3f} < "
                               f"{feedback.min_preference}")


async def rank(samples: list[Sample], constitution: Constitution, feedback: Feedback,
               seed: int, judge: Ask) -> None:
    """Judge every pair of the prompt's usable answers; orient the pairs; score and rank."""
    usable = [s for s in samples if s.alive and s.final]
    if len(usable) < 2:
        return
    record = usable[0].record
    pairs = []
    for a, b in itertools.combinations(usable, 2):
        if same_text(a.final, b.final):
            a.unpaired.append(("identical_answers",
                               f"samples {a.index} and {b.index} gave the same answer"))
        else:
            pairs.append((a, b))

    async def compare(a: Sample, b: Sample) -> Judgment:
        key = f"rank/{a.index}-{b.index}"
        principles = draw_comparison_principles(constitution, seed, record.id, key,
                                                feedback.principles)
        return await judge_pair(judge, record.conversation(), a.final, b.final, principles,
                                a.seed(seed, key), cot=feedback.cot)

    judgments = await asyncio.gather(*(compare(a, b) for a, b in pairs))
    position = {s.index: i for i, s in enumerate(usable)}
    soft_wins = {}
    for (a, b), judgment in zip(pairs, judgments):
        _count_tokens(a, judgment)
        if judgment.preference is None:
            a.unpaired.append(("judge_failed", f"samples {a.index} and {b.index}: the judge "
                                               f"could not answer: {judgment.error}"))
            continue
        soft_wins[(position[a.index], position[b.index])] = judgment.preference
        chosen, rejected, p_chosen = orient(a, b, judgment.preference)
        chosen.won.append(RankedPair(rejected=rejected, preference=p_chosen, judgment=judgment))
    scores = bradley_terry(len(usable), soft_wins)
    for sample, score, place in zip(usable, scores, ranks_from_scores(scores)):
        sample.score, sample.rank = score, place


def _count_tokens(sample: Sample, judgment: Judgment) -> None:
    sample.prompt_tokens += judgment.prompt_tokens
    sample.output_tokens += judgment.output_tokens


# -- the run's figures: judgments kept compactly in each shard's ledger entry --------------------

def ledger_judgments(sample: Sample) -> list[list]:
    """[preference, position_consistent, raw P(A)s, error] of every pair judged for this sample;
    in rank mode the preference is the oriented one, P(chosen ≻ rejected)."""
    records = []
    if sample.judgment is not None:
        j = sample.judgment
        records.append([j.preference, j.position_consistent, list(j.first_position_probs),
                        j.error])
    for pair in sample.won:
        j = pair.judgment
        records.append([pair.preference, j.position_consistent,
                        list(j.first_position_probs), None])
    records += [[None, False, [], detail] for reason, detail in sample.unpaired
                if reason == "judge_failed"]
    return records


def run_figures(records: Iterable[list], min_preference: float) -> tuple[dict, Sequence[float]]:
    """The feedback figures of a whole run, and every judged pair's preference, counted as the
    ledger's records stream past (see `ledger_judgments` for their shape)."""
    tally = FeedbackTally(min_preference)
    for preference, consistent, raw, error in records:
        tally.add(preference, consistent, raw, "judge_failed" if error else None)
    return tally.figures(), tally.preferences
