"""`selfalign checks list`: every kind, its arguments and an example, read from the registry."""

from __future__ import annotations

import json

from selfalign.checks.base import Argument, Check
from selfalign.checks.registry import check_kinds
from selfalign.checks.when import HELP as WHEN_HELP


def _argument_line(name: str, arg: Argument) -> str:
    kind = f"list of {arg.items}" if arg.type == "array" and arg.items else arg.type
    facts = [kind]
    if arg.choices:
        facts.append("one of " + ", ".join(json.dumps(choice) for choice in arg.choices))
    if arg.minimum is not None:
        facts.append(f"at least {arg.minimum:g}")
    if not arg.required:
        facts.append("optional" if arg.default is None else f"default {json.dumps(arg.default)}")
    return f"    {name} ({'; '.join(facts)}): {arg.help}"


def _example(cls: type[Check]) -> str:
    values = ", ".join(f"{name}: {json.dumps(value)}" for name, value in cls.example.items())
    return f"    example: {{kind: {cls.kind}{', ' + values if values else ''}}}"


def describe_kind(cls: type[Check]) -> str:
    lines = [f"{cls.kind}: {cls.summary}"]
    lines += [_argument_line(name, arg) for name, arg in cls.arguments.items()]
    if not cls.arguments:
        lines.append("    (no arguments)")
    lines.append(_example(cls))
    return "\n".join(lines)


WHEN_NOTE = f"""Every kind also takes `when:`, {WHEN_HELP}.
    as in {{kind: refusal, expect: always, when: {{behavior: refuse}}}}
    or {{kind: keywords:existence, keywords: [recipe], when: {{category: [cooking, baking]}}}}"""


def describe_kinds() -> str:
    """Every kind, IFEval's first in its group order, then selfalign's own, then `when:`."""
    return "\n\n".join([*(describe_kind(cls) for cls in check_kinds().values()), WHEN_NOTE])
