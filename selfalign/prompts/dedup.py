"""Duplicate prompts: exact (after normalisation) and near duplicates sharing a long prefix.

Both look at every user turn of a conversation (a single-turn prompt is its one user turn), so two
conversations are duplicates when their users said the same things, whatever the answers were.
Only kept rows are remembered, so a dropped row always names an id that is in the output.
Keys are 8-byte blake2b digests held as ints: about 100 bytes a kept row with its id.
"""

from __future__ import annotations

import hashlib
import re

from selfalign.records import PromptRecord, Reject

DEFAULT_PREFIX_CHARS = 100
_SPACES = re.compile(r"\s+")
_TURN_SEPARATOR = "\x1e"  # ASCII record separator: never typed in a prompt


def user_text(record: PromptRecord) -> str:
    """The user turns joined into one key text; a single-turn prompt's is its text."""
    return record.prompt if not record.context else _TURN_SEPARATOR.join(record.user_turns())


def text_key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def prefix_text(text: str, prefix_chars: int) -> str:
    """The near-duplicate key text: case-folded, whitespace runs made one space, first N chars."""
    return _SPACES.sub(" ", text.casefold())[:prefix_chars]


class ExactDedup:
    """Drops a prompt whose normalised text equals a kept one's.

    The key is taken in `check`, before later steps (PII redaction) change the text, and
    `remember` stores that key: call it only for the record last checked.
    """

    def __init__(self) -> None:
        self._kept: dict[int, str] = {}
        self._last_key = 0

    def check(self, record: PromptRecord) -> Reject | None:
        self._last_key = text_key(user_text(record))
        kept = self._kept.get(self._last_key)
        return None if kept is None else Reject("duplicate", f"same text as kept id {kept}")

    def remember(self, record: PromptRecord) -> None:
        self._kept.setdefault(self._last_key, record.id)


class PrefixDedup:
    """Drops a prompt whose first `prefix_chars` normalised characters equal a kept one's."""

    def __init__(self, prefix_chars: int = DEFAULT_PREFIX_CHARS) -> None:
        self.prefix_chars = prefix_chars
        self._kept: dict[int, str] = {}

    def _key(self, record: PromptRecord) -> int:
        return text_key(prefix_text(user_text(record), self.prefix_chars))

    def check(self, record: PromptRecord) -> Reject | None:
        if self.prefix_chars <= 0:
            return None
        kept = self._kept.get(self._key(record))
        if kept is None:
            return None
        return Reject("near_duplicate", f"first {self.prefix_chars} characters match kept id {kept}")

    def remember(self, record: PromptRecord) -> None:
        if self.prefix_chars > 0:
            self._kept.setdefault(self._key(record), record.id)
