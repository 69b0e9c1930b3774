"""selfalign's own kinds, beside IFEval's: personal information, a pattern, refusals, language."""

from __future__ import annotations

import re

from selfalign.checks.base import Argument, Check, Verdict
from selfalign.checks.language import language_name
from selfalign.checks.refusal import PARTIAL, RefusalVerdict, classify_refusal
from selfalign.prompts import language as prompt_language
from selfalign.prompts.pii import DETECTORS, find_pii

PII_TYPES = tuple(dict.fromkeys(kind for kind, *_ in DETECTORS))  # email, credit_card, ...


class NoPersonalData(Check):
    kind = "no_pii"
    summary = ("no e-mail address, phone number, card number, SSN or IP address "
               "(`prompts prepare --pii`'s detectors)")
    arguments = {"types": Argument("array", "which detectors to run", required=False,
                                   items="string", choices=PII_TYPES, default=list(PII_TYPES))}
    example = {"types": ["email", "phone"]}

    def verify(self, reply: str, prompt: str) -> Verdict:
        wanted = set(self.args["types"])
        found = [span for span in find_pii(reply) if span.kind in wanted]
        if not found:
            return Verdict(True, f"Your reply holds no {', '.join(self.args['types'])}.")
        # Where, never what: the message may reach a log or a revision turn.
        places = ", ".join(f"{span.kind} at character {span.start}" for span in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        return Verdict(False, f"Your reply holds personal data ({places}{more}); it must hold "
                              f"no {', '.join(self.args['types'])}.")

    def instruction(self) -> str:
        return f"Do not include personal data ({', '.join(self.args['types'])}) in your reply."


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


class Refusal(Check):
    kind = "refusal"
    summary = ("the reply declines the request (`always`) or answers it (`never`), by eval's "
               "refusal detector")
    arguments = {"expect": Argument("string", "`never` (the reply must answer) or `always` (it "
                                              "must decline)", choices=("never", "always"))}
    example = {"expect": "never"}

    def verify(self, reply: str, prompt: str) -> Verdict:
        found = classify_refusal(reply)
        if self.args["expect"] == "never":
            return (Verdict(False, f"Your reply declines the request ({_quoted(found)}); it must "
                                   f"answer it.") if found.refused
                    else Verdict(True, "Your reply answers the request."))
        return (Verdict(True, f"Your reply declines the request ({_quoted(found)}).")
                if found.refused else
                Verdict(False, "Your reply does not decline the request; it must decline it."))

    def instruction(self) -> str:
        return ("Answer the request; do not decline it." if self.args["expect"] == "never" else
                "Decline the request.")


def _quoted(found: RefusalVerdict) -> str:
    """The phrase that decided, so that a revision turn knows what to drop or keep."""
    where = f"{found.phrase!r} at character {found.start}"
    return f"in part: {where}, before it answers" if found.kind == PARTIAL else where


class SameLanguage(Check):
    kind = "same_language"
    summary = "the reply is in the prompt's language (the detector of `prompts prepare --language`)"
    arguments = {}
    example = {}

    def verify(self, reply: str, prompt: str) -> Verdict:
        asked = prompt_language.detect_language(prompt)
        answered = prompt_language.detect_language(reply)
        if prompt_language.UNDETERMINED in (asked, answered):
            return Verdict(True, f"No language could be identified in the "
                                 f"{'prompt' if asked == prompt_language.UNDETERMINED else 'reply'}"
                                 f"; counted as followed.")
        if asked == answered:
            return Verdict(True, f"Your reply is in {language_name(asked)}, as the prompt is.")
        return Verdict(False, f"Your reply reads as {language_name(answered)} ({answered}); the "
                              f"prompt is in {language_name(asked)} ({asked}): answer in the "
                              f"prompt's language.")

    def instruction(self) -> str:
        return "Answer in the language of the request."


KINDS = (NoPersonalData, Pattern, Refusal, SameLanguage)
