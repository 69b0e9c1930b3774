"""How IFEval counts: words are runs of word characters (NLTK's `\\w+` tokenizer)."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    return len(_WORD.findall(text))
