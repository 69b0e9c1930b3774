"""The word-level difference of two texts (the labelling app's browser and `principles try`)."""

from __future__ import annotations

import difflib
import re


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """[(op, text)] with op in '=', '-', '+': the words kept, removed and added. Whitespace is
    kept as its own tokens, so the '=' and '+' texts joined give `after` back exactly."""
    old, new = re.findall(r"\S+|\s+", before), re.findall(r"\S+|\s+", after)
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new,
                                                     autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(("=", "".join(old[i1:i2])))
            continue
        if i2 > i1:
            parts.append(("-", "".join(old[i1:i2])))
        if j2 > j1:
            parts.append(("+", "".join(new[j1:j2])))
    return parts
