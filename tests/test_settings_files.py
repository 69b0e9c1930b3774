"""Settings files (run.yaml, the training and RL YAML files) are checked against their JSON
Schemas, and a bad value is refused as `file:line: key: message`, like a principle file's."""

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from selfalign.errors import UserError
from selfalign.generate.settings import GenerateSettings, load_run_config
from selfalign.settings_schema import json_type
from selfalign.train.config import read_yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "selfalign" / "schemas"


def build_schemas():
    spec = importlib.util.spec_from_file_location("build_schemas", REPO / "scripts" / "build_schemas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def refusal(load, tmp_path, name, text) -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load(path)
    return str(err.value).replace(str(path), name)


RUN_YAML = "principles: [constitution/3h.yaml]\nprompts: p.jsonl\nout: outputs/x\n"


@pytest.mark.parametrize("line, expected", [
    ("samples: 2.5", "run.yaml:4: samples: expected a whole number, found a number (2.5)"),
    ('samples: "4"', "run.yaml:4: samples: expected a whole number, found text `4`"),
    ("temperature: hot", "run.yaml:4: temperature: expected a number, found text `hot`"),
    ("backend: tgi", "run.yaml:4: backend: expected one of `vllm`, `openai`, `transformers`, "
                     "found `tgi`"),
    ("judge-cot: 1", "run.yaml:4: judge_cot: expected true or false, found a number (1)"),
    ("max_tokens: 1e3", "run.yaml:4: max_tokens: expected a whole number, found text `1e3`"),
])
def test_a_bad_run_yaml_value_is_refused_with_file_line_and_key(tmp_path, line, expected):
    assert refusal(load_run_config, tmp_path, "run.yaml", RUN_YAML + line + "\n") == expected


def test_every_bad_run_yaml_value_is_listed_at_once(tmp_path):
    message = refusal(load_run_config, tmp_path, "run.yaml",
                      "samples: many\nseed: 0\ntop-p: [1]\n")
    assert message.splitlines() == ["run.yaml:1: samples: expected a whole number, found text `many`",
                                    "run.yaml:3: top_p: expected a number, found a list"]


def test_a_good_run_yaml_still_loads_with_dashes_and_single_paths(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(RUN_YAML + "max-tokens: 64\nray: true\nfeedback: null\n")
    assert load_run_config(path) == {"principles": ["constitution/3h.yaml"],
                                     "prompts": ["p.jsonl"], "out": "outputs/x",
                                     "max_tokens": 64, "ray": True, "feedback": None}


def test_the_example_run_yaml_passes_its_schema():
    text = (REPO / "run.example.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=./selfalign/schemas/run.schema.json")
    assert load_run_config(REPO / "run.example.yaml")["backend"] == "vllm"


def test_a_bad_training_yaml_value_is_refused_with_file_line_and_key(tmp_path):
    message = refusal(read_yaml, tmp_path, "train.yaml",
                      "beta: 0.1\nlearning_rate: 1e-5\nlora: yes please\n")
    assert message.splitlines() == [
        "train.yaml:2: learning_rate: expected a number, found text `1e-5` (YAML reads a number "
        "without a dot before its exponent as text: write 1.0e-5)",
        "train.yaml:3: lora: expected true or false or a mapping (`key: value` lines), found "
        "text `yes please`"]


def test_a_bad_rl_yaml_value_is_refused_with_file_line_and_key(tmp_path):
    message = refusal(lambda p: read_yaml(p, "rl"), tmp_path, "rl.yaml",
                      "num_generations: 4\n\nmax_completion_length: long\n")
    assert message == "rl.yaml:3: max_completion_length: expected a whole number or nothing, " \
                      "found text `long`"


def test_a_training_yaml_key_of_another_trl_version_passes_the_schema(tmp_path):
    """Unknown keys are the installed TRL's to judge (with the nearest name), not the schema's."""
    path = tmp_path / "train.yaml"
    path.write_text("learning_rate: 1.0e-5\nsome_future_field: 3\n")
    assert read_yaml(path) == {"learning_rate": 1e-5, "some_future_field": 3}


# -- the schemas and the settings they describe --------------------------------------------------

def test_every_generate_setting_has_a_run_yaml_property_and_each_property_a_setting():
    schema = json.loads((SCHEMAS / "run.schema.json").read_text())
    settings = [f.name for f in dataclasses.fields(GenerateSettings)]
    assert sorted(schema["properties"]) == sorted(settings), (
        "run.schema.json and GenerateSettings differ: run `python scripts/build_schemas.py run`")
    assert all(p["description"] for p in schema["properties"].values())


@pytest.mark.parametrize("kind", ["run", "train", "rl"])
def test_the_committed_schemas_are_the_ones_the_settings_make(kind):
    built = build_schemas()
    committed = (SCHEMAS / f"{kind}.schema.json").read_text()
    assert committed == built.schema_text(built.BUILDERS[kind]()), (
        f"selfalign/schemas/{kind}.schema.json is stale: run `python scripts/build_schemas.py {kind}`")


def test_type_hints_become_json_types():
    assert json_type(int) == {"type": "integer"}
    assert json_type(int | None) == {"type": ["integer", "null"]}
    assert json_type(list[str]) == {"type": "array", "items": {"type": "string"}}
    assert json_type(tuple[str, ...]) == {"type": "array", "items": {"type": "string"}}
    assert json_type(dict | str | None) == {"type": ["object", "string", "null"]}
    assert json_type(object) == {}  # what JSON cannot say is left open
    assert json_type(object | None) == {}


def test_yaml_language_server_reads_the_same_schema_file():
    """The schema comment points at a real JSON Schema that the loader uses too."""
    schema = json.loads((SCHEMAS / "run.schema.json").read_text())
    assert schema["$schema"].endswith("2020-12/schema")
    assert yaml.safe_load((REPO / "run.example.yaml").read_text())["out"] == "outputs/example"


def test_the_cli_refuses_a_bad_run_yaml_with_status_2_and_no_traceback(tmp_path):
    from click.testing import CliRunner

    from selfalign.cli import main

    path = tmp_path / "run.yaml"
    path.write_text(RUN_YAML + "samples: 2.5\n")
    result = CliRunner().invoke(main, ["generate", "--config", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr == f"error: {path}:4: samples: expected a whole number, found a number (2.5)\n"
