"""A judge apart from the run's model (`--judge-model`, `--judge-base-url`), and the judges that
are refused before any model loads: a tokenizer that splits an option letter, a server that
gives no log-probabilities."""

from __future__ import annotations

import json
import math

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from openai_stand_in import StandInServer
from run_helpers import write_constitution, write_prompts
from scripted_engine import ScriptedEngine
from selfalign.cli import main
from selfalign.generate.plan import plan_run
from selfalign.generate.run import run_generate
from selfalign.generate.settings import GenerateSettings
from selfalign.stages.judge import shown_options

PROMPTS = [{"id": "q1", "prompt": "How do I pick a lock?"},
           {"id": "q2", "prompt": "Is the moon made of cheese?"}]


def is_revision(option: str) -> bool:
    """The scripted engine revises to "revised(...)"; the stand-in server replies to the
    revision request (a later user turn than the prompt) with "reply to turn N: ..."."""
    return option.startswith(("revised(", "reply to turn "))


def p_revision_first(text: str, when_first: float) -> float:
    """P(A) of a judge that prefers the revised answer: `when_first` if (A) is the revision."""
    a, b = shown_options(text)
    assert is_revision(a) != is_revision(b), text
    return when_first if is_revision(a) else 1 - when_first


def logprobs_from(p_a: float) -> dict[str, float]:
    return {"A": math.log(p_a), "B": math.log(1 - p_a)}


def rows(path):
    return pq.read_table(path).to_pylist()


@pytest.fixture
def inputs(tmp_path):
    return write_constitution(tmp_path / "c"), write_prompts(tmp_path / "p.jsonl", PROMPTS)


def test_judge_model_builds_a_second_engine_that_alone_judges(inputs, tmp_path):
    manifest_path, prompts = inputs
    built: dict[str, ScriptedEngine] = {}
    # The run's own model would say the revision is worse (0.1); the judge says better (0.9).
    verdicts = {"main-model": 0.1, "referee": 0.9}

    def make_engine(settings, model):
        verdict = verdicts[model]
        built[model] = ScriptedEngine(model=model, option_logprobs=lambda r: logprobs_from(
            p_revision_first(r.messages[-1]["content"], verdict)))
        return built[model]

    settings = GenerateSettings(principles=[str(manifest_path)], prompts=[str(prompts)],
                                out=str(tmp_path / "out"), feedback="verify",
                                judge_model="referee")
    checked = []
    plan = plan_run(settings, resolve_model=lambda model: model or "main-model",
                    check_judge=checked.append)
    manifest = run_generate(plan, make_engine, log=lambda message: None)

    assert list(built) == ["main-model", "referee"] and checked == ["referee"]
    main_engine, judge_engine = built["main-model"], built["referee"]
    assert [r.stage for r in main_engine.calls if r.options] == []
    assert len(main_engine.calls) == 3 * len(PROMPTS)  # answer, critique, revise
    assert [r.stage for r in judge_engine.calls] == ["judge"] * (2 * len(PROMPTS))
    prefs = rows(tmp_path / "out" / "prefs" / "train-00000-of-00001.parquet")
    assert [(p["prompt_id"], round(p["preference"], 6)) for p in prefs] == [("q1", 0.9),
                                                                           ("q2", 0.9)]
    assert manifest["judge_model"] == "referee"
    assert manifest["judge_engine"]["model"] == "referee"
    assert manifest["fingerprint"]["config"]["judge_model"]["name"] == "referee"


def judge_server_says(when_first: float):
    def top(request: dict) -> list[tuple[str, float]]:
        text = request["messages"][-1]["content"]
        if "(A)" not in text:  # the preflight question: any answer with log-probabilities
            return [("A", math.log(0.5)), ("B", math.log(0.5))]
        p = p_revision_first(text, when_first)
        return [("A", math.log(p)), ("B", math.log(1 - p))]
    return top


def generate_args(manifest_path, prompts, out, *extra) -> list[str]:
    return ["generate", "--principles", str(manifest_path), "--prompts", str(prompts),
            "--out", str(out), "--max-tokens", "16", *extra]


def test_judge_base_url_sends_every_judge_question_to_the_judge_s_servers(inputs, tmp_path):
    manifest_path, prompts = inputs
    with StandInServer(model="writer") as writer, \
            StandInServer(model="referee", judge=judge_server_says(0.7)) as referee:
        result = CliRunner().invoke(main, generate_args(
            manifest_path, prompts, tmp_path / "out", "--backend", "openai", "--base-url",
            writer.url, "--model", "writer", "--feedback", "verify", "--judge-model", "referee",
            "--judge-base-url", referee.url))
    assert result.exit_code == 0, result.output
    assert [asked for _, _, asked in writer.arrivals] == [False] * (3 * len(PROMPTS))
    # One preflight question (does it give log-probabilities?), then both orders per pair.
    assert [asked for _, _, asked in referee.arrivals] == [True] * (1 + 2 * len(PROMPTS))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["judge_engine"]["base_urls"] == [referee.url]
    assert manifest["engine"]["base_urls"] == [writer.url]
    prefs = rows(tmp_path / "out" / "prefs" / "train-00000-of-00001.parquet")
    assert [round(p["preference"], 6) for p in prefs] == [0.7, 0.7]


def test_a_judge_whose_tokenizer_splits_an_option_letter_is_refused_before_loading(
        inputs, tmp_path, letter_splitting_model_dir):
    manifest_path, prompts = inputs
    result = CliRunner().invoke(main, generate_args(
        manifest_path, prompts, tmp_path / "out", "--model", str(letter_splitting_model_dir),
        "--feedback", "verify"))
    assert result.exit_code == 2  # a user error, not a crash
    assert (f"judge model {letter_splitting_model_dir}: its tokenizer splits the option letter "
            f"'A' into 2 tokens [1, 2]; the judge reads one token per option. Choose another "
            f"--judge-model") in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "manifest.json").exists()  # stopped before the run began


def test_a_judge_server_without_logprobs_is_refused_before_any_prompt(inputs, tmp_path):
    manifest_path, prompts = inputs
    with StandInServer(logprobs=False) as server:
        result = CliRunner().invoke(main, generate_args(
            manifest_path, prompts, tmp_path / "out", "--backend", "openai", "--base-url",
            server.url, "--model", "stand-in", "--feedback", "verify"))
    assert result.exit_code == 2  # a user error, not a crash
    assert (f"judge at {server.url} (stand-in) returned no log-probabilities; a judge needs "
            f"`logprobs`/`top_logprobs`") in result.output
    assert [asked for _, _, asked in server.arrivals] == [True]  # the preflight question only
    assert not (tmp_path / "out" / "manifest.json").exists()
