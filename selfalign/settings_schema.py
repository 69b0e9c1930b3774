"""Settings files (generate's run.yaml, the training and RL YAML files) checked against their JSON
Schemas, with the same `file:line: key: message` problems principle files get.

A settings schema is made from its dataclass (the field types) and the descriptions kept beside
it, so a field added to the settings and not to the schema fails a test instead of slipping by;
the made schema is the file in selfalign/schemas/ that the loader and editors read.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from pathlib import Path
from typing import Any, Mapping

from selfalign.errors import UserError
from selfalign.schema_check import check
from selfalign.yaml_lines import LineDict, parse_yaml

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def json_type(hint: Any) -> dict:
    """A Python type hint as a JSON Schema fragment; {} (anything) for what JSON cannot say."""
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if hint is type(None):
        return {"type": "null"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        item = json_type(args[0]) if args else {}
        return {"type": "array", **({"items": item} if item else {})}
    if origin is dict or hint is dict:
        return {"type": "object"}
    if origin in (typing.Union, types.UnionType):
        parts = [json_type(a) for a in typing.get_args(hint)]
        if any(not part for part in parts):
            return {}  # one member allows anything (an enum class, a config object)
        return _union(parts)
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(hint))}
    return {}


def _union(parts: list[dict]) -> dict:
    if all(set(part) == {"type"} for part in parts):
        return {"type": list(dict.fromkeys(part["type"] for part in parts))}
    return {"anyOf": parts}


def dataclass_properties(cls, descriptions: Mapping[str, str],
                         skip: tuple[str, ...] = ()) -> dict[str, dict]:
    """One property per field of `cls` (bar `skip`): its JSON type and its description."""
    hints = typing.get_type_hints(cls)
    return {f.name: {**json_type(hints[f.name]), "description": descriptions[f.name]}
            for f in dataclasses.fields(cls) if f.name not in skip}


def settings_schema(kind: str, title: str, description: str, properties: dict) -> dict:
    return {"$schema": DRAFT, "$id": f"https://selfalign.dev/schemas/{kind}.schema.json",
            "title": title, "description": description, "type": "object",
            "additionalProperties": False, "properties": properties}


def read_settings_file(path: Path, kind: str, key_names=lambda key: key) -> dict:
    """A settings file checked against `selfalign/schemas/<kind>.schema.json`: its values, or a
    UserError listing every problem as `file:line: key: message`. `key_names` maps a key as
    written to the schema's name (run.yaml takes `max-tokens` for `max_tokens`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--config {path}: no such file")
    data, problems = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    if data is None and not problems:
        return {}
    if isinstance(data, LineDict):
        data = _renamed(data, key_names)
    problems += check(data, kind, str(path)) if not problems else []
    if problems:
        raise UserError("\n".join(str(p) for p in problems))
    return dict(data)


def _renamed(data: LineDict, key_names) -> LineDict:
    renamed = LineDict()
    renamed.line, renamed.key_lines = data.line, {}
    for key, value in data.items():
        name = key_names(str(key))
        renamed[name], renamed.key_lines[name] = value, data.key_lines[key]
    return renamed
