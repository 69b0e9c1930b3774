"""`--prompt-template`: several columns into one prompt, e.g. "{ContextString}\\n\\n{Behavior}".

A template names columns and nothing else. `{name}` is replaced by that column's text, `{{` and
`}}` are literal braces, and `\\n`, `\\t` and `\\\\` in the template (never in the cells) are a
newline, a tab and a backslash, so a template can be typed on a command line. There are no
expressions, no attribute or index access and no format specs, and the cells are pasted in as they
are: a cell holding `{x}` or `%s` stays `{x}` or `%s`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from selfalign.errors import UserError
from selfalign.records import Reject

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|\\(.)|[{}]", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}
# What str.format would read as more than a name, and how to say so.
_NOT_A_NAME = {".": "attribute access", "[": "indexing", "]": "indexing", "!": "a conversion",
               ":": "a format spec"}


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed template: literal text and the columns pasted between it."""

    text: str
    parts: tuple[str | Column, ...]

    @cached_property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.name for p in self.parts if isinstance(p, Column)))

    @classmethod
    def parse(cls, text: str) -> "PromptTemplate":
        parts: list[str | Column] = []
        position = 0
        for match in _TOKEN.finditer(text):
            parts.append(text[position:match.start()])
            parts.append(_part(match, text))
            position = match.end()
        parts.append(text[position:])
        template = cls(text, tuple(p for p in parts if p != ""))
        if not template.columns:
            raise UserError(f"--prompt-template {text!r} names no column; write the columns to "
                            "join in braces, e.g. \"{ContextString}\\n\\n{Behavior}\".")
        return template

    def render(self, row: dict[str, Any]) -> str | Reject:
        """The prompt for one row, or a Reject if a column is absent, not text, or all empty."""
        missing = [name for name in self.columns if name not in row]
        if missing:
            return Reject("missing_field", f"no field '{missing[0]}' named by --prompt-template; "
                          f"fields: {', '.join(sorted(row)) or 'none'}")
        pieces = []
        for part in self.parts:
            value = part if isinstance(part, str) else row[part.name]
            if isinstance(value, (dict, list)):
                return Reject("not_a_string", f"'{part.name}' holds {type(value).__name__}, "
                              "expected text")
            pieces.append("" if value is None else str(value))
        if all(row[name] is None or not str(row[name]).strip() for name in self.columns):
            return Reject("empty_prompt", f"every column of --prompt-template is empty "
                          f"({', '.join(self.columns)})")
        return "".join(pieces)


def _part(match: re.Match, text: str) -> str | Column:
    token, name, escaped = match.group(0), match.group(1), match.group(2)
    if token in ("{{", "}}"):
        return token[0]
    if escaped is not None:
        return _ESCAPES.get(escaped, token)
    if name is None:
        raise UserError(f"--prompt-template {text!r} has an unmatched '{token}' at character "
                        f"{match.start() + 1}; write '{token * 2}' for a literal brace.")
    for char, what in _NOT_A_NAME.items():
        if char in name:
            raise UserError(f"--prompt-template {text!r}: '{{{name}}}' uses {what}; a template "
                            "names columns only, e.g. {Behavior}.")
    if not name.strip():
        raise UserError(f"--prompt-template {text!r}: '{{{name}}}' names no column; write a "
                        "column name in the braces, e.g. {Behavior}.")
    return Column(name)
