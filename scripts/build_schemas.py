"""Write the settings files' JSON Schemas (run, train, rl) into selfalign/schemas/.

`python scripts/build_schemas.py` after adding a setting; tests/test_settings_files.py fails while
a committed schema differs from what this makes. Types come from the settings dataclasses (and
TRL's config classes), descriptions from the options' help (and TRL's), so nothing is written
twice.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from pathlib import Path

import click

from selfalign.settings_schema import dataclass_properties, json_type, settings_schema

SCHEMAS = Path(__file__).resolve().parents[1] / "selfalign" / "schemas"
LIST_OR_ONE = ("principles", "prompts", "base_url", "judge_base_url")  # a string is a list of one
LORA = {"type": ["boolean", "object"],
        "description": "LoRA: true, or a mapping of peft.LoraConfig fields (e.g. {r: 64, "
                       "lora_alpha: 128}), which also turns it on."}


def _sentence(text: str, limit: int = 240) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def run_schema() -> dict:
    from selfalign.generate.commands import generate
    from selfalign.generate.settings import GenerateSettings

    options = {p.name: p for p in generate.params}
    helps = {name: _sentence(option.help) for name, option in options.items()}
    properties = dataclass_properties(GenerateSettings, helps)
    for name, option in options.items():
        if isinstance(option.type, click.Choice) and name in properties:
            properties[name]["enum"] = [*option.type.choices,
                                        *([None] if option.default is None else [])]
    for name in LIST_OR_ONE:
        properties[name]["type"] = ["array", "string"]
    properties["ray"]["type"] = ["string", "boolean", "null"]  # `ray: true`: a local cluster
    return settings_schema(
        "run", "selfalign run.yaml",
        "Settings of `selfalign generate --config run.yaml`: the flags of `selfalign generate` "
        "under their names with underscores (dashes are read too); a flag on the command line "
        "wins over the file.", properties)


def trl_schema(kind: str, classes, title: str, description: str) -> dict:
    """Every field of the given TRL config classes, typed; other keys are left to the installed
    TRL's own field list, which the loader checks with the nearest name."""
    properties: dict[str, dict] = {}
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.name.startswith("_") or not field.init or field.name in properties:
                continue
            help_text = _sentence(field.metadata.get("help", ""))
            properties[field.name] = {**json_type(hints[field.name]),
                                      **({"description": help_text} if help_text else {})}
    properties = {"lora": LORA, **dict(sorted(properties.items()))}
    schema = settings_schema(kind, title, description, properties)
    schema["additionalProperties"] = True
    return schema


def train_schema() -> dict:
    from trl import DPOConfig, RewardConfig, SFTConfig

    return trl_schema("train", (SFTConfig, DPOConfig, RewardConfig), "selfalign training YAML",
                      "The `--config` file of `selfalign train sft|dpo|rm`: any field of TRL's "
                      "SFTConfig, DPOConfig or RewardConfig, plus `lora`. Options on the command "
                      "line win over the file.")


def rl_schema() -> dict:
    from trl import GRPOConfig, RLOOConfig

    return trl_schema("rl", (RLOOConfig, GRPOConfig), "selfalign RL YAML",
                      "The `--config` file of `selfalign train rl`: any field of TRL's RLOOConfig "
                      "or GRPOConfig, plus `lora`. Options on the command line win over the file.")


BUILDERS = {"run": run_schema, "train": train_schema, "rl": rl_schema}


def schema_text(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(kinds: list[str]) -> None:
    for kind in kinds or list(BUILDERS):
        path = SCHEMAS / f"{kind}.schema.json"
        path.write_text(schema_text(BUILDERS[kind]()), encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
