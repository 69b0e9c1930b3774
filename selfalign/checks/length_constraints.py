"""length_constraints: words, sentences, paragraphs, the first word of the n-th paragraph."""

from __future__ import annotations

from selfalign.checks.base import Argument, Check, Verdict
from selfalign.checks.text import count_words

RELATIONS = ("less than", "at least")
RELATION = Argument("string", "`less than` (strictly fewer) or `at least` (that many or more)",
                    choices=RELATIONS)


def compare(count: int, relation: str, bound: int) -> bool:
    return count < bound if relation == "less than" else count >= bound


def bound_words(relation: str, bound: int) -> str:
    return f"fewer than {bound}" if relation == "less than" else f"at least {bound}"


class NumberOfWords(Check):
    kind = "length_constraints:number_words"
    summary = "the reply's length in words (IFEval counts runs of letters and digits)"
    arguments = {"relation": RELATION,
                 "num_words": Argument("integer", "the bound", minimum=1)}
    example = {"relation": "less than", "num_words": 40}

    def verify(self, reply: str, prompt: str) -> Verdict:
        words, relation, bound = count_words(reply), self.args["relation"], self.args["num_words"]
        if compare(words, relation, bound):
            return Verdict(True, f"{words} words; {bound_words(relation, bound)} asked")
        return Verdict(False, f"Your reply has {words} words; it must have "
                              f"{bound_words(relation, bound)}.")

    def instruction(self) -> str:
        return f"Answer with {bound_words(self.args['relation'], self.args['num_words'])} words."
