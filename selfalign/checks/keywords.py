"""keywords: words that must appear, how often, words that must not, how often a letter appears."""

from __future__ import annotations

import re

from selfalign.checks.base import Argument, Check, CheckArgumentError, Verdict
from selfalign.checks.bounds import bound_phrase, count_argument, counted, relation_argument


def _quoted(words) -> str:
    return ", ".join(f"'{word}'" for word in words)


class Keywords(Check):
    kind = "keywords:existence"
    summary = "each keyword appears somewhere in the reply (in any case, inside words too)"
    arguments = {"keywords": Argument("array", "the keywords", items="string")}
    example = {"keywords": ["budget", "deadline"]}

    def __init__(self, **args):
        super().__init__(**args)
        self._patterns = [re.compile(re.escape(word), re.IGNORECASE) for word in args["keywords"]]

    def verify(self, reply: str, prompt: str) -> Verdict:
        missing = [word for word, pattern in zip(self.args["keywords"], self._patterns)
                   if not pattern.search(reply)]
        if missing:
            return Verdict(False, f"Your reply must include {_quoted(self.args['keywords'])}; "
                                  f"it lacks {_quoted(missing)}.")
        return Verdict(True, f"Your reply includes {_quoted(self.args['keywords'])}.")

    def instruction(self) -> str:
        return f"Include the keywords {_quoted(self.args['keywords'])} in your reply."


class KeywordFrequency(Check):
    kind = "keywords:frequency"
    summary = "how many times a keyword appears (in any case, inside words too)"
    arguments = {"keyword": Argument("string", "the keyword"),
                 "frequency": count_argument("the bound on its occurrences"),
                 "relation": relation_argument()}
    example = {"keyword": "because", "frequency": 2, "relation": "at least"}

    def __init__(self, **args):
        super().__init__(**args)
        self._pattern = re.compile(re.escape(args["keyword"].strip()), re.IGNORECASE)

    def verify(self, reply: str, prompt: str) -> Verdict:
        return counted(len(self._pattern.findall(reply)), self.args["relation"],
                       self.args["frequency"], "time", subject=f"Your reply uses "
                       f"'{self.args['keyword']}'", verb="it must use it", unit="times")

    def instruction(self) -> str:
        bound = bound_phrase(self.args["relation"], self.args["frequency"])
        return f"Use the word '{self.args['keyword']}' {bound} times."


class ForbiddenWords(Check):
    kind = "keywords:forbidden_words"
    summary = "none of these words appears as a whole word (in any case)"
    arguments = {"forbidden_words": Argument("array", "the words", items="string")}
    example = {"forbidden_words": ["basically", "literally"]}

    def __init__(self, **args):
        super().__init__(**args)
        # One scan for all the words; the words found are told apart only when one is.
        self._any = re.compile(r"\b(?:" + "|".join(map(re.escape, args["forbidden_words"]))
                               + r")\b", re.IGNORECASE)
        self._patterns = [re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)
                          for word in args["forbidden_words"]]
        self._folded = [word.casefold() for word in args["forbidden_words"]]

    def verify(self, reply: str, prompt: str) -> Verdict:
        folded = reply.casefold()  # a word absent from the folded text cannot match: skip it
        if not any(word in folded for word in self._folded) or not self._any.search(reply):
            return Verdict(True, f"Your reply uses none of "
                                 f"{_quoted(self.args['forbidden_words'])}.")
        used = [found.group(0) for found in (p.search(reply) for p in self._patterns) if found]
        if used:
            return Verdict(False, f"Your reply uses {_quoted(used)}; it must not use "
                                  f"{_quoted(self.args['forbidden_words'])}.")
        return Verdict(True, f"Your reply uses none of {_quoted(self.args['forbidden_words'])}.")

    def instruction(self) -> str:
        return f"Do not use the words {_quoted(self.args['forbidden_words'])}."


class LetterFrequency(Check):
    kind = "keywords:letter_frequency"
    summary = "how many times a letter appears (in any case)"
    arguments = {"letter": Argument("string", "one letter"),
                 "let_frequency": count_argument("the bound on its occurrences"),
                 "let_relation": relation_argument()}
    example = {"letter": "z", "let_frequency": 3, "let_relation": "at least"}

    def __init__(self, **args):
        super().__init__(**args)
        if len(args["letter"].strip()) != 1:
            raise CheckArgumentError("letter", f"letter: {args['letter']!r} is not one letter")
        self._letter = args["letter"].strip().lower()

    def verify(self, reply: str, prompt: str) -> Verdict:
        return counted(reply.lower().count(self._letter), self.args["let_relation"],
                       self.args["let_frequency"], "time",
                       subject=f"Your reply has the letter '{self._letter}'",
                       verb="it must have it", unit="times")

    def instruction(self) -> str:
        bound = bound_phrase(self.args["let_relation"], self.args["let_frequency"])
        return f"Use the letter '{self._letter}' {bound} times."


KINDS = (Keywords, KeywordFrequency, ForbiddenWords, LetterFrequency)
