"""What a labeller sees and answers: the replies in their own seeded order, and an answer in
display terms turned into one in the run's terms (which reply, which order, which score)."""

from __future__ import annotations

import json
import random

from selfalign.stable_hash import derived_seed

COMPARE_ANSWERS = ("a", "b", "tie", "skip")
SCORES = range(1, 8)


class BadAnswer(ValueError):
    """An answer that does not fit the item; the API answers 400 with the message."""


def display_order(seed: int, item_id: int, pseudonym: str, replies: int) -> list[int]:
    """Reply indices in the order this labeller sees them: seeded per item and labeller, so a
    reload shows the same order and two labellers of one item usually see different ones."""
    order = list(range(replies))
    random.Random(derived_seed(seed, "display", item_id, pseudonym)).shuffle(order)
    return order


def stored_answer(kind: str, answer, display: list[int], flags: tuple[str, ...] = (),
                  rewrite: str | None = None) -> dict:
    """The answer as the database keeps it, or BadAnswer saying what was expected."""
    if answer == "skip":
        return {"skip": True}
    if kind == "compare":
        if answer not in COMPARE_ANSWERS:
            raise BadAnswer(f"answer must be one of {', '.join(COMPARE_ANSWERS)}; got {answer!r}")
        if answer == "tie":
            return {"tie": True}
        return {"preferred": display["ab".index(answer)]}
    if kind == "rank":
        if (not isinstance(answer, list) or sorted(answer) != list(range(1, len(display) + 1))):
            raise BadAnswer(f"answer must list the reply positions 1..{len(display)}, best "
                            f"first, each once; got {json.dumps(answer)[:80]}")
        return {"order": [display[position - 1] for position in answer]}
    if kind == "rate":
        if isinstance(answer, bool) or answer not in SCORES:
            raise BadAnswer(f"answer must be a score from 1 to 7; got {answer!r}")
        rewritten = rewrite.strip() if isinstance(rewrite, str) and rewrite.strip() else None
        return {"score": int(answer), "rewrite": rewritten}
    if kind == "flags":
        if not isinstance(answer, list) or any(f not in flags for f in answer):
            raise BadAnswer(f"answer must be a list of flags among {', '.join(flags)}; "
                            f"got {json.dumps(answer)[:80]}")
        return {"flags": sorted(set(answer))}
    raise BadAnswer(f"unknown task kind {kind!r}")
