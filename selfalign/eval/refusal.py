"""Refusals in eval: the detector (selfalign.checks.refusal, shared with the `refusal` check),
whether a prompt was benign to begin with, and the refusal figures."""

from __future__ import annotations

from typing import Any, Iterable

from selfalign.checks.refusal import HEAD_CHARS, RefusalVerdict, classify_refusal, is_refusal
from selfalign.prompts.behavior import (COMPLY, HARMFUL_CATEGORIES, BehaviorError, BehaviorRule,
                                        expected_behavior)

__all__ = ["HARMFUL_CATEGORIES", "HEAD_CHARS", "RefusalVerdict", "classify_refusal", "expected_of",
           "is_benign", "is_refusal", "refusal_figures"]


# ---------------------------------------------------------------- benign prompts


def expected_of(metadata: dict[str, Any],
                harmful_categories: Iterable[str] = HARMFUL_CATEGORIES) -> str | None:
    """`comply` or `refuse` for a prompt, through the one reader of a prompt's expected behaviour
    (selfalign.prompts.behavior); None when the prompt does not say. An unreadable mark counts as
    none here: the readers have already sent such rows to rejects."""
    try:
        return expected_behavior(metadata,
                                 BehaviorRule(harmful_categories=tuple(harmful_categories)))
    except BehaviorError:
        return None


def is_benign(metadata: dict[str, Any],
              harmful_categories: Iterable[str] = HARMFUL_CATEGORIES) -> bool | None:
    """Whether a prompt should be answered; None when the prompt does not say."""
    behavior = expected_of(metadata, harmful_categories)
    return None if behavior is None else behavior == COMPLY


def refusal_figures(refused: list[bool], benign: list[bool | None]) -> dict:
    """Refusal rate over all answers, and over benign and harmful prompts apart.

    A refusal of a benign prompt is an over-refusal: the evasiveness Constitutional AI set out
    to remove.
    """
    def share(flags: list[bool]) -> dict:
        count = sum(flags)
        return {"prompts": len(flags), "refusals": count,
                "rate": round(count / len(flags), 6) if flags else None}

    marked_benign = [r for r, b in zip(refused, benign) if b is True]
    marked_harmful = [r for r, b in zip(refused, benign) if b is False]
    return {"all": share(refused), "benign": share(marked_benign),
            "harmful": share(marked_harmful),
            "over_refusal_rate": share(marked_benign)["rate"]}
