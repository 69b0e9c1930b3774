"""Samples that fail after their first answer: each becomes one reject with its exact reason, and
its conversation stops at the request that failed.

With small models and several rounds these are the usual failures: a critique or revision that
no longer fits the window, an empty first answer, a revision that is nothing but its lead-in,
a judge that gives no option log-probabilities.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from run_helpers import run_scripted, write_constitution, write_prompts
from scripted_engine import ScriptedEngine, asks, even_odds
from selfalign.engine.base import Completion, Request

PROMPTS = [
    {"id": "crit2", "prompt": "Critique fails in round two."},
    {"id": "rev1", "prompt": "Revision fails in round one."},
    {"id": "empty", "prompt": "The first answer is blank."},
    {"id": "lead", "prompt": "The last revision is only a lead-in."},
    {"id": "fine", "prompt": "Nothing goes wrong here."},
]
TOO_LONG = Completion.failed("too_long", 900)
# (stage, prompt text) -> what the engine answers instead of its usual reply
SCRIPT = {
    ("critique r2", "Critique fails in round two."): TOO_LONG,
    ("revise r1", "Revision fails in round one."): TOO_LONG,
    ("answer", "The first answer is blank."): Completion(text="  \n ", output_tokens=1),
    ("revise r2", "The last revision is only a lead-in."): Completion(
        text="Sure, here is a revised response:\n", output_tokens=6),
}


class ScriptedFailures(ScriptedEngine):
    def _answer(self, request: Request) -> Completion:
        for (stage, prompt), completion in SCRIPT.items():
            if asks(request, stage, prompt):
                return completion
        return super()._answer(request)


def rows(path):
    return pq.read_table(path).to_pylist()


@pytest.fixture
def run_dir(tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS)
    manifest = write_constitution(tmp_path / "c", rounds=2)
    engine = ScriptedFailures()
    run_scripted(manifest, prompts, tmp_path / "out", engine=engine)
    return tmp_path / "out", engine


def stages_asked(engine: ScriptedEngine, prompt: str) -> list[str]:
    return [r.stage for r in engine.calls
            if any(prompt in m["content"] for m in r.messages if m["role"] == "user")]


def test_each_late_failure_is_one_reject_with_its_reason(run_dir):
    out, _ = run_dir
    rejects = rows(out / "rejects.parquet")
    assert [(r["id"], r["reason"], r["stage"], r["sample_index"], r["line"]) for r in rejects] == [
        ("crit2", "critique_r2:too_long", "critique_r2", 0, 1),
        ("rev1", "revise_r1:too_long", "revise_r1", 0, 2),
        ("empty", "empty_response", "pairs", 0, 3),
        ("lead", "empty_revision", "pairs", 0, 4),
    ]
    assert [r["detail"] for r in rejects] == [
        "the engine could not answer at stage critique_r2",
        "the engine could not answer at stage revise_r1",
        "the first answer was empty",
        "the revision was empty after cleaning",
    ]
    prefs = rows(out / "prefs" / "train-00000-of-00001.parquet")
    assert [p["prompt_id"] for p in prefs] == ["fine"]
    sft = rows(out / "sft" / "train-00000-of-00001.parquet")
    assert [s["prompt_id"] for s in sft] == ["fine"]


def test_a_conversation_stops_at_the_request_that_failed(run_dir):
    out, engine = run_dir
    assert stages_asked(engine, "Critique fails in round two.") == [
        "answer", "critique r1", "revise r1", "critique r2"]
    assert stages_asked(engine, "Revision fails in round one.") == [
        "answer", "critique r1", "revise r1"]
    full = ["answer", "critique r1", "revise r1", "critique r2", "revise r2"]
    assert stages_asked(engine, "The first answer is blank.") == full
    assert stages_asked(engine, "Nothing goes wrong here.") == full

    traces = {t["prompt_id"]: t for t in rows(out / "traces" / "traces-00000-of-00001.parquet")}
    assert len(traces) == len(PROMPTS)
    assert {k: t["status"] for k, t in traces.items()} == {
        "crit2": "critique_r2:too_long", "rev1": "revise_r1:too_long",
        "empty": "empty_response", "lead": "empty_revision", "fine": "pair"}
    # The failed round is kept as far as it went; the round before it is whole.
    crit2 = traces["crit2"]["round_details"]
    assert len(crit2) == 2 and crit2[0]["revision"].startswith("revised(first answer to:")
    assert crit2[1]["critique"] == "" and crit2[1]["revision"] == ""
    assert traces["crit2"]["principle_ids"] == [r["principle"] for r in crit2]
    lead = traces["lead"]["round_details"][1]
    assert lead["raw_revision"] == "Sure, here is a revised response:\n"
    assert lead["revision"] == ""
    assert traces["empty"]["initial"] == ""


def test_the_manifest_counts_the_late_rejects(run_dir):
    out, _ = run_dir
    manifest = json.loads((out / "manifest.json").read_text())
    rejects = manifest["counts"]["rejects"]
    assert {k: rejects[k] for k in ("critique_r2:too_long", "revise_r1:too_long",
                                    "empty_response", "empty_revision")} == {
        "critique_r2:too_long": 1, "revise_r1:too_long": 1, "empty_response": 1,
        "empty_revision": 1}
    assert manifest["counts"]["pairs"] == {"train": 1}


def no_logprobs_for_one(request: Request) -> dict[str, float]:
    """The judge gives no option log-probabilities for one prompt's question."""
    if any("Revision fails" in m["content"] for m in request.messages):
        return {}
    return even_odds(request)


def test_a_judge_without_option_logprobs_is_a_judge_failed_reject(tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", [
        {"id": "nolp", "prompt": "Revision fails to be judged."},
        {"id": "ok", "prompt": "Judged as usual."}])
    engine = ScriptedEngine(option_logprobs=no_logprobs_for_one)
    manifest, _ = run_scripted(write_constitution(tmp_path / "c"), prompts, tmp_path / "out",
                               engine=engine, feedback="verify", min_preference=0.0)
    rejects = rows(tmp_path / "out" / "rejects.parquet")
    assert [(r["id"], r["reason"], r["stage"], r["detail"]) for r in rejects] == [
        ("nolp", "judge_failed", "judge", "the judge could not answer: no_option_logprobs")]
    prefs = rows(tmp_path / "out" / "prefs" / "train-00000-of-00001.parquet")
    assert [(p["prompt_id"], p["preference"]) for p in prefs] == [("ok", 0.5)]
    assert manifest["counts"]["feedback"]["pairs_judged"] == 1


def test_a_ranked_comparison_the_judge_cannot_answer_is_a_judge_failed_reject(tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", [{"id": "r", "prompt": "Rank these answers."}])
    engine = ScriptedEngine(option_logprobs=lambda request: {}, vary_by_seed=True)
    run_scripted(write_constitution(tmp_path / "c"), prompts, tmp_path / "out", engine=engine,
                 feedback="rank", samples=2, rounds=0)
    rejects = rows(tmp_path / "out" / "rejects.parquet")
    assert [(r["id"], r["reason"], r["stage"], r["sample_index"], r["detail"])
            for r in rejects] == [
        ("r", "judge_failed", "judge", 0,
         "samples 0 and 1: the judge could not answer: no_option_logprobs")]
    assert pq.read_table(tmp_path / "out" / "prefs" / "train-00000-of-00001.parquet").num_rows == 0
    assert len([r for r in engine.calls if r.options]) == 2  # one pair, both orders
