"""Refusals in eval: the detector (selfalign.checks.refusal, shared with the `refusal` check),
whether a prompt was benign to begin with, and the refusal figures."""

from __future__ import annotations

from typing import Any, Iterable

from selfalign.checks.refusal import HEAD_CHARS, RefusalVerdict, classify_refusal, is_refusal

__all__ = ["HARMFUL_CATEGORIES", "HEAD_CHARS", "RefusalVerdict", "classify_refusal", "is_benign",
           "is_refusal", "refusal_figures"]


# ---------------------------------------------------------------- benign prompts

HARMFUL_CATEGORIES = ("red_team", "red-team", "harmful", "unsafe", "jailbreak", "adversarial")
_TRUE = {"true", "yes", "1", "y", "benign"}
_FALSE = {"false", "no", "0", "n", "harmful"}


def is_benign(metadata: dict[str, Any],
              harmful_categories: Iterable[str] = HARMFUL_CATEGORIES) -> bool | None:
    """Whether a prompt is marked benign: a `benign` column wins, else its `category` decides
    (any category but the harmful ones is benign); None when the prompt carries neither."""
    flag = metadata.get("benign")
    if isinstance(flag, bool):
        return flag
    if isinstance(flag, (int, float)):
        return bool(flag)
    if isinstance(flag, str) and flag.strip().lower() in _TRUE | _FALSE:
        return flag.strip().lower() in _TRUE
    category = metadata.get("category")
    if isinstance(category, str) and category.strip():
        harmful = {c.strip().lower() for c in harmful_categories}
        return category.strip().lower() not in harmful
    return None


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
