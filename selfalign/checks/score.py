"""Scoring replies against their checks: every verdict, strict and loose, and IFEval's figures.

IFEval's four figures: prompt-level (the share of replies that follow all their instructions)
and instruction-level (the share of all instructions followed), each strict and loose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from selfalign.checks.base import Check, Verdict
from selfalign.checks.registry import loose_verdict


@dataclass(frozen=True)
class ReplyToScore:
    """One reply with the checks it is held to; `where` locates it for people ("line 3"),
    `details` are carried into every verdict row (prompt id, stage, principle)."""

    prompt: str
    reply: str
    checks: Sequence[Check]
    check_ids: Sequence[str]
    where: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # Ids of checks in scope whose `when:` the prompt does not match (counted in report.py).
    not_applicable: Sequence[str] = ()


@dataclass(frozen=True)
class ScoredReply:
    reply: ReplyToScore
    strict: list[Verdict]
    loose: list[Verdict]


def score_reply(item: ReplyToScore) -> ScoredReply:
    strict = [check.verify(item.reply, item.prompt) for check in item.checks]
    loose = [loose_verdict(check, item.reply, item.prompt, verdict)
             for check, verdict in zip(item.checks, strict)]
    return ScoredReply(item, strict, loose)


def score_replies(items: Iterable[ReplyToScore]) -> Iterable[ScoredReply]:
    return (score_reply(item) for item in items)


def _share(passed: int, total: int) -> float | None:
    return round(passed / total, 6) if total else None


def figures(scored: Sequence[ScoredReply]) -> dict[str, Any]:
    """The four figures (fractions 0-1), per-kind rates and counts. A reply held to no check
    counts in neither level; it is only counted."""
    checked = [s for s in scored if s.strict]
    strict = [v.passed for s in checked for v in s.strict]
    loose = [v.passed for s in checked for v in s.loose]
    kinds: dict[str, dict[str, int]] = {}
    for s in checked:
        for check, st, lo in zip(s.reply.checks, s.strict, s.loose):
            tally = kinds.setdefault(check.kind, {"instructions": 0, "strict": 0, "loose": 0})
            tally["instructions"] += 1
            tally["strict"] += st.passed
            tally["loose"] += lo.passed
    all_strict = sum(all(v.passed for v in s.strict) for s in checked)
    all_loose = sum(all(v.passed for v in s.loose) for s in checked)
    return {
        "prompt_strict": _share(all_strict, len(checked)),
        "instruction_strict": _share(sum(strict), len(strict)),
        "prompt_loose": _share(all_loose, len(checked)),
        "instruction_loose": _share(sum(loose), len(loose)),
        "replies": len(scored),
        "replies_checked": len(checked),
        "instructions": len(strict),
        "kinds": {kind: {"instructions": t["instructions"],
                         "strict": _share(t["strict"], t["instructions"]),
                         "loose": _share(t["loose"], t["instructions"])}
                  for kind, t in sorted(kinds.items())},
    }


def verdict_rows(scored: Iterable[ScoredReply]) -> Iterable[dict[str, Any]]:
    """One row per reply and check: where the reply is, its details, the check, both verdicts."""
    for number, s in enumerate(scored):
        for check, check_id, st, lo in zip(s.reply.checks, s.reply.check_ids, s.strict, s.loose):
            yield {"reply": number, "where": s.reply.where, **s.reply.details,
                   "check_id": check_id, "kind": check.kind, "strict": st.passed,
                   "loose": lo.passed, "message": st.message}
