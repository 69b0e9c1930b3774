"""Conversations as prompts: chat messages, ShareGPT, MT-Bench turns and HH-RLHF transcripts.

Each reader turns one cell into `PromptTurns` (earlier turns, the user turn to answer, and what
goes to metadata) or a `Reject` that says what is wrong. The rules are the same for every shape:
- system turns are not sent; their text is kept as `metadata["system"]`;
- the turns used alternate user/assistant, starting with a user turn, and none is empty;
- `last-user` (the default) keeps the conversation up to its last user turn: that turn is the
  prompt and the turns before it are its context. What follows it (the reply that ShareGPT,
  `messages` and HH-RLHF rows usually end with) is not sent; its text is kept as
  `metadata["reply"]`;
- `first-user` keeps only the first user turn, whatever follows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from selfalign.records import Reject

LAST_USER = "last-user"
FIRST_USER = "first-user"
CONVERSATION_MODES = (LAST_USER, FIRST_USER)

# Speaker names of chat messages (OpenAI/TRL `role`, ShareGPT `from`), as selfalign calls them.
ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
         "system": "system"}
# Speaker labels of an HH-RLHF transcript ("\n\nHuman: ...\n\nAssistant: ...").
TRANSCRIPT_ROLES = {"Human": "user", "Assistant": "assistant"}

Turn = tuple[int, str, Any]  # (1-based position in the source, role, content)


@dataclass
class PromptTurns:
    """A prompt read from one cell: the user turn to answer, the turns before it, extra metadata."""

    prompt: str
    context: list[dict[str, str]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- the shapes


def text_prompt(value: Any, mode: str) -> PromptTurns | Reject:
    """A plain text cell; a cell holding a message list (a TRL conversational prompt) is read as one."""
    if isinstance(value, list):
        return messages_prompt(value, mode)
    if value is None:
        return Reject("empty_prompt", "prompt is null")
    if not isinstance(value, str):
        return Reject("not_a_string", f"holds {type(value).__name__}, expected a string")
    if not value.strip():
        return Reject("empty_prompt", "prompt is empty or only whitespace")
    return PromptTurns(value)


def messages_prompt(value: Any, mode: str) -> PromptTurns | Reject:
    """A list of `{"role", "content"}` (OpenAI, TRL) or `{"from", "value"}` (ShareGPT) messages."""
    turns = message_turns(value)
    return turns if isinstance(turns, Reject) else conversation_prompt(turns, mode)


def turns_prompt(value: Any, mode: str) -> PromptTurns | Reject:
    """MT-Bench `turns`: a list of user turns.

    Each later turn follows up an answer that the source does not hold, so the prompt is the first
    turn in either mode and the later ones are kept as `metadata["follow_ups"]`. A `turns` list of
    message objects is read as chat messages.
    """
    if isinstance(value, list) and value and all(isinstance(t, dict) for t in value):
        return messages_prompt(value, mode)
    if not isinstance(value, list):
        return Reject("not_a_list", f"holds {type(value).__name__}, expected a list of user turns")
    if not value:
        return Reject("no_user_turn", "the list of turns is empty")
    problem = _check_texts((n, "user", text) for n, text in enumerate(value, start=1))
    if problem is not None:
        return problem
    return PromptTurns(value[0], metadata={"follow_ups": value[1:]} if len(value) > 1 else {})


def transcript_prompt(value: Any, mode: str) -> PromptTurns | Reject:
    """An HH-RLHF transcript: the conversation up to and including its last Human turn.

    What follows the last Human turn (the answer being rated) is not sent, and kept as
    `metadata["reply"]` like any conversation's. A cell holding a message list instead of text
    (a TRL `chosen` column) is cut the same way.
    """
    if isinstance(value, list):
        turns = message_turns(value)
    elif isinstance(value, str):
        turns = transcript_turns(value)
    else:
        return Reject("not_a_string", f"holds {type(value).__name__}, expected a transcript")
    if isinstance(turns, Reject):
        return turns
    if not any(role == "user" for _, role, _ in turns):
        return Reject("no_user_turn", "the transcript has no Human turn")
    return conversation_prompt(turns, mode)


# ---------------------------------------------------------------- parsing


def split_transcript(text: str, labels: Iterable[str]) -> tuple[str, list[tuple[str, str]]]:
    """Split "\\n\\nHuman: ...\\n\\nAssistant: ..." text at its speaker labels.

    Returns the text before the first label and each (label, text) in order, texts stripped. A
    label counts at the start of the text or after a blank line, followed by a colon.
    """
    names = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    parts = re.split(rf"(?:^|\n\n)({names}):", text)
    return parts[0], [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts), 2)]


def transcript_turns(text: str) -> list[Turn] | Reject:
    preamble, segments = split_transcript(text, TRANSCRIPT_ROLES)
    if segments and preamble.strip():
        return Reject("not_a_transcript", "text before the first 'Human:' or 'Assistant:' label")
    return [(n, TRANSCRIPT_ROLES[label], content) for n, (label, content) in enumerate(segments, 1)]


def message_turns(value: Any) -> list[Turn] | Reject:
    if not isinstance(value, list):
        return Reject("not_a_list", f"holds {type(value).__name__}, expected a list of messages")
    turns = []
    for number, message in enumerate(value, start=1):
        if not isinstance(message, dict):
            return Reject("not_a_message", f"turn {number} is a {type(message).__name__}, expected "
                          "an object with role and content (or from and value)")
        speaker, content = ((message.get("role"), message.get("content")) if "role" in message
                            else (message.get("from"), message.get("value")))
        role = ROLES.get(speaker.lower()) if isinstance(speaker, str) else None
        if role is None:
            return Reject("unknown_role", f"turn {number} has role {speaker!r}; known roles: "
                          f"{', '.join(ROLES)}")
        turns.append((number, role, content))
    return turns


def conversation_prompt(turns: list[Turn], mode: str) -> PromptTurns | Reject:
    """The prompt of a parsed conversation, by the rules in this module's docstring."""
    system = [t for t in turns if t[1] == "system"]
    dialogue = [t for t in turns if t[1] != "system"]
    users = [t for t in dialogue if t[1] == "user"]
    if not users:
        return Reject("no_user_turn", "the conversation has no user turn")
    if mode == FIRST_USER:
        used, after = users[:1], []
    else:
        cut = dialogue.index(users[-1]) + 1
        used, after = dialogue[:cut], dialogue[cut:]
    problem = _check_texts([*system, *used]) or _check_alternation(used)
    if problem is not None:
        return problem
    context = [{"role": role, "content": content} for _, role, content in used[:-1]]
    metadata = {"system": "\n\n".join(t[2] for t in system)} if system else {}
    reply = _reply_text(after)
    if reply:
        metadata["reply"] = reply
    return PromptTurns(used[-1][2], context, metadata)


def _reply_text(turns: list[Turn]) -> str:
    """The text of the turns after the prompt (one assistant reply, as a rule). They are not
    sent, so they are not checked either: an empty or odd reply keeps nothing."""
    return "\n\n".join(c for _, _, c in turns if isinstance(c, str) and c.strip())


def _check_texts(turns: Iterable[Turn]) -> Reject | None:
    for number, role, content in turns:
        if not isinstance(content, str):
            return Reject("not_a_string", f"turn {number} ({role}) holds "
                          f"{type(content).__name__}, expected text")
        if not content.strip():
            return Reject("empty_turn", f"turn {number} ({role}) is empty")
    return None


def _check_alternation(turns: list[Turn]) -> Reject | None:
    for index, (number, role, _) in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            return Reject("not_alternating", f"turn {number} is a {role} turn out of order: user "
                          "and assistant turns alternate, starting with a user turn")
    return None
