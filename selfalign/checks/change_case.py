"""change_case: words in capitals, a reply all in English capitals or all in lower case."""

from __future__ import annotations

from selfalign.checks.base import Check, Verdict
from selfalign.checks.bounds import bound_phrase, count_argument, counted, relation_argument
from selfalign.checks.language import language_name
from selfalign.checks.text import capital_words, detect_language


class CapitalWordFrequency(Check):
    kind = "change_case:capital_word_frequency"
    summary = "how many words are written in capitals (NASA, I, WELL-KNOWN)"
    arguments = {"capital_frequency": count_argument("the bound on words in capitals"),
                 "capital_relation": relation_argument()}
    example = {"capital_frequency": 3, "capital_relation": "less than"}

    def verify(self, reply: str, prompt: str) -> Verdict:
        return counted(len(capital_words(reply)), self.args["capital_relation"],
                       self.args["capital_frequency"], "word in capitals", "words in capitals")

    def instruction(self) -> str:
        bound = bound_phrase(self.args["capital_relation"], self.args["capital_frequency"])
        return f"Write {bound} words in all capital letters."


def _english_in_case(reply: str, in_case, wrong_letter, case: str, other: str) -> Verdict:
    """IFEval's verdict: the reply is all in one case and langdetect reads it as English (a reply
    whose language cannot be identified passes)."""
    if not in_case(reply):
        word = next((w for w in reply.split() if any(wrong_letter(ch) for ch in w)), None)
        if word is None:
            return Verdict(False, f"Your reply has no letters; it must be English in {case}.")
        return Verdict(False, f"Your reply has {other} ({word!r}); it must be all in {case}.")
    seen = detect_language(reply)
    if seen is None or seen == "en":
        return Verdict(True, f"Your reply is English, in {case}.")
    return Verdict(False, f"Your reply reads as {language_name(seen)}; it must be English, in "
                          f"{case}.")


class EnglishCapital(Check):
    kind = "change_case:english_capital"
    summary = "the whole reply in English and in capital letters"
    arguments = {}
    example = {}

    def verify(self, reply: str, prompt: str) -> Verdict:
        return _english_in_case(reply, str.isupper, str.islower, "capital letters",
                                "lower-case letters")

    def instruction(self) -> str:
        return "Write your entire reply in English, in capital letters only."


class EnglishLowercase(Check):
    kind = "change_case:english_lowercase"
    summary = "the whole reply in English and in lower-case letters"
    arguments = {}
    example = {}

    def verify(self, reply: str, prompt: str) -> Verdict:
        return _english_in_case(reply, str.islower, str.isupper, "lower case", "capital letters")

    def instruction(self) -> str:
        return "Write your entire reply in English, in lower-case letters only; no capitals."


KINDS = (CapitalWordFrequency, EnglishCapital, EnglishLowercase)
