"""Prompt normalisation: Unicode NFC and trimmed whitespace, nothing else (text stays data)."""

from __future__ import annotations

import unicodedata

from selfalign.records import PromptRecord, Reject


def normalize_prompt(text: str) -> str:
    """NFC-normalise and trim; inner whitespace and template-like text are kept as they are."""
    return unicodedata.normalize("NFC", text).strip()


class NormalizeStep:
    """Normalises the prompt in place; drops it if nothing is left."""

    def check(self, record: PromptRecord) -> Reject | None:
        record.prompt = normalize_prompt(record.prompt)
        if not record.prompt:
            return Reject("empty_prompt", "prompt is empty after normalisation")
        return None
