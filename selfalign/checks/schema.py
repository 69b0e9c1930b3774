"""The JSON Schema of one `checks:` entry, built from each kind's `Argument` declarations.

Editors read the schema files in selfalign/schemas/ (YAML language servers follow a file's
`$schema`), so the check schema is written into them as `$defs.check`; a test fails when the
files differ from `check_schema()`. After adding or changing a kind, rewrite them with

    python -m selfalign.checks.schema
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from selfalign.checks.base import Argument
from selfalign.checks.registry import check_kinds
from selfalign.checks.when import HELP as WHEN_HELP, WHEN
from selfalign.prompts.behavior import BEHAVIOR, BEHAVIORS

# The schema files that list checks (a principle's own, a manifest's for every principle).
SCHEMA_FILES = ("principle", "constitution")
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
_CHECKS_RULE = ("a list of mappings, each `kind:` plus that kind's arguments (`selfalign checks "
                "list` shows them), and optionally `when:` (the prompts it applies to). A "
                "revision that fails one is asked again "
                "(`--check-retries`); one that still fails goes to rejects as `check_failed`.")
CHECKS_DESCRIPTIONS = {
    "principle": "Rules code can verify, held against every answer and revision made under this "
                 "principle: " + _CHECKS_RULE,
    "constitution": "Rules code can verify, held against every answer and revision under every "
                    "principle of this constitution: " + _CHECKS_RULE,
}


def argument_schema(argument: Argument) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": argument.type, "description": argument.help}
    if argument.type == "array" and argument.items:
        schema["items"] = {"type": argument.items}
        if argument.choices:
            schema["items"]["enum"] = list(argument.choices)
    elif argument.choices:
        schema["enum"] = list(argument.choices)
    if argument.minimum is not None and argument.type in ("integer", "number"):
        minimum = argument.minimum
        schema["minimum"] = int(minimum) if float(minimum).is_integer() else minimum
    if argument.default is not None:
        schema["default"] = argument.default
    return schema


def _one_or_more(value: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [value, {"type": "array", "items": value, "minItems": 1}]}


def when_schema() -> dict[str, Any]:
    """`when:`: prompt fields to a value or a non-empty list of values; `behavior` to its own."""
    scalar = {"type": ["string", "number", "boolean"]}
    return {"type": "object", "minProperties": 1, "propertyNames": {"minLength": 1},
            "properties": {BEHAVIOR: _one_or_more({"enum": list(BEHAVIORS)})},
            "additionalProperties": _one_or_more(scalar), "description": WHEN_HELP}


def check_schema() -> dict[str, Any]:
    """One check mapping: `kind` from the registry, then per kind (if/then, which editors
    follow for completion) its own arguments, the required ones, and nothing else."""
    kinds = check_kinds()
    per_kind = []
    for kind, cls in kinds.items():
        properties = {"kind": {"const": kind}}
        properties.update({name: argument_schema(arg) for name, arg in cls.arguments.items()})
        properties[WHEN] = {"$ref": "#/$defs/when"}
        then: dict[str, Any] = {"properties": properties, "additionalProperties": False}
        required = [name for name, arg in cls.arguments.items() if arg.required]
        if required:
            then["required"] = required
        if cls.summary:
            then["description"] = cls.summary
        per_kind.append({"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                         "then": then})
    return {
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": list(kinds),
                                "description": "Which check: an IFEval instruction id "
                                               "(`group:type`) or one of selfalign's own."},
                       WHEN: {"$ref": "#/$defs/when"}},
        "allOf": per_kind,
        "description": "One check: `kind:`, that kind's arguments, and optionally `when:`.",
    }


def checks_property(owner: str) -> dict[str, Any]:
    """The `checks` key of a principle file (owner "principle") or a manifest ("constitution")."""
    return {"type": "array", "items": {"$ref": "#/$defs/check"},
            "description": CHECKS_DESCRIPTIONS[owner]}


def with_checks(schema: dict[str, Any], owner: str) -> dict[str, Any]:
    """`schema` with its `checks` key and `$defs.check` as the registry has them now."""
    updated = dict(schema)
    updated["properties"] = {**schema["properties"], "checks": checks_property(owner)}
    updated["$defs"] = {**schema.get("$defs", {}), "check": check_schema(), WHEN: when_schema()}
    return updated


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schema_files(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Rewrite the schema files whose checks part differs from the registry; the paths changed."""
    changed = []
    for kind in SCHEMA_FILES:
        path = folder / f"{kind}.schema.json"
        current = json.loads(path.read_text(encoding="utf-8"))
        wanted = with_checks(current, kind)
        if wanted != current:
            path.write_text(schema_text(wanted), encoding="utf-8")
            changed.append(path)
    return changed


if __name__ == "__main__":
    for written in write_schema_files():
        print(f"rewrote {written}")
