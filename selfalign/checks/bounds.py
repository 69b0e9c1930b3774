"""Counts against a bound: IFEval's `relation` ("less than" or "at least") and its wording."""

from __future__ import annotations

from selfalign.checks.base import Argument, Verdict
from selfalign.checks.text import plural

RELATIONS = ("less than", "at least")


def relation_argument() -> Argument:
    return Argument("string", "`less than` (strictly fewer) or `at least` (that many or more)",
                    choices=RELATIONS)


def count_argument(what: str, minimum: int = 1) -> Argument:
    return Argument("integer", what, minimum=minimum)


def holds(count: int, relation: str, bound: int) -> bool:
    return count < bound if relation == "less than" else count >= bound


def bound_phrase(relation: str, bound: int) -> str:
    """`fewer than 40`, `at least 40`."""
    return f"fewer than {bound}" if relation == "less than" else f"at least {bound}"


def counted(count: int, relation: str, bound: int, noun: str, nouns: str | None = None, *,
            subject: str = "Your reply has", verb: str = "it must have", unit: str = "") -> Verdict:
    """The verdict on a count, in words: "Your reply has 57 words; it must have fewer than 40.",
    "Your reply uses 'dog' 2 times; it must use it at least 3 times."."""
    have = f"{subject} {plural(count, noun, nouns)}"
    asked = f"{bound_phrase(relation, bound)}{' ' + unit if unit else ''}"
    if holds(count, relation, bound):
        return Verdict(True, f"{have}, {asked} as asked.")
    return Verdict(False, f"{have}; {verb} {asked}.")
