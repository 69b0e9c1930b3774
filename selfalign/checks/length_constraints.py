"""length_constraints: words, sentences, paragraphs, the first word of the n-th paragraph."""

from __future__ import annotations

import re

from selfalign.checks.base import Argument, Check, Verdict
from selfalign.checks.bounds import bound_phrase, count_argument, counted, relation_argument
from selfalign.checks.text import count_sentences, count_words, plural


class NumberOfWords(Check):
    kind = "length_constraints:number_words"
    summary = "the reply's length in words (IFEval counts runs of letters and digits)"
    arguments = {"relation": relation_argument(), "num_words": count_argument("the bound")}
    example = {"relation": "less than", "num_words": 40}

    def verify(self, reply: str, prompt: str) -> Verdict:
        return counted(count_words(reply), self.args["relation"], self.args["num_words"], "word")

    def loose_can_pass(self, strict: Verdict) -> bool:
        # Taking out lines or `*`s never adds a word (`*` is no word character), so too few
        # words stay too few.
        return self.args["relation"] == "less than"

    def instruction(self) -> str:
        return f"Answer with {bound_phrase(self.args['relation'], self.args['num_words'])} words."


class NumberOfSentences(Check):
    kind = "length_constraints:number_sentences"
    summary = "the reply's length in sentences (Punkt's English model splits them)"
    arguments = {"relation": relation_argument(), "num_sentences": count_argument("the bound")}
    example = {"relation": "at least", "num_sentences": 3}

    def verify(self, reply: str, prompt: str) -> Verdict:
        return counted(count_sentences(reply), self.args["relation"], self.args["num_sentences"],
                       "sentence")

    def instruction(self) -> str:
        bound = bound_phrase(self.args["relation"], self.args["num_sentences"])
        return f"Your reply should have {bound} sentences."


_DIVIDER = re.compile(r"\s?\*\*\*\s?")


class NumberOfParagraphs(Check):
    kind = "length_constraints:number_paragraphs"
    summary = "exactly this many paragraphs, separated by the markdown divider ***"
    arguments = {"num_paragraphs": count_argument("how many paragraphs, exactly")}
    example = {"num_paragraphs": 3}

    def verify(self, reply: str, prompt: str) -> Verdict:
        wanted = self.args["num_paragraphs"]
        parts = _DIVIDER.split(reply)
        inner_blank = [n for n, part in enumerate(parts[1:-1], start=2) if not part.strip()]
        if inner_blank:
            return Verdict(False, f"Your reply has an empty paragraph (number {inner_blank[0]}) "
                                  f"between two *** dividers; it must have {wanted} paragraphs.")
        # A divider before the first paragraph or after the last does not make one.
        count = sum(1 for part in parts if part.strip())
        if count == wanted:
            return Verdict(True, f"{plural(count, 'paragraph')}, as asked")
        return Verdict(False, f"Your reply has {plural(count, 'paragraph')} separated by ***; "
                              f"it must have exactly {wanted}.")

    def instruction(self) -> str:
        return (f"Write exactly {self.args['num_paragraphs']} paragraphs, separated by the "
                f"markdown divider ***.")


_FIRST_WORD_END = frozenset(".,?!'\"")


def _first_word(paragraph: str) -> str:
    """The paragraph's first word in lower case, cut at the first punctuation mark after any
    opening quotes (IFEval's reading: `"Summer," she said` starts with `summer`)."""
    word = paragraph.split()[0].lstrip("'").lstrip('"')
    end = next((n for n, ch in enumerate(word) if ch in _FIRST_WORD_END), len(word))
    return word[:end].lower()


class NthParagraphFirstWord(Check):
    kind = "length_constraints:nth_paragraph_first_word"
    summary = ("exactly this many paragraphs (separated by blank lines), the n-th starting with "
               "a word")
    arguments = {"num_paragraphs": count_argument("how many paragraphs, exactly"),
                 "nth_paragraph": count_argument("which paragraph (1 is the first)"),
                 "first_word": Argument("string", "the word that paragraph starts with "
                                                  "(compared in lower case)")}
    example = {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "however"}

    def verify(self, reply: str, prompt: str) -> Verdict:
        wanted, nth = self.args["num_paragraphs"], self.args["nth_paragraph"]
        word = self.args["first_word"].lower()
        parts = reply.split("\n\n")
        count = sum(1 for part in parts if part.strip())
        paragraph = parts[nth - 1].strip() if nth <= count else ""
        if not paragraph:
            return Verdict(False, f"Your reply has no paragraph {nth} (it has "
                                  f"{plural(count, 'paragraph')} separated by blank lines); "
                                  f"it must have {wanted}, paragraph {nth} starting with "
                                  f"'{word}'.")
        found = _first_word(paragraph)
        problems = []
        if count != wanted:
            problems.append(f"has {plural(count, 'paragraph')} separated by blank lines, "
                            f"not {wanted}")
        if found != word:
            problems.append(f"starts paragraph {nth} with '{found}', not '{word}'")
        if problems:
            return Verdict(False, f"Your reply {' and '.join(problems)}.")
        return Verdict(True, f"{plural(count, 'paragraph')}; paragraph {nth} starts with '{word}'")

    def instruction(self) -> str:
        return (f"Write exactly {self.args['num_paragraphs']} paragraphs, separated by blank "
                f"lines; paragraph {self.args['nth_paragraph']} must start with the word "
                f"'{self.args['first_word']}'.")


KINDS = (NumberOfSentences, NumberOfParagraphs, NumberOfWords, NthParagraphFirstWord)
