"""`checks:` in principle files and manifests: each entry built by the checks registry, whose
errors are worded here with the file, the line and the field.

The JSON Schema (with `$defs.check`, made from the same registry) is what editors see; the
loader words a check's problems through `build_check` instead of the schema's errors, because
the registry knows the nearest kind or argument and how its arguments are meant.
"""

from __future__ import annotations

import re

from selfalign.checks import Check, CheckArgumentError, build_check
from selfalign.constitution.model import Problem
from selfalign.schema_check import CHECKS, field_name, line_of


def check_problems(data: object, shown: str) -> list[Problem]:
    """One problem per `checks:` entry the registry refuses, at the line of the wrong key."""
    entries = data.get(CHECKS) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    problems = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue  # the schema says it must be a mapping
        try:
            build_check(entry)
        except (CheckArgumentError, re.error) as err:
            field = _field(err)
            problems.append(Problem(shown, line_of(data, [CHECKS, index] + field),
                                    field_name([CHECKS, index] + field), _message(err)))
    return problems


def _field(err: Exception) -> list[str]:
    """The path of the wrong key inside the entry: `[num_words]`, or `[when, behavior]`."""
    if isinstance(err, CheckArgumentError):
        return err.field.split(".") if err.field else []
    return ["pattern"]  # re.error: only a pattern is compiled while a check is built


def _message(err: Exception) -> str:
    if isinstance(err, re.error):
        return f"not a valid regular expression: {err}"
    # The registry's messages may open with the argument's name, which the field already gives.
    field = f"{err.field}: " if err.field else None
    text = str(err)
    return text[len(field):] if field and text.startswith(field) else text


def build_checks(entries: list[dict] | None) -> tuple[Check, ...]:
    """The checks of a file already checked by `check_problems`."""
    return tuple(build_check(entry) for entry in entries or ())
