"""What a labeller sees and answers: the replies in their own order, an answer in display terms
turned into one in the run's terms (which reply, which order, which score), and back.

The order is drawn from the database's secret, not from anything a labeller can read (the task
file's seed, the item id, their pseudonym): otherwise the side of the revision could be worked
out and the comparison would not be blind. For the same reason a labeller reads their labels
back in display terms only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random

COMPARE_ANSWERS = ("a", "b", "tie", "skip")
SCORES = range(1, 8)


class BadAnswer(ValueError):
    """An answer that does not fit the item; the API answers 400 with the message."""


def display_order(secret: str, item_id: int, pseudonym: str, replies: int) -> list[int]:
    """Reply indices in the order this labeller sees them: keyed by the secret per item and
    labeller, so a reload (or an undo) shows the same order and two labellers of one item
    usually see different ones."""
    key = hmac.new(secret.encode(), f"{item_id}\x1f{pseudonym}".encode(), hashlib.sha256)
    order = list(range(replies))
    random.Random(int.from_bytes(key.digest(), "big")).shuffle(order)
    return order


def shown_answer(kind: str, stored: dict, display: list[int]) -> dict:
    """A stored answer as the labeller gave it: `answer` (and `rewrite` for a score) in the
    terms of the order they saw, never the run's."""
    if stored.get("skip"):
        return {"answer": "skip"}
    if kind == "compare":
        return {"answer": "tie" if stored.get("tie") else "ab"[display.index(stored["preferred"])]}
    if kind == "rank":
        return {"answer": [display.index(reply) + 1 for reply in stored["order"]]}
    if kind == "rate":
        return {"answer": stored["score"], "rewrite": stored.get("rewrite")}
    return {"answer": stored.get("flags", [])}


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
