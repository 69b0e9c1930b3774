"""Clean what a model writes around a revision, so `chosen` holds only the answer itself."""

from __future__ import annotations

import re

# "Sure, here is a revised response:", "Here's my rewritten answer to the question:",
# "Revised response:", "Certainly! Below is an improved version that avoids ...:".
# Only a lead-in that ends with a colon (or a line break) is removed, so an answer that merely
# starts with "Sure" keeps its first word.
_LEAD_IN = re.compile(
    r"""^\s*
    (?:(?:sure|certainly|okay|ok|of\ course|absolutely|alright)[\s,!.]*)?
    (?:(?:here(?:'s|’s|\ is|\ are)|below\ is|this\ is)\s+)?
    (?:(?:a|an|the|my)\s+)?
    (?:(?:revised|rewritten|updated|improved|new|edited|corrected|better|safer)\s+)+
    (?:version|response|answer|reply|text)
    [^\n:]{0,80}?
    (?:\s*:|\s*\n)
    """,
    re.IGNORECASE | re.VERBOSE,
)
_BARE_LABEL = re.compile(r"^\s*(?:revision|revised|rewrite)\s*:\s*", re.IGNORECASE)
_PAIRED_QUOTES = {'"': '"', "“": "”", "'": "'"}


def clean_revision(text: str) -> str:
    """Strip a leading boilerplate line and quotes wrapped around the whole answer."""
    cleaned = _LEAD_IN.sub("", text, count=1)
    cleaned = _BARE_LABEL.sub("", cleaned, count=1).strip()
    if len(cleaned) >= 2 and _PAIRED_QUOTES.get(cleaned[0]) == cleaned[-1]:
        inner = cleaned[1:-1]
        if cleaned[0] not in inner:  # one quoted block, not two quoted phrases
            cleaned = inner.strip()
    return cleaned


def same_text(a: str, b: str) -> bool:
    """Equal up to whitespace: such a pair teaches a preference for nothing."""
    return " ".join(a.split()) == " ".join(b.split())
