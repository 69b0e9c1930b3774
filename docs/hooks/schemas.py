"""MkDocs hook: render the JSON Schemas of selfalign/schemas/ as field tables.

A page writes `<!-- schema: principle -->` on a line of its own; the build replaces it with the
schema's description and a table of its fields, read from `selfalign/schemas/principle.schema.json`.
The loader checks files against the same schemas, so the reference cannot drift from them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "selfalign" / "schemas"
MARKER = re.compile(r"^<!-- schema: ([a-z]+) -->$", re.MULTILINE)
KEBAB = "^[a-z0-9]+(-[a-z0-9]+)*$"


def on_page_markdown(markdown: str, page, config, files) -> str:
    return MARKER.sub(lambda match: schema_markdown(match.group(1)), markdown)


def schema_markdown(kind: str) -> str:
    path = SCHEMA_DIR / f"{kind}.schema.json"
    if not path.is_file():
        # A plain exception fails the build, which is what a wrong marker deserves.
        raise FileNotFoundError(f"schema marker names {kind!r}, but {path} does not exist")
    schema = json.loads(path.read_text(encoding="utf-8"))
    parts = [
        schema.get("description", ""),
        f"Source: `selfalign/schemas/{path.name}`. "
        + ("Keys not listed here are refused." if schema.get("additionalProperties") is False else ""),
        fields_table(schema, schema),
    ]
    # Lists of objects get a table of their own, under the field that holds them.
    for name, prop in schema.get("properties", {}).items():
        items = resolve(prop.get("items", {}), schema)
        if items.get("type") == "object" and items.get("properties"):
            parts.append(f"Each entry of `{name}`:")
            parts.append(fields_table(items, schema))
    return "\n\n".join(part for part in parts if part)


def fields_table(obj: dict, root: dict) -> str:
    required = set(obj.get("required", []))
    rows = ["| field | required | value | meaning |", "| --- | --- | --- | --- |"]
    for name, prop in obj.get("properties", {}).items():
        meaning = prop.get("description", "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{name}` | {'yes' if name in required else 'no'} | {value_text(prop, root)} | {meaning} |")
    return "\n".join(rows)


def value_text(prop: dict, root: dict) -> str:
    """A short human reading of a property's JSON Schema constraints."""
    prop = resolve(prop, root)
    if "const" in prop:
        return f"`{prop['const']}`"
    if "enum" in prop:
        return "one of " + ", ".join(f"`{value}`" for value in prop["enum"])
    kind = prop.get("type")
    if isinstance(kind, list):
        text = " or ".join(value_text({**prop, "type": one}, root) for one in kind)
    elif kind == "string":
        text = string_text(prop, plural=False)
    elif kind in ("number", "integer"):
        text = kind
        if "exclusiveMinimum" in prop:
            text += f" > {prop['exclusiveMinimum']}"
        if "minimum" in prop:
            text += f" ≥ {prop['minimum']}"
    elif kind == "array":
        items = resolve(prop.get("items", {}), root)
        if items.get("type") == "object":
            item_text = "objects (below)"
        elif items.get("type") == "string":
            item_text = string_text(items, plural=True)
        else:
            item_text = value_text(items, root)
        text = f"list of {item_text}"
        if prop.get("minItems"):
            text += f", at least {prop['minItems']}"
        if prop.get("uniqueItems"):
            text += ", no repeats"
    elif kind == "object":
        values = prop.get("additionalProperties")
        text = f"mapping of name to {value_text(values, root)}" if isinstance(values, dict) else "mapping"
    else:
        text = str(kind)
    if "default" in prop:
        text += f" (default {prop['default']})"
    return text


def string_text(prop: dict, plural: bool) -> str:
    pattern = prop.get("pattern")
    if pattern == KEBAB:
        return "kebab-case names" if plural else "kebab-case name"
    if pattern == r"\S":
        return "non-blank texts" if plural else "non-blank text"
    return "texts" if plural else "text"


def resolve(prop: dict, root: dict) -> dict:
    """Follows a local `$ref` (`#/$defs/name`); the schemas use no other kind."""
    ref = prop.get("$ref")
    if not ref:
        return prop
    target = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target
