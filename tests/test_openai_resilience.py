"""The openai backend against misbehaving stand-in servers: one that keeps hanging up is passed
over, a 429's Retry-After is waited out, and the spellings of an option letter in
`top_logprobs` (" A", "A") are added up."""

from __future__ import annotations

import asyncio
import math

import pyarrow.parquet as pq
import pytest

from openai_stand_in import Faults, StandInServer
from run_helpers import write_constitution, write_prompts
from selfalign.engine import make_engine, model_resolver
from selfalign.engine.base import Request, SamplingSettings
from selfalign.engine.openai_engine import DOWN_AFTER, OpenAIEngine
from selfalign.generate.plan import plan_run
from selfalign.generate.run import run_generate
from selfalign.generate.settings import GenerateSettings
from selfalign.stages.judge import OPTIONS, judge_request, option_probability

PROMPTS = [{"id": f"q{i}", "prompt": f"Question {i}: why do cats purr?"} for i in range(5)]
QUESTION = [{"role": "user", "content": "Name a river."}]


def test_a_server_that_keeps_hanging_up_is_passed_over(tmp_path):
    settings_of = dict(principles=[str(write_constitution(tmp_path / "c"))],
                       prompts=[str(write_prompts(tmp_path / "p.jsonl", PROMPTS))],
                       out=str(tmp_path / "out"), backend="openai", model="stand-in",
                       max_concurrency=1, max_retries=6)
    with StandInServer(faults=Faults(drop=1.0)) as dropper, StandInServer() as good:
        settings = GenerateSettings(base_url=[dropper.url, good.url], **settings_of)
        plan = plan_run(settings, model_resolver(settings))
        manifest = run_generate(plan, make_engine, log=lambda message: None)
    # One request at a time, servers taken in turn: the hanging-up server gets every other
    # attempt until it has lost DOWN_AFTER in a row, and none after that.
    assert dropper.seen == {"drop": DOWN_AFTER}
    assert good.seen == {"ok": 3 * len(PROMPTS)}  # answer, critique, revise of each prompt
    assert sum(manifest["counts"]["pairs"].values()) == len(PROMPTS)
    assert pq.read_table(tmp_path / "out" / "rejects.parquet").num_rows == 0


def complete(engine: OpenAIEngine, request: Request):
    return asyncio.run(engine.complete(request))


def test_a_non_zero_retry_after_is_waited_out():
    with StandInServer(faults=Faults(limited_attempts=1, retry_after="2")) as server:
        engine = OpenAIEngine([server.url], "stand-in", max_retries=3)
        completion = complete(engine, Request(QUESTION, SamplingSettings(max_tokens=8)))
    assert completion.error is None and completion.text == "reply to: Name a river."
    assert [outcome for _, outcome, _ in server.arrivals] == ["rate_limit", "ok"]
    waited = server.arrivals[1][0] - server.arrivals[0][0]
    # Backoff alone waits at most 0.5 s before the first retry; the header asked for 2 s.
    assert waited >= 2.0
    assert engine.retries == 1


def judge_question() -> Request:
    return judge_request(QUESTION, "Which reply is better?", "The Nile.", "The Amazon.", seed=1)


@pytest.mark.parametrize("top, p_a", [
    # " A" and "A" are one option: 0.3 + 0.3 against 0.25 + 0.15
    ([(" A", 0.3), ("A", 0.3), ("B", 0.25), (" B", 0.15)], 0.6),
    # "(A" and "B" as some tokenizers split "(A)"
    ([("(A", 0.5), ("B", 0.25), ("C", 0.25)], 2 / 3),
    # "B" is not among the top tokens: it gets the smallest listed probability (0.1), an upper
    # bound, so P(A) is not overstated as 1
    ([("A", 0.7), ("C", 0.2), ("D", 0.1)], 0.7 / 0.8),
])
def test_option_spellings_in_top_logprobs_are_added_up(top, p_a):
    entries = [(token, math.log(p)) for token, p in top]
    with StandInServer(judge=lambda request: entries) as server:
        engine = OpenAIEngine([server.url], "stand-in")
        completion = complete(engine, judge_question())
    assert set(completion.option_logprobs) == set(OPTIONS)
    assert option_probability(completion) == pytest.approx(p_a)
    assert [asked for _, _, asked in server.arrivals] == [True]
