"""selfalign's own kinds, beside IFEval's: personal information, a pattern, refusals, language."""

from __future__ import annotations

import re

from selfalign.checks.base import Argument, Check, Verdict


class Pattern(Check):
    kind = "regex"
    summary = "a regular expression (Python syntax) the reply must or must not match"
    arguments = {"pattern": Argument("string", "the expression, searched anywhere in the reply"),
                 "must": Argument("string", "`match` or `not_match`", required=False,
                                  choices=("match", "not_match"), default="match")}
    example = {"pattern": "(?i)as an ai language model", "must": "not_match"}

    def __init__(self, **args):
        super().__init__(**args)
        self._compiled = re.compile(args["pattern"])

    def verify(self, reply: str, prompt: str) -> Verdict:
        found = self._compiled.search(reply)
        if self.args["must"] == "match":
            return (Verdict(True, "the pattern matches") if found else
                    Verdict(False, f"Your reply must match the pattern {self.args['pattern']!r}."))
        if found:
            return Verdict(False, f"Your reply must not contain {found.group(0)!r}.")
        return Verdict(True, "the pattern does not match")

    def instruction(self) -> str:
        verb = "must" if self.args["must"] == "match" else "must not"
        return f"Your reply {verb} match the pattern {self.args['pattern']!r}."


KINDS = (Pattern,)
