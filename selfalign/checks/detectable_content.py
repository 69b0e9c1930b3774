"""detectable_content: placeholders in square brackets, a postscript."""

from __future__ import annotations

import re

from selfalign.checks.base import Argument, Check, Verdict
from selfalign.checks.bounds import count_argument, counted

_PLACEHOLDER = re.compile(r"\[.*?\]")


class NumberOfPlaceholders(Check):
    kind = "detectable_content:number_placeholders"
    summary = "at least this many placeholders in square brackets, such as [address]"
    arguments = {"num_placeholders": count_argument("the least number of placeholders")}
    example = {"num_placeholders": 2}

    def verify(self, reply: str, prompt: str) -> Verdict:
        return counted(len(_PLACEHOLDER.findall(reply)), "at least",
                       self.args["num_placeholders"], "placeholder",
                       unit="in square brackets")

    def instruction(self) -> str:
        return (f"Include at least {self.args['num_placeholders']} placeholders in square "
                f"brackets, such as [address].")


def _marker_pattern(marker: str) -> re.Pattern[str]:
    r"""IFEval's reading of a marker, on the lower-cased reply: `P.S.` and `P.P.S` allow a space
    after each dot; any other marker is taken literally. A marker anywhere in a line counts (so
    IFEval's leading `\s*` and trailing `.*$` change nothing, and are left out: they cost)."""
    if marker == "P.P.S":
        return re.compile(r"p\.\s?p\.\s?s")
    if marker == "P.S.":
        return re.compile(r"p\.\s?s\.")
    return re.compile(re.escape(marker.lower()))


class Postscript(Check):
    kind = "detectable_content:postscript"
    summary = "a postscript starting with the marker (P.S. or P.P.S, in any case)"
    arguments = {"postscript_marker": Argument("string", "the marker that starts the postscript, "
                                                         "e.g. `P.S.` or `P.P.S`")}
    example = {"postscript_marker": "P.S."}

    def __init__(self, **args):
        super().__init__(**args)
        self._pattern = _marker_pattern(args["postscript_marker"].strip())

    def verify(self, reply: str, prompt: str) -> Verdict:
        marker = self.args["postscript_marker"].strip()
        if self._pattern.search(reply.lower()):
            return Verdict(True, f"Your reply has a postscript starting with {marker}.")
        return Verdict(False, f"Your reply has no postscript starting with {marker}; add one at "
                              f"its end.")

    def instruction(self) -> str:
        return (f"At the end of your reply, add a postscript starting with "
                f"{self.args['postscript_marker'].strip()}")


KINDS = (NumberOfPlaceholders, Postscript)
