"""What an eval found per prompt, and every figure of eval.json computed from those rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import mean
from typing import Any, Iterable

from selfalign.constitution import Principle
from selfalign.engine.base import Completion
from selfalign.eval.outcomes import (LOSS, WIN, Tally, position_consistency, sign_test_p,
                                     soft_win_rate, table_by, tally)
from selfalign.eval.refusal import HARMFUL_CATEGORIES, is_benign, is_refusal, refusal_figures
from selfalign.records import PromptRecord

MODEL_ROLES = ("candidate", "baseline")
UNTAGGED = "untagged"
EXAMPLES_EACH_WAY = 3


@dataclass
class PromptResult:
    """One prompt: both answers, the judgment of the pair, and its outcome for the candidate.

    `judgment` is a `selfalign.stages.judge.Judgment` (or anything with its fields).
    """

    record: PromptRecord
    candidate: Completion | None = None
    baseline: Completion | None = None
    principles: tuple[Principle, ...] = ()
    judgment: Any = None
    outcome: str | None = None  # win / tie / loss; None when `skipped`
    skipped: str | None = None  # why there is no outcome, e.g. "baseline:too_long", "judge:..."
    candidate_reward: float | None = None
    baseline_reward: float | None = None
    check_ids: tuple[str, ...] = ()  # the checks that apply to this prompt (selfalign.eval.checks)
    check_passes: dict[str, tuple[bool, ...]] = field(default_factory=dict)  # role → per check
    # Checks drawn for this prompt whose `when:` it does not match: neither passed nor failed.
    checks_not_applicable: tuple[str, ...] = ()

    def answer(self, role: str) -> Completion | None:
        return getattr(self, role)

    def answered(self, role: str) -> bool:
        completion = self.answer(role)
        return completion is not None and completion.error is None

    @property
    def tags(self) -> tuple[str, ...]:
        """Tags of the principles this pair was judged under, each once."""
        tags = [tag for p in self.principles for tag in (p.tags or (UNTAGGED,))]
        return tuple(dict.fromkeys(tags))

    @property
    def category(self) -> str | None:
        value = self.record.metadata.get("category")
        return str(value) if value not in (None, "") else None

    @property
    def preference(self) -> float | None:
        return None if self.judgment is None else self.judgment.preference


def figures(results: list[PromptResult],
            harmful_categories: Iterable[str] = HARMFUL_CATEGORIES) -> dict:
    """Every figure of eval.json that the rows decide; the run adds settings and timings."""
    judged = [r for r in results if r.outcome is not None]
    overall = tally(r.outcome for r in judged)
    skipped: dict[str, int] = {}
    for r in results:
        if r.skipped:
            skipped[r.skipped] = skipped.get(r.skipped, 0) + 1
    return {
        "prompts": len(results),
        "judged": len(judged),
        **_headline(overall),
        "preference_win_rate": soft_win_rate(r.preference for r in judged),
        "skipped": dict(sorted(skipped.items())),
        "by_tag": _tables(table_by((r.tags, r.outcome) for r in judged)),
        "by_category": _tables(table_by(((r.category,), r.outcome) for r in judged
                                        if r.category is not None)),
        "position_consistency": position_consistency(
            bool(r.judgment.position_consistent) for r in judged),
        "lengths": {role: _lengths(results, role) for role in MODEL_ROLES},
        "longer_answer_won": _longer_answer_won(judged),
        "refusals": {role: _refusals(results, role, harmful_categories) for role in MODEL_ROLES},
        "reward": _reward_figures(results),
        "examples": most_one_sided(judged),
    }


def _headline(overall: Tally) -> dict:
    headline = overall.as_dict()
    headline.pop("prompts")
    headline["sign_test_p"] = round(sign_test_p(overall.wins, overall.losses), 6)
    return headline


def _tables(tallies: dict[str, Tally]) -> dict[str, dict]:
    return {name: t.as_dict() for name, t in tallies.items()}


def _lengths(results: list[PromptResult], role: str) -> dict:
    answers = [r.answer(role) for r in results if r.answered(role)]
    tokens = [a.output_tokens for a in answers]
    chars = [len(a.text) for a in answers]
    return {"answers": len(answers),
            "mean_tokens": round(mean(tokens), 3) if tokens else None,
            "mean_chars": round(mean(chars), 3) if chars else None,
            "cut_at_max_tokens": sum(1 for a in answers if a.finish_reason == "length")}


def _longer_answer_won(judged: list[PromptResult]) -> dict:
    """Judges favour length; how often the longer answer (in tokens) won a decided prompt."""
    decided = [r for r in judged if r.outcome in (WIN, LOSS)
               and r.candidate.output_tokens != r.baseline.output_tokens]
    longer_won = sum(1 for r in decided if (r.candidate.output_tokens > r.baseline.output_tokens)
                     == (r.outcome == WIN))
    return {"decided_with_unequal_lengths": len(decided), "longer_won": longer_won,
            "rate": round(longer_won / len(decided), 6) if decided else None}


def _refusals(results: list[PromptResult], role: str, harmful_categories) -> dict:
    answered = [r for r in results if r.answered(role)]
    refused = [is_refusal(r.answer(role).text) for r in answered]
    benign = [is_benign(r.record.metadata, harmful_categories) for r in answered]
    return refusal_figures(refused, benign)


def _reward_figures(results: list[PromptResult]) -> dict | None:
    scored = [r for r in results
              if r.candidate_reward is not None and r.baseline_reward is not None]
    if not scored:
        return None
    decided = [r for r in scored
               if r.outcome in (WIN, LOSS) and r.candidate_reward != r.baseline_reward]
    agree = sum(1 for r in decided
                if (r.candidate_reward > r.baseline_reward) == (r.outcome == WIN))
    return {"scored": len(scored),
            "mean": {"candidate": round(mean(r.candidate_reward for r in scored), 6),
                     "baseline": round(mean(r.baseline_reward for r in scored), 6)},
            "candidate_higher": sum(1 for r in scored if r.candidate_reward > r.baseline_reward),
            "judge_agreement": {"decided": len(decided), "agree": agree,
                                "rate": round(agree / len(decided), 6) if decided else None}}


def most_one_sided(judged: list[PromptResult], each_way: int = EXAMPLES_EACH_WAY) -> dict:
    """Ids of the clearest wins (highest preference) and losses (lowest), `each_way` of each."""
    def pick(outcome: str, descending: bool) -> list[dict]:
        rows = sorted((r for r in judged if r.outcome == outcome),
                      key=lambda r: (-r.preference if descending else r.preference, r.record.id))
        return [{"prompt_id": r.record.id, "preference": round(r.preference, 6)}
                for r in rows[:each_way]]

    return {"wins": pick(WIN, True), "losses": pick(LOSS, False)}
