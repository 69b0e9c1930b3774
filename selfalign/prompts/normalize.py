"""Prompt normalisation: Unicode NFC and trimmed whitespace, nothing else (text stays data)."""

from __future__ import annotations

import unicodedata

from selfalign.records import PromptRecord, Reject


def normalize_prompt(text: str) -> str:
    """NFC-normalise and trim; inner whitespace and template-like text are kept as they are."""
    return unicodedata.normalize("NFC", text).strip()


class NormalizeStep:
    """Normalises the prompt and every earlier turn; drops the row if one of them is left empty."""

    def check(self, record: PromptRecord) -> Reject | None:
        record.prompt = normalize_prompt(record.prompt)
        if not record.prompt:
            return Reject("empty_prompt", "prompt is empty after normalisation")
        record.context = [{**turn, "content": normalize_prompt(turn["content"])} for turn in record.context]
        for number, turn in enumerate(record.context, start=1):
            if not turn["content"]:
                return Reject("empty_turn", f"turn {number} ({turn['role']}) is empty after normalisation")
        return None
