"""What `checks score` leaves behind: scores.json, verdicts.parquet, and the table it prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from selfalign.atomic import write_json, write_parquet
from selfalign.checks.score import ScoredReply, figures, verdict_rows

SCORES = "scores.json"
VERDICTS = "verdicts.parquet"
VERDICTS_SCHEMA = pa.schema([
    ("reply", pa.int64()), ("where", pa.string()), ("prompt_id", pa.string()),
    ("stage", pa.string()), ("principle", pa.string()), ("check_id", pa.string()),
    ("kind", pa.string()), ("strict", pa.bool_()), ("loose", pa.bool_()),
    ("message", pa.string()),
])


def write_scores(out: Path, scored: Sequence[ScoredReply], about: dict[str, Any]) -> dict[str, Any]:
    """Writes both files atomically; returns what scores.json holds."""
    scores = {**about, **figures(scored), "not_applicable": not_applicable(scored)}
    rows = [{name: row.get(name) for name in VERDICTS_SCHEMA.names} for row in verdict_rows(scored)]
    write_parquet(out / VERDICTS, rows, VERDICTS_SCHEMA)
    write_json(out / SCORES, scores)
    return scores


def not_applicable(scored: Sequence[ScoredReply]) -> dict[str, Any]:
    """Checks a reply's prompt did not match the `when:` of: counted apart from the figures,
    which hold only checks that apply."""
    by_check: dict[str, int] = {}
    for s in scored:
        for check_id in s.reply.not_applicable:
            by_check[check_id] = by_check.get(check_id, 0) + 1
    return {"checks": sum(by_check.values()),
            "replies_with_none_applicable": sum(1 for s in scored
                                                if s.reply.not_applicable and not s.strict),
            "by_check": dict(sorted(by_check.items()))}


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.2f}"


def score_table(scores: dict[str, Any]) -> str:
    """The four figures and each kind's rates, in percent."""
    skipped = scores.get("not_applicable", {}).get("checks", 0)
    lines = [f"{scores['replies_checked']} replies, {scores['instructions']} checks"
             + (f" ({skipped} more not applicable: their `when:` did not match)" if skipped else ""),
             f"{'':<52}{'strict':>8}{'loose':>8}",
             f"{'prompt-level':<52}{_percent(scores['prompt_strict']):>8}"
             f"{_percent(scores['prompt_loose']):>8}",
             f"{'instruction-level':<52}{_percent(scores['instruction_strict']):>8}"
             f"{_percent(scores['instruction_loose']):>8}",
             ""]
    for kind, rates in scores["kinds"].items():
        name = f"{kind} ({rates['instructions']})"
        lines.append(f"{name:<52}{_percent(rates['strict']):>8}{_percent(rates['loose']):>8}")
    return "\n".join(lines)
