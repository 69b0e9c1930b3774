"""The openai backend against a local stand-in server: faults, retries, down servers, judge."""

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest

from selfalign.engine import judge_checker, make_engine, model_resolver
from selfalign.errors import UserError
from selfalign.generate.plan import plan_run
from selfalign.generate.run import run_generate
from selfalign.generate.settings import GenerateSettings
from selfalign.stages.judge import OPTIONS

from openai_stand_in import Faults, StandInServer
from run_helpers import write_constitution, write_prompts

PROMPTS = [{"id": f"q{i}", "prompt": f"Question {i}: how do tides work?"} for i in range(12)]


def run(manifest, prompts, out, urls, **overrides):
    settings = GenerateSettings(principles=[str(manifest)], prompts=[str(prompts)], out=str(out),
                                backend="openai", base_url=list(urls), model="stand-in",
                                **overrides)
    plan = plan_run(settings, model_resolver(settings), check_judge=judge_checker(settings, OPTIONS))
    return run_generate(plan, make_engine, log=lambda message: None)


def rows(path):
    return pq.read_table(path).to_pylist()


@pytest.fixture
def inputs(tmp_path):
    prompts = PROMPTS + [{"id": "doomed", "prompt": "ALWAYS-500 this one never works"}]
    return write_constitution(tmp_path / "c"), write_prompts(tmp_path / "p.jsonl", prompts)


def test_failing_rate_limited_and_stalled_requests_all_end_answered_or_rejected(inputs,
                                                                               tmp_path):
    manifest, prompts = inputs
    # Faults are drawn from a hash of each request's body: shares large enough that each kind
    # falls on some of the ~40 requests whatever the texts are (at 5% no stall was drawn once
    # the stand-in's later replies changed).
    faults, attempts = Faults(fail=0.15, rate_limit=0.1, stall=0.1, stall_seconds=3.0), Counter()
    with StandInServer(faults=faults, attempts=attempts) as first, \
            StandInServer(faults=faults, attempts=attempts) as second:
        result = run(manifest, prompts, tmp_path / "out", [first.url, second.url],
                     request_timeout=1.0, max_retries=6, shard_size=4)
    traces = rows(tmp_path / "out" / "traces" / "traces-00000-of-00001.parquet")
    assert sorted(t["prompt_id"] for t in traces) == sorted([f"q{i}" for i in range(12)]
                                                            + ["doomed"])
    rejects = rows(tmp_path / "out" / "rejects.parquet")
    assert [(r["id"], r["reason"].split(":")[0]) for r in rejects] == [("doomed", "generate")]
    assert "server_error" in rejects[0]["reason"] and "http_500" in rejects[0]["reason"]
    assert sum(result["counts"]["pairs"].values()) == 12
    for server in (first, second):  # the load was spread, and every fault happened
        assert server.seen["ok"] > 0
    seen = first.seen + second.seen
    assert seen["fail"] and seen["rate_limit"] and seen["stall"]
    assert None not in first.seeds + second.seeds  # every request carried a seed


def test_a_server_that_goes_away_stops_the_run_and_resume_finishes_it(inputs, tmp_path):
    manifest, prompts = inputs
    out = tmp_path / "out"
    server = StandInServer(stop_after=10).__enter__()
    port = server.httpd.server_address[1]
    with pytest.raises(UserError, match=r"(?s)no server answers any more.*--resume"):
        run(manifest, prompts, out, [server.url], request_timeout=1.0, max_retries=1,
            shard_size=2)
    manifest_json = json.loads((out / "manifest.json").read_text())
    assert manifest_json["status"] == "running"
    with StandInServer(port=port) as again:
        run(manifest, prompts, out, [again.url], resume=True, request_timeout=1.0,
            max_retries=1, shard_size=2)
    traces = rows(out / "traces" / "traces-00000-of-00001.parquet")
    assert sorted(t["prompt_id"] for t in traces) == sorted([f"q{i}" for i in range(12)]
                                                            + ["doomed"])


def test_unreachable_server_or_unserved_model_stop_before_any_prompt_is_read(inputs, tmp_path):
    manifest, prompts = inputs
    with StandInServer() as server:
        dead = server.url
    with pytest.raises(UserError, match=f"--base-url {dead}: cannot reach"):
        run(manifest, prompts, tmp_path / "a", [dead])
    with StandInServer() as server:
        with pytest.raises(UserError, match=r"does not serve --model 'other'.*stand-in"):
            settings = GenerateSettings(principles=[str(manifest)], prompts=[str(prompts)],
                                        out=str(tmp_path / "b"), backend="openai",
                                        base_url=[server.url], model="other")
            plan_run(settings, model_resolver(settings))
        assert server.seen == {}  # no completion was asked for


def test_the_api_key_comes_from_the_named_variable_and_is_never_written(inputs, tmp_path,
                                                                       monkeypatch):
    manifest, prompts = inputs
    monkeypatch.setenv("STAND_IN_KEY", "sk-very-secret-value")
    with StandInServer(api_key="sk-very-secret-value") as server:
        run(manifest, prompts, tmp_path / "out", [server.url], api_key_env="STAND_IN_KEY")
    written = "".join(p.read_text(errors="ignore") for p in (tmp_path / "out").rglob("*")
                      if p.is_file() and p.suffix in (".json", ".jsonl", ".md"))
    assert "sk-very-secret-value" not in written and "STAND_IN_KEY" in written
    monkeypatch.delenv("STAND_IN_KEY")
    with pytest.raises(UserError, match="--api-key-env STAND_IN_KEY: that environment "
                                        "variable is not set"):
        run(manifest, prompts, tmp_path / "again", ["http://127.0.0.1:9/v1"],
            api_key_env="STAND_IN_KEY")


def test_a_judge_behind_a_server_reads_top_logprobs(inputs, tmp_path):
    manifest, prompts = inputs
    with StandInServer() as server:
        result = run(manifest, prompts, tmp_path / "out", [server.url], feedback="verify")
    # The stand-in says P(A) = 0.8 whatever the order: the averaged preference is 0.5.
    prefs = rows(tmp_path / "out" / "prefs" / "train-00000-of-00001.parquet")
    assert prefs and all(abs(r["preference"] - 0.5) < 1e-3 for r in prefs)
    assert result["counts"]["feedback"]["first_position_win_rate"] == 1.0
