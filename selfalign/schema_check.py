"""JSON Schema validation, every error turned into a Problem the file's author can act on.

The schemas in selfalign/schemas/ are the single source of truth: editors read the same files
through `# yaml-language-server: $schema=...`. This module only words their errors.
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
from functools import cache
from pathlib import Path

import jsonschema

from selfalign.errors import Problem
from selfalign.yaml_lines import LineDict, LineList

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
KEBAB = "^[a-z0-9]+(-[a-z0-9]+)*$"
NON_BLANK = "\\S"

_TYPE_WORDS = {
    "object": "a mapping (`key: value` lines)",
    "array": "a list (`- item` lines)",
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "nothing",
}


@cache
def validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def check(data: object, kind: str, shown: str) -> list[Problem]:
    """All schema problems of one document, in line order, but those inside a `checks:` entry
    (constitution/check_specs.py words them, from the checks registry)."""
    problems = []
    for error in validator(kind).iter_errors(data):
        if not in_check_entry(data, list(error.absolute_path)):
            problems += _problems(error, data, shown)
    return sorted(dict.fromkeys(problems), key=lambda p: (p.line or 0))


CHECKS = "checks"


def in_check_entry(data: object, path: list) -> bool:
    """Whether a path lies inside a mapping listed under `checks:`."""
    if len(path) < 2 or path[0] != CHECKS or not isinstance(path[1], int):
        return False
    entries = data.get(CHECKS) if isinstance(data, dict) else None
    return (isinstance(entries, list) and path[1] < len(entries)
            and isinstance(entries[path[1]], dict))


def _problems(error: jsonschema.ValidationError, data: object, shown: str) -> list[Problem]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        return [_unknown_key(error, data, path + [key], shown) for key in _extra_keys(error)]
    if error.validator == "required":
        return [Problem(shown, line_of(data, path) if path else None, field_name(path + [key]), message)
                for key, message in _missing(error)]
    return [Problem(shown, line_of(data, path), field_name(path) or None, _message(error, path))]


def _extra_keys(error) -> list[str]:
    return [key for key in error.instance if key not in error.schema.get("properties", {})]


def suggest(word: str, choices) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown_key(error, data, path, shown) -> Problem:
    key, allowed = path[-1], list(error.schema.get("properties", {}))
    nearest = suggest(key, allowed)
    if nearest:
        message = f"unknown key `{key}` — did you mean `{nearest}`?"
    else:
        message = f"unknown key `{key}`. Valid keys: {', '.join(allowed)}"
    return Problem(shown, line_of(data, path), field_name(path), message)


def _missing(error) -> list[tuple[str, str]]:
    """Missing keys, except those an unknown key already suggests (one typo, one message)."""
    properties = error.schema.get("properties", {})
    typos = {suggest(key, properties) for key in _extra_keys(error)}
    missing = [key for key in error.validator_value if key not in error.instance and key not in typos]
    return [(key, f"missing required key `{key}`{_purpose(properties.get(key, {}))}") for key in missing]


def _purpose(schema: dict) -> str:
    """The first sentence of a property's schema description, as a reminder of what it is for."""
    sentence = schema.get("description", "").split(". ")[0].rstrip(".")
    return f" ({sentence[:1].lower()}{sentence[1:]})" if sentence else ""


def _message(error: jsonschema.ValidationError, path: list) -> str:
    value, expected = error.instance, error.validator_value
    if error.validator == "type":
        return _type_message(expected, value, at_top=not path)
    if error.validator == "pattern" and expected == KEBAB:
        return (f"`{value}` is not kebab-case: use lowercase letters, digits and single hyphens, "
                f"like `{kebab_case(value)}`")
    if error.validator == "pattern" and expected == NON_BLANK:
        return "is empty or only whitespace: write it as text"
    if error.validator == "exclusiveMinimum":
        # Only weights have an exclusive minimum in the schemas.
        return f"must be greater than {expected}, found {value}{_WEIGHT_HINT}"
    if error.validator == "minimum":
        return f"must be at least {expected}, found {value}"
    if error.validator == "minItems":
        return f"must list at least {expected} item{'s' * (expected != 1)}, found {len(value)}"
    if error.validator == "uniqueItems":
        return f"lists the same item more than once: {list(value)}"
    if error.validator == "const":
        return f"expected `{expected}`, found `{value}`"
    if error.validator == "enum":
        return f"expected one of {', '.join(f'`{v}`' for v in expected)}, found `{value}`"
    return error.message


_WEIGHT_HINT = " (a weight is a relative drawing frequency: 0.5 draws half as often as 1)"


def _type_message(expected, value, at_top: bool) -> str:
    wanted = " or ".join(_TYPE_WORDS[t] for t in ([expected] if isinstance(expected, str) else expected))
    where = " at the top level of the file" if at_top else ""
    message = f"expected {wanted}{where}, found {_describe(value)}"
    if "string" in expected and isinstance(value, (int, float, bool, datetime.date)):
        message += f"; put it in quotes to keep it as text: \"{value}\""
    elif "number" in expected and isinstance(value, str) and _number_text(value):
        message += f" (YAML reads a number without a dot before its exponent as text: write {_number_text(value)})"
    return message


def _number_text(text: str) -> str | None:
    """`1e-5` as YAML reads it as a number (`1.0e-5`), or None when the text is not one."""
    try:
        float(text)
    except ValueError:
        return None
    mantissa, _, exponent = text.lower().partition("e")
    return f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent}" if exponent else None


def _describe(value: object) -> str:
    if value is None:
        return "nothing (the value is empty)"
    if isinstance(value, bool):
        return f"true/false (`{str(value).lower()}`)"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text `{value if len(value) <= 40 else value[:37] + '...'}`"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__} ({value})"


def kebab_case(text: str) -> str:
    """`Clarity Check` / `clarityCheck` -> `clarity-check`: a valid name made from any text."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(text)).lower()
    return "-".join(re.findall(r"[a-z0-9]+", words)) or "my-principle"


def field_name(path: list) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def line_of(data: object, path: list) -> int | None:
    """The line of the deepest key or list item on the path."""
    line, node = getattr(data, "line", None), data
    for part in path:
        if isinstance(node, LineDict) and part in node.key_lines:
            line = node.key_lines[part]
        elif isinstance(node, LineList) and isinstance(part, int) and part < len(node.item_lines):
            line = node.item_lines[part]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return line
