"""Checks in the conversation: verdicts on the first answer and on each revision, and the retry
that asks a failing revision again with the failing checks' own messages.

Which checks apply: to the first answer, the constitution's and those of the principle drawn for
round 1 (the principle the answer is about to be critiqued under); to the revision of round r,
the constitution's and those of round r's principle; of those, only the ones whose `when:` the
prompt matches (selfalign.checks.when). Checks are pure Python on strings, run
beside the engine in the same event loop: microseconds against a model turn's milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from selfalign.checks import Check
from selfalign.checks.when import prompt_fields
from selfalign.engine.base import Completion, Message, Request, SamplingSettings
from selfalign.stages.revise import keep_revision
from selfalign.stages.sample import CheckRetry, CheckVerdict, Sample

FIRST_ANSWER = 0  # the round number of the first answer's verdicts


@dataclass(frozen=True)
class NamedCheck:
    """A check with its stable id (`owner/kind`, selfalign.checks.check_ids)."""

    id: str
    check: Check


def check_text(sample: Sample, checks: Sequence[NamedCheck], text: str, round_index: int,
               attempt: int) -> list[CheckVerdict]:
    """Record the verdict on `text` of every check that applies to the prompt; return the
    failing ones. A check whose `when:` the prompt does not match is noted once per round as
    not applicable: it can neither fail a text nor ask for a retry."""
    prompt = sample.record.prompt
    verdicts = []
    fields = None  # the prompt's fields, read only when a check has `when:`
    for named in checks:
        if named.check.when is not None:
            fields = prompt_fields(sample.record) if fields is None else fields
            if not named.check.applies(fields):
                if attempt == 0:
                    sample.not_applicable.append((round_index, named.id))
                continue
        verdict = named.check.verify(text, prompt)
        verdicts.append(CheckVerdict(round_index, attempt, named.id, verdict.passed,
                                     verdict.message))
    sample.verdicts += verdicts
    return [v for v in verdicts if not v.passed]


def retry_turn(revision_request: str, failing: Sequence[CheckVerdict]) -> str:
    """The revision request again, followed by what each failing check said of the last try
    ("Your reply has 57 words; it must have fewer than 40.")."""
    return revision_request + "\n\n" + "\n".join(v.message for v in failing)


def retry_request(sample: Sample, round_index: int, attempt: int,
                  failing: Sequence[CheckVerdict], prefix: list[Message],
                  sampling: SamplingSettings, seed: int) -> Request:
    """Ask round `round_index`'s revision again, in place of the one that failed: the
    conversation up to the critique, then the revision turn with the checks' messages."""
    round_ = sample.rounds[-1]
    sample.retries.append(CheckRetry(round_index, attempt, [v.check for v in failing],
                                     round_.revision))
    round_.revision_finish = ""  # the failed revision leaves the conversation
    turn = {"role": "user", "content": retry_turn(round_.revision_request, failing)}
    return Request(prefix + sample.turns() + [turn], sampling,
                   seed=sample.seed(seed, "revise", round_index, "retry", attempt),
                   stage=f"retry r{round_index}")


def take_retry(sample: Sample, completion: Completion, round_index: int, attempt: int) -> bool:
    """The new revision replaces the failed one; its output tokens are the retry's cost."""
    sample.retries[-1].output_tokens = completion.output_tokens
    if not sample.account(completion, f"revise_r{round_index}_retry{attempt}"):
        return False
    keep_revision(sample, completion)
    return True
