"""The state of one (prompt, sample) as it moves through the stages."""

from __future__ import annotations

from dataclasses import dataclass, field

from selfalign.engine.base import Completion, Conversation
from selfalign.records import PromptRecord
from selfalign.stable_hash import derived_seed


@dataclass
class Round:
    """One critique + revision under one principle."""

    principle: str
    critique_request: str
    revision_request: str
    critique: str = ""
    critique_finish: str = ""
    raw_revision: str = ""  # as the model wrote it, before boilerplate was cleaned
    revision: str = ""
    revision_finish: str = ""


@dataclass(frozen=True)
class CheckVerdict:
    """One check's verdict on one text: the first answer (round 0) or try `attempt` of round
    `round`'s revision (0: as first asked; n: the n-th check retry)."""

    round: int
    attempt: int
    check: str  # the check's id: `owner/kind` (selfalign.checks.check_ids)
    passed: bool
    message: str


@dataclass
class CheckRetry:
    """Round `round`'s revision asked again (try `attempt`) because these checks failed."""

    round: int
    attempt: int
    failed: list[str]  # ids of the checks the replaced revision failed
    replaced: str  # that revision
    output_tokens: int = 0  # what the new try cost


@dataclass
class RankedPair:
    """One judged comparison this sample won (rank mode): the loser and P(this ≻ loser)."""

    rejected: "Sample"
    preference: float
    judgment: object  # selfalign.stages.judge.Judgment


@dataclass
class Sample:
    """One independent first answer to a prompt, and everything said about it since."""

    record: PromptRecord
    index: int
    initial: str = ""
    initial_finish: str = ""
    rounds: list[Round] = field(default_factory=list)
    prompt_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    failure: str | None = None  # reason code once a stage could not answer; later stages skip it
    failed_stage: str | None = None
    # AI feedback. verify: the judgment of (final ≻ first answer) and why it is refused, if it is.
    judgment: object | None = None  # selfalign.stages.judge.Judgment
    judge_reject: tuple[str, str] | None = None  # (reason, detail)
    # rank: the comparisons this sample won, its Bradley-Terry score and rank among the prompt's
    # samples (1 = best), and comparisons of it that gave no pair, as (reason, detail).
    won: list[RankedPair] = field(default_factory=list)
    score: float | None = None
    rank: int | None = None
    unpaired: list[tuple[str, str]] = field(default_factory=list)
    # Checks: every verdict on the first answer and on each try of each revision, and the retries.
    verdicts: list[CheckVerdict] = field(default_factory=list)
    retries: list[CheckRetry] = field(default_factory=list)
    # (round, check id) of checks in scope whose `when:` this prompt does not match: not run,
    # neither passed nor failed (0: the first answer).
    not_applicable: list[tuple[int, str]] = field(default_factory=list)
    # The final revision's echo of its instructions, if it is one (selfalign.stages.echo.Echo).
    echo: object | None = None

    @property
    def alive(self) -> bool:
        return self.failure is None

    @property
    def final(self) -> str:
        """The last revision, or the first answer when no round has finished."""
        return self.rounds[-1].revision if self.rounds else self.initial

    @property
    def final_check_failures(self) -> list[CheckVerdict]:
        """The failing verdicts on the final text (the last try of the last round's revision,
        or the first answer when no round ran)."""
        on_final = [v for v in self.verdicts if v.round == len(self.rounds)]
        attempt = max((v.attempt for v in on_final), default=0)
        return [v for v in on_final if v.attempt == attempt and not v.passed]

    def turns(self) -> Conversation:
        """The conversation so far, without the shared few-shot prefix or system prompt."""
        messages = self.record.conversation()
        if self.initial_finish:
            messages.append({"role": "assistant", "content": self.initial})
        for round_ in self.rounds:
            messages.append({"role": "user", "content": round_.critique_request})
            if round_.critique_finish:
                messages.append({"role": "assistant", "content": round_.critique})
            if round_.critique_finish and round_.revision_finish:
                messages.append({"role": "user", "content": round_.revision_request})
                messages.append({"role": "assistant", "content": round_.revision})
        return messages

    def seed(self, run_seed: int, *step: object) -> int:
        """The seed of one request: it depends on nothing but the run seed and which request this
        is, so a resumed or differently batched run samples the same text."""
        return derived_seed(run_seed, self.record.id, self.index, *step)

    def account(self, completion: Completion, stage: str) -> bool:
        """Add a completion's token counts; mark the sample failed if it has an error."""
        self.prompt_tokens += completion.prompt_tokens
        self.output_tokens += completion.output_tokens
        self.cached_tokens += completion.cached_tokens
        if completion.error:
            self.failure, self.failed_stage = completion.error, stage
            return False
        return True
