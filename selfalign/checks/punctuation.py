"""punctuation: no commas anywhere."""

from __future__ import annotations

from selfalign.checks.base import Check, Verdict
from selfalign.checks.text import plural


class NoComma(Check):
    kind = "punctuation:no_comma"
    summary = "no comma anywhere in the reply (in a URL or a number too)"
    arguments = {}
    example = {}

    def verify(self, reply: str, prompt: str) -> Verdict:
        count = reply.count(",")
        if count:
            first = reply.index(",")
            return Verdict(False, f"Your reply has {plural(count, 'comma')} (the first in "
                                  f"{reply[max(0, first - 20):first + 20]!r}); it must have none.")
        return Verdict(True, "Your reply has no commas.")

    def instruction(self) -> str:
        return "Do not use any commas in your reply."


KINDS = (NoComma,)
