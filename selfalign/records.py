"""Record types that flow between readers, stages and writers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


def stable_prompt_id(text: str) -> str:
    """Id for a prompt that came without one: a hash of its text, the same on every machine."""
    return "p-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def stable_conversation_id(messages: list[dict[str, str]]) -> str:
    """Id for a multi-turn prompt that came without one: a hash of its canonical JSON."""
    turns = [{"role": m["role"], "content": m["content"]} for m in messages]
    canonical = json.dumps(turns, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return stable_prompt_id(canonical)


@dataclass
class PromptRecord:
    """One usable prompt from a source, after parsing."""

    id: str
    prompt: str
    user_id: str | None = None
    split: str = "train"
    source: str = ""
    line: int | None = None  # 1-based line or row number in its source
    language: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Earlier turns of a multi-turn prompt (user/assistant alternating, ending in an assistant
    # turn); `prompt` is the last user turn, the one the first answer answers.
    context: list[dict[str, str]] = field(default_factory=list)

    def conversation(self) -> list[dict[str, str]]:
        """The whole prompt as chat messages, ending in the user turn to answer."""
        return [*self.context, {"role": "user", "content": self.prompt}]

    def user_turns(self) -> list[str]:
        """Every user turn in order, the last one being `prompt`."""
        return [m["content"] for m in self.context if m["role"] == "user"] + [self.prompt]

    def stable_id(self) -> str:
        """The id this record gets when its source gave none: single-turn prompts keep the hash
        of their text, multi-turn ones hash the whole conversation."""
        if not self.context:
            return stable_prompt_id(self.prompt)
        return stable_conversation_id(self.conversation())

    def metadata_json(self) -> str:
        return json.dumps(self.metadata, ensure_ascii=False, sort_keys=True, default=str)


@dataclass
class Reject:
    """An input row that was not used, and why. `reason` is a short code, `detail` a sentence."""

    reason: str
    detail: str = ""
    source: str = ""
    line: int | None = None
    id: str | None = None
    stage: str = "read"
    sample_index: int | None = None  # set when one sample of a prompt failed, not the prompt
