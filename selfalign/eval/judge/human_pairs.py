"""Human-labelled preference pairs: a conversation, the answer people chose and the one they
rejected, read from the shapes the field publishes.

The shape is decided per row by its keys, as the prompt readers do:
- TRL preference rows with an explicit prompt: `prompt` (text or chat messages ending in a user
  turn) with `chosen` and `rejected` (text, or a list holding one assistant message);
- TRL rows with an implicit prompt: `chosen` and `rejected` are whole conversations (chat
  messages) that share everything but the final assistant message;
- HH-RLHF rows: `chosen` and `rejected` are "\\n\\nHuman: ...\\n\\nAssistant: ..." transcripts that
  share everything but the final Assistant reply.
The shared part is the prompt; the two final replies are the answers. A row that gives no
usable pair becomes a `Reject` with its reason, never an error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from selfalign.prompts.conversations import (
    LAST_USER, TRANSCRIPT_ROLES, message_turns, transcript_turns, conversation_prompt)
from selfalign.records import Reject
from selfalign.stages.cleaning import same_text

ANSWER_FIELDS = ("chosen", "rejected")
PROMPT_FIELD = "prompt"
ID_FIELD = "id"


@dataclass(frozen=True)
class HumanPair:
    """One pair people labelled: `chosen` is the answer they preferred."""

    id: str
    conversation: list[dict[str, str]]  # ends in the user turn both answers reply to
    chosen: str
    rejected: str
    subset: str | None = None
    source: str = ""
    line: int | None = None


def pair_of_row(row: dict[str, Any], source: str, line: int,
                subset_field: str | None = None) -> HumanPair | Reject:
    """The pair a row holds, or a Reject saying why it holds none."""
    missing = [name for name in ANSWER_FIELDS if row.get(name) is None]
    if missing:
        fields = ", ".join(sorted(row)) or "none"
        return _reject("missing_field", f"no '{missing[0]}' field; fields: {fields}", source,
                       line, row)
    if row.get(PROMPT_FIELD) is not None:
        parts = _explicit_prompt(row[PROMPT_FIELD], row["chosen"], row["rejected"])
    else:
        parts = _implicit_prompt(row["chosen"], row["rejected"])
    if isinstance(parts, Reject):
        return _reject(parts.reason, parts.detail, source, line, row)
    conversation, chosen, rejected = parts
    for name, text in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(text, str) or not text.strip():
            return _reject("empty_answer", f"the {name} answer is empty", source, line, row)
    if same_text(chosen, rejected):
        return _reject("identical_answers", "chosen and rejected are the same text", source,
                       line, row)
    subset = None
    if subset_field is not None:
        value = row.get(subset_field)
        if value in (None, ""):
            return _reject("missing_subset", f"no '{subset_field}' value (--subset-field)",
                           source, line, row)
        subset = str(value)
    pair_id = _row_id(row) or _stable_pair_id(conversation, chosen, rejected)
    return HumanPair(pair_id, conversation, chosen, rejected, subset, source, line)


def _reject(reason: str, detail: str, source: str, line: int, row: dict) -> Reject:
    return Reject(reason, detail, source, line, _row_id(row))


def _row_id(row: dict) -> str | None:
    value = row.get(ID_FIELD)
    return None if value is None or isinstance(value, (dict, list)) or not str(value).strip() \
        else str(value)


def _stable_pair_id(conversation: list[dict], chosen: str, rejected: str) -> str:
    canonical = json.dumps([conversation, chosen, rejected], ensure_ascii=False,
                           sort_keys=True, separators=(",", ":"))
    return "pair-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------- explicit prompt


def _explicit_prompt(prompt: Any, chosen: Any, rejected: Any):
    """(conversation, chosen text, rejected text) from a TRL row with a `prompt` column."""
    if isinstance(prompt, str):
        if not prompt.strip():
            return Reject("empty_prompt", "the prompt is empty")
        conversation = [{"role": "user", "content": prompt}]
    else:
        turns = message_turns(prompt)
        if isinstance(turns, Reject):
            return _in_field(turns, PROMPT_FIELD)
        read = conversation_prompt(turns, LAST_USER)
        if isinstance(read, Reject):
            return _in_field(read, PROMPT_FIELD)
        conversation = [*read.context, {"role": "user", "content": read.prompt}]
    answers = [_answer_text(value, name) for name, value in (("chosen", chosen),
                                                               ("rejected", rejected))]
    problem = next((a for a in answers if isinstance(a, Reject)), None)
    return problem or (conversation, *answers)


def _answer_text(value: Any, name: str) -> str | Reject:
    """An answer given as text, or as a list holding one assistant message (TRL)."""
    if isinstance(value, str):
        return value
    turns = message_turns(value)
    if isinstance(turns, Reject):
        return _in_field(turns, name)
    if len(turns) != 1 or turns[0][1] != "assistant":
        roles = ", ".join(role for _, role, _ in turns) or "none"
        return Reject("not_one_answer", f"'{name}' should hold one assistant message after an "
                      f"explicit prompt; it holds: {roles}")
    return turns[0][2]


def _in_field(reject: Reject, name: str) -> Reject:
    reject.detail = f"'{name}': {reject.detail}"
    return reject


# ---------------------------------------------------------------- implicit prompt


def _implicit_prompt(chosen: Any, rejected: Any):
    """(conversation, chosen text, rejected text) from two whole conversations (chat messages
    or HH-RLHF transcripts) that differ only in their final assistant reply."""
    sides = []
    for name, value in (("chosen", chosen), ("rejected", rejected)):
        if isinstance(value, str):
            turns = transcript_turns(value)
            if not isinstance(turns, Reject) and not turns:
                labels = " or ".join(f"'{label}:'" for label in TRANSCRIPT_ROLES)
                turns = Reject("no_prompt", f"'{name}' is plain text without {labels} labels "
                               f"and the row has no 'prompt' field, so the question the "
                               f"answers reply to is unknown")
        else:
            turns = message_turns(value)
        if isinstance(turns, Reject):
            return _in_field(turns, name)
        if turns[-1][1] != "assistant":
            return Reject("no_final_reply", f"'{name}' ends in a {turns[-1][1]} turn; the answer "
                          f"being compared is its final assistant reply")
        sides.append(turns)
    shared = [(role, content) for _, role, content in sides[0][:-1]]
    if shared != [(role, content) for _, role, content in sides[1][:-1]]:
        return Reject("conversations_differ", "chosen and rejected differ before their final "
                      "reply, so they do not answer the same conversation")
    read = conversation_prompt(sides[0][:-1], LAST_USER)
    if isinstance(read, Reject):
        return read
    conversation = [*read.context, {"role": "user", "content": read.prompt}]
    return conversation, sides[0][-1][2], sides[1][-1][2]
