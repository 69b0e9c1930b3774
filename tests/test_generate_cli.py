"""`selfalign generate` option handling: run.yaml, precedence, early errors (no model loads)."""

import json

from click.testing import CliRunner

from selfalign.cli import main
from selfalign.errors import UserError
from selfalign.generate.settings import load_run_config, merge_settings

import pytest

from run_helpers import write_constitution, write_prompts


def test_flags_win_over_run_yaml_and_defaults_fill_the_rest(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("temperature: 0.2\nmax-tokens: 64\nprompts: a.jsonl\n")
    settings = merge_settings(load_run_config(str(config)), {"temperature": 0.9})
    assert (settings.temperature, settings.max_tokens, settings.prompts) == (0.9, 64, ["a.jsonl"])
    assert settings.top_p == 0.95


def test_unknown_run_yaml_key_names_the_nearest(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("temprature: 0.2\n")
    with pytest.raises(UserError) as err:
        load_run_config(str(config))
    assert str(err.value) == (f"{config}:1: temprature: unknown key `temprature` — did you mean "
                              "`temperature`?")


def test_invalid_values_are_listed_together():
    with pytest.raises(UserError) as err:
        merge_settings({"samples": 0, "top_p": 1.5, "backend": "tgi"})
    message = str(err.value)
    assert "samples: must be at least 1, got 0" in message
    assert "top_p: must be in (0, 1], got 1.5" in message
    assert "backend: expected one of vllm, openai, transformers, got 'tgi'" in message


def test_server_settings_are_checked_together():
    with pytest.raises(UserError) as err:
        merge_settings({"backend": "openai", "max_concurrency": 0, "request_timeout": 0})
    message = str(err.value)
    assert "base_url: the openai backend needs at least one --base-url" in message
    assert "max_concurrency: must be at least 1, got 0" in message
    assert "request_timeout: must be > 0 seconds, got 0" in message
    with pytest.raises(UserError, match="only the openai backend uses it"):
        merge_settings({"base_url": ["http://127.0.0.1:9/v1"]})


def test_where_the_work_runs_is_not_part_of_the_resume_fingerprint():
    config = merge_settings({"backend": "openai", "base_url": ["http://a/v1"],
                             "max_concurrency": 8}).fingerprint_config()
    assert "base_url" not in config and "max_concurrency" not in config
    assert config["backend"] == "openai" and config["seed"] == 0


def invoke(*args):
    return CliRunner().invoke(main, ["generate", *args])


def test_bad_principle_file_stops_with_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: my-rule\ncritque_request: x\nrevision_request: y\n")
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": "hi"}])
    result = invoke("--principles", str(bad), "--prompts", str(prompts), "--out",
                    str(tmp_path / "out"), "--model", str(tmp_path / "no-model"))
    assert result.exit_code == 2
    assert "bad.yaml:2: critque_request" in result.output
    assert "did you mean `critique_request`" in result.output
    assert not (tmp_path / "out").exists()  # stopped before touching the output folder


def test_unknown_model_path_stops_before_loading(tmp_path):
    manifest = write_constitution(tmp_path / "c")
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": "hi"}])
    result = invoke("--principles", str(manifest), "--prompts", str(prompts), "--out",
                    str(tmp_path / "out"), "--model", "./models/not-here")
    assert result.exit_code == 2
    assert "--model ./models/not-here: no such folder" in result.output


def test_unwritable_output_folder_is_reported(tmp_path):
    manifest = write_constitution(tmp_path / "c")
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": "hi"}])
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    result = invoke("--principles", str(manifest), "--prompts", str(prompts), "--out",
                    str(blocker / "out"))
    assert result.exit_code == 2
    assert "cannot write to output folder" in result.output


def test_resume_without_a_run_says_so(tmp_path):
    manifest = write_constitution(tmp_path / "c")
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": "hi"}])
    result = invoke("--principles", str(manifest), "--prompts", str(prompts), "--out",
                    str(tmp_path / "empty"), "--resume")
    assert result.exit_code == 2
    assert "holds no manifest.json, so there is no run to resume" in result.output
