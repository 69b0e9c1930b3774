"""detectable_format: bullets, a fixed answer, highlights, sections, JSON, a title."""

from __future__ import annotations

import json
import re

from selfalign.checks.base import Argument, Check, Verdict
from selfalign.checks.bounds import count_argument, counted
from selfalign.checks.text import plural

# A bullet is a line starting with `* ` (not `**`, which is bold) or with `-`.
_STAR_BULLET = re.compile(r"^\s*\*[^*].*$", re.MULTILINE)
_DASH_BULLET = re.compile(r"^\s*-.*$", re.MULTILINE)


class NumberOfBullets(Check):
    kind = "detectable_format:number_bullet_lists"
    summary = "exactly this many markdown bullet points (lines starting with `*` or `-`)"
    arguments = {"num_bullets": count_argument("how many bullet points, exactly")}
    example = {"num_bullets": 3}

    def verify(self, reply: str, prompt: str) -> Verdict:
        count = len(_STAR_BULLET.findall(reply)) + len(_DASH_BULLET.findall(reply))
        wanted = self.args["num_bullets"]
        if count == wanted:
            return Verdict(True, f"Your reply has {plural(count, 'bullet point')}, as asked.")
        return Verdict(False, f"Your reply has {plural(count, 'bullet point')}; it must have "
                              f"exactly {wanted}.")

    def instruction(self) -> str:
        return (f"Give exactly {self.args['num_bullets']} markdown bullet points, each on a line "
                f"starting with `* `.")


ANSWER_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


class ConstrainedResponse(Check):
    kind = "detectable_format:constrained_response"
    summary = "the reply contains one of IFEval's three fixed answers ('My answer is yes.', ...)"
    arguments = {}
    example = {}

    def verify(self, reply: str, prompt: str) -> Verdict:
        found = next((option for option in ANSWER_OPTIONS if option in reply), None)
        if found:
            return Verdict(True, f"Your reply gives '{found}'.")
        options = ", ".join(f"'{option}'" for option in ANSWER_OPTIONS)
        return Verdict(False, f"Your reply must contain one of {options}.")

    def instruction(self) -> str:
        return f"Answer with one of these options: {' '.join(ANSWER_OPTIONS)}"


_SINGLE = re.compile(r"\*[^\n*]*\*")
_DOUBLE = re.compile(r"\*\*[^\n*]*\*\*")


def count_highlights(reply: str) -> int:
    """IFEval's count: each non-blank `*x*` and each non-blank `**x**` (so `**x**` counts once,
    through the second pattern: the first only finds its blank `**` halves)."""
    single = sum(1 for found in _SINGLE.findall(reply) if found.strip("*").strip())
    double = sum(1 for found in _DOUBLE.findall(reply) if found[2:-2].strip())
    return single + double


class NumberOfHighlights(Check):
    kind = "detectable_format:number_highlighted_sections"
    summary = "at least this many sections highlighted in markdown, *like this*"
    arguments = {"num_highlights": count_argument("the least number of highlighted sections")}
    example = {"num_highlights": 2}

    def verify(self, reply: str, prompt: str) -> Verdict:
        return counted(count_highlights(reply), "at least", self.args["num_highlights"],
                       "highlighted section", unit="(*like this*)")

    def instruction(self) -> str:
        return (f"Highlight at least {self.args['num_highlights']} sections of your reply with "
                f"markdown, *like this*.")


class MultipleSections(Check):
    kind = "detectable_format:multiple_sections"
    summary = "at least this many sections, each starting with the splitter and a number"
    arguments = {"section_spliter": Argument("string", "the word that starts each section, "
                                                       "e.g. `Section` or `SECTION`"),
                 "num_sections": count_argument("the least number of sections")}
    example = {"section_spliter": "Section", "num_sections": 3}

    def __init__(self, **args):
        super().__init__(**args)
        self._splitter = re.compile(r"\s?" + re.escape(args["section_spliter"].strip())
                                    + r"\s?\d+\s?")

    def verify(self, reply: str, prompt: str) -> Verdict:
        marker = f"'{self.args['section_spliter'].strip()} N'"
        return counted(len(self._splitter.split(reply)) - 1, "at least",
                       self.args["num_sections"], f"section marked {marker}",
                       f"sections marked {marker}", verb="it must have")

    def instruction(self) -> str:
        splitter = self.args["section_spliter"].strip()
        return (f"Your reply must have {self.args['num_sections']} sections; start each with "
                f"{splitter} and its number ({splitter} 1, {splitter} 2, ...).")


_FENCE_OPENINGS = ("```json", "```Json", "```JSON", "```")


def _unfenced(reply: str) -> str:
    """The reply without a markdown code fence around it (each opening tried in turn)."""
    text = reply.strip()
    for opening in _FENCE_OPENINGS:
        text = text.removeprefix(opening)
    return text.removesuffix("```").strip()


class JsonFormat(Check):
    kind = "detectable_format:json_format"
    summary = "the whole reply is JSON (a markdown code fence around it is allowed)"
    arguments = {}
    example = {}

    def verify(self, reply: str, prompt: str) -> Verdict:
        try:
            json.loads(_unfenced(reply))
        except ValueError as error:
            return Verdict(False, f"Your reply is not valid JSON ({error}); the whole reply must "
                                  f"be JSON.")
        return Verdict(True, "Your reply is valid JSON.")

    def instruction(self) -> str:
        return "Wrap your entire reply in JSON; you may put it in a ``` code fence."


_TITLE = re.compile(r"<<[^\n]+>>")


class Title(Check):
    kind = "detectable_format:title"
    summary = "a title in double angular brackets, such as <<poem of joy>>"
    arguments = {}
    example = {}

    def verify(self, reply: str, prompt: str) -> Verdict:
        for title in _TITLE.findall(reply):
            if title.lstrip("<").rstrip(">").strip():
                return Verdict(True, f"Your reply has the title {title}.")
        return Verdict(False, "Your reply has no title; give one in double angular brackets, "
                              "such as <<poem of joy>>.")

    def instruction(self) -> str:
        return "Give your reply a title in double angular brackets, such as <<poem of joy>>."


KINDS = (NumberOfBullets, ConstrainedResponse, NumberOfHighlights, MultipleSections, JsonFormat,
         Title)
