"""eval checks its judge before any model loads, as generate does: a judge model whose tokenizer
splits an option letter, or a judge server that gives no log-probabilities, is refused with a
message naming it, before either model answers a prompt."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from eval_fixtures import write_principles, write_prompts
from openai_stand_in import StandInServer
from selfalign import engine as engines
from selfalign.cli import main

PROMPTS = [{"id": "a", "prompt": "Name a prime."}, {"id": "b", "prompt": "Why is the sky blue?"}]


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    return ["--prompts", str(write_prompts(tmp_path / "p.jsonl", PROMPTS)),
            "--principles", str(write_principles(tmp_path / "principles")),
            "--out", str(tmp_path / "eval")]


def test_a_judge_whose_tokenizer_splits_a_letter_is_refused_before_loading(
        inputs, tiny_model_dir, letter_splitting_model_dir, monkeypatch):
    def no_engine(settings, model):
        raise AssertionError("a model was loaded before the judge was checked")

    monkeypatch.setattr(engines, "make_engine", no_engine)
    result = CliRunner().invoke(main, ["eval", "--model", str(tiny_model_dir), "--baseline",
                                       str(tiny_model_dir), "--judge-model",
                                       str(letter_splitting_model_dir), *inputs])
    assert result.exit_code == 2, result.output
    assert (f"judge model {letter_splitting_model_dir}: its tokenizer splits the option letter "
            f"'A' into 2 tokens [1, 2]") in result.output


def test_a_judge_server_without_logprobs_is_refused_before_any_answer(inputs):
    with StandInServer(model="cand") as candidate, \
            StandInServer(model="base", logprobs=False) as baseline:
        result = CliRunner().invoke(main, [
            "eval", "--backend", "openai", "--model", "cand", "--baseline", "base",
            "--candidate-base-url", candidate.url, "--baseline-base-url", baseline.url,
            *inputs])
    assert result.exit_code == 2, result.output
    assert (f"judge at {baseline.url} (base) returned no log-probabilities; a judge needs "
            f"`logprobs`/`top_logprobs`") in result.output
    assert candidate.arrivals == []  # no answer was asked for
    assert [asked for _, _, asked in baseline.arrivals] == [True]  # the one check question
