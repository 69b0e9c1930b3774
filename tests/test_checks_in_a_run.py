"""Checks in a run, on the scripted stand-in engine: verdicts of first answers and revisions in
the traces, retries with the checks' messages, check_failed rejects, the card's and manifest's
figures (worked out by hand below), and resume.

The constitution: one principle, `brief` (fewer than 10 words), and a manifest check that no
reply says FORBIDDEN. Word counts are IFEval's (runs of letters and digits); the stand-in's
token counts are whitespace-separated pieces.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from run_helpers import run_scripted, write_prompts
from scripted_engine import ScriptedEngine, asks
from selfalign.engine.base import Completion, Request
from selfalign.errors import UserError
from selfalign.generate.settings import GenerateSettings

LONG = "This revision goes on and on with far too many words to pass."  # 13 words, 13 tokens
SHORT = "Short now."  # 2 words, 2 tokens
WORDS = "brief/length_constraints:number_words"
REGEX = "constitution/regex"
TOO_LONG = "Your reply has 13 words; it must have fewer than 10."
PROMPTS = [
    {"id": "a", "prompt": "Alpha?"},  # answer 4 words; revision long, its retry short
    {"id": "b", "prompt": "Bravo?"},  # the same
    {"id": "stubborn", "prompt": "Stubborn?"},  # the retry is long again: check_failed
    # the first answer has 11 words (fails); the revision is short at once (no retry)
    {"id": "wordy", "prompt": "Wordy one two three four five six seven?"},
]
PRINCIPLE = """name: brief
critique_request: CRIT Too long?
revision_request: REV Make it shorter.
checks:
  - kind: length_constraints:number_words
    relation: less than
    num_words: 10
"""
MANIFEST = """principles: [brief.yaml]
rounds: 1
checks:
  - kind: regex
    pattern: FORBIDDEN
    must: not_match
"""


class Wordy(ScriptedEngine):
    """Revises long; a retry comes back short only when its turn carries the check's message."""

    def _answer(self, request: Request) -> Completion:
        if request.stage == "revise r1":
            text = "Short and fine." if asks(request, "revise r1", "Wordy") else LONG
        elif request.stage == "retry r1":
            told = "must have fewer than 10" in request.messages[-1]["content"]
            text = SHORT if told and not asks(request, "retry r1", "Stubborn") else LONG
        else:
            return super()._answer(request)
        return Completion(text=text, output_tokens=len(text.split()), finish_reason="stop")


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "brief.yaml").write_text(PRINCIPLE)
    (tmp_path / "c.yaml").write_text(MANIFEST)
    return tmp_path / "c.yaml", write_prompts(tmp_path / "p.jsonl", PROMPTS)


def rows(path):
    return pq.read_table(path).to_pylist()


def run(setup, out, retries, engine=None, **overrides):
    manifest, prompts = setup
    return run_scripted(manifest, prompts, out, engine=engine or Wordy(),
                        check_retries=retries, **overrides)


def test_a_retry_carries_the_check_message_and_replaces_the_revision(setup, tmp_path):
    manifest, engine = run(setup, tmp_path / "out", retries=1)
    (retry,) = [r for r in engine.calls if asks(r, "retry r1", "Alpha?")]
    assert retry.messages[-1] == {"role": "user",
                                  "content": f"REV Make it shorter.\n\n{TOO_LONG}"}
    # The failed revision is not in the conversation: it ends with the critique, then the turn.
    assert [m["role"] for m in retry.messages[-4:]] == ["assistant", "user", "assistant", "user"]
    assert retry.messages[-3]["content"] == "CRIT Too long?"
    traces = {t["prompt_id"]: t for t in rows(out_traces(tmp_path / "out"))}
    a = traces["a"]
    assert a["check_verdicts"] == [
        verdict(0, 0, REGEX, True, "the pattern does not match"),
        verdict(0, 0, WORDS, True, "Your reply has 4 words, fewer than 10 as asked."),
        verdict(1, 0, REGEX, True, "the pattern does not match"),
        verdict(1, 0, WORDS, False, TOO_LONG),
        verdict(1, 1, REGEX, True, "the pattern does not match"),
        verdict(1, 1, WORDS, True, "Your reply has 2 words, fewer than 10 as asked."),
    ]
    assert a["check_retries"] == [{"round": 1, "attempt": 1, "failed": [WORDS],
                                   "replaced": LONG, "output_tokens": 2}]
    assert a["check_retry_output_tokens"] == 2
    assert a["round_details"][0]["revision"] == SHORT and a["final"] == SHORT
    assert a["status"] == "pair"
    # 4 + 6 (critique of: first answer to: Alpha?) + 13 + 2
    assert a["output_tokens"] == 25
    wordy = traces["wordy"]
    assert [(v["round"], v["check"], v["passed"]) for v in wordy["check_verdicts"]] == [
        (0, REGEX, True), (0, WORDS, False), (1, REGEX, True), (1, WORDS, True)]
    assert wordy["check_retries"] == [] and wordy["status"] == "pair"


def verdict(round_, attempt, check, passed, message):
    return {"round": round_, "attempt": attempt, "check": check, "passed": passed,
            "message": message}


def out_traces(out):
    return out / "traces" / "traces-00000-of-00001.parquet"


def test_a_final_revision_that_still_fails_goes_to_rejects_naming_the_check(setup, tmp_path):
    out = tmp_path / "out"
    run(setup, out, retries=1)
    rejects = rows(out / "rejects.parquet")
    assert [(r["id"], r["reason"], r["stage"], r["detail"]) for r in rejects] == [
        ("stubborn", "check_failed", "checks", f"the final revision fails {WORDS}: {TOO_LONG}")]
    assert [p["prompt_id"] for p in rows(out / "prefs" / "train-00000-of-00001.parquet")] == [
        "a", "b", "wordy"]
    assert [s["prompt_id"] for s in rows(out / "sft" / "train-00000-of-00001.parquet")] == [
        "a", "b", "wordy"]


def test_retries_raise_the_pass_rate_of_kept_revisions(setup, tmp_path):
    without, engine0 = run(setup, tmp_path / "r0", retries=0)
    with_one, engine1 = run(setup, tmp_path / "r1", retries=1)
    with_two, _ = run(setup, tmp_path / "r2", retries=2)
    assert not [r for r in engine0.calls if r.stage.startswith("retry")]
    kept = lambda m: m["counts"]["checks"]["principles"]["brief"]["kept_pass_rate"]  # noqa: E731
    # No retries: only wordy's revision is short (1 of 4); one retry saves a and b (3 of 4);
    # a second retry cannot save stubborn, which only ever writes LONG.
    assert (kept(without), kept(with_one), kept(with_two)) == (0.25, 0.75, 0.75)
    assert without["counts"]["rejects"] == {"check_failed": 3}
    assert with_one["counts"]["rejects"] == {"check_failed": 1}
    assert with_two["counts"]["checks"]["principles"]["brief"]["retries"] == 4  # stubborn ×2
    assert len([r for r in engine1.calls if r.stage == "retry r1"]) == 3


def test_figures_per_principle_and_check_in_the_manifest_and_card(setup, tmp_path):
    out = tmp_path / "out"
    manifest, _ = run(setup, out, retries=1)
    figures = manifest["counts"]["checks"]
    # retries: a and b (2 tokens each) and stubborn (13): 3 retries, 17 tokens.
    # output tokens: a 25, b 25, stubborn 4 + 6 + 13 + 13 = 36,
    # wordy 11 + 13 (critique of: + 11) + 3 = 27; 113 in all, over 3 kept pairs.
    assert manifest["counts"]["output_tokens"] == 113
    assert figures == {
        "principles": {"brief": {**line(4, 0.75, 4, 0.75, 3, 17), "echoes_rejected": 0}},
        "checks": {WORDS: line(4, 0.75, 4, 0.75, 3, 17), REGEX: line(4, 1.0, 4, 1.0, 0, 0)},
        "retries": 3, "retry_output_tokens": 17, "check_failed": 1, "echoes_instruction": 0,
        "pairs_per_prompt": 0.75, "output_tokens_per_pair": 37.6667,
    }
    card = (out / "README.md").read_text()
    assert "## Checks" in card and "at most 1\ntime(s)" in card
    assert f"| `{WORDS}` | 4 | 0.750 | 4 | 0.750 | 0 | 3 | 17 |\n" in card
    assert "| `brief` | 4 | 0.750 | 4 | 0.750 | 0 | 3 | 17 | 0 |" in card
    assert "Retries: 3,\ncosting 17 output tokens" in card
    assert "Yield: 0.750\nkept pairs per prompt, 37.7 output tokens per kept pair." in card


def line(first, first_rate, kept, kept_rate, retries, tokens, first_na=0, kept_na=0):
    return {"first_answers": first, "first_pass_rate": first_rate, "kept_revisions": kept,
            "kept_pass_rate": kept_rate, "retries": retries, "retry_output_tokens": tokens,
            "first_not_applicable": first_na, "kept_not_applicable": kept_na}


def test_a_run_without_checks_has_no_check_figures(tmp_path):
    from run_helpers import write_constitution

    manifest = write_constitution(tmp_path / "c")
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    result, engine = run_scripted(manifest, prompts, tmp_path / "out")
    assert "checks" not in result["counts"] and "## Checks" not in (
        tmp_path / "out" / "README.md").read_text()
    assert rows(out_traces(tmp_path / "out"))[0]["check_verdicts"] == []


def test_resume_with_checks_equals_an_uninterrupted_run(setup, tmp_path):
    reference, _ = run(setup, tmp_path / "ref", retries=1, shard_size=1)
    out = tmp_path / "out"
    # The run breaks at stubborn's retry (shard 2); shards 0 and 1 are kept.
    breaks = Wordy(fail_when=lambda r: asks(r, "retry r1", "Stubborn?"),
                   delay=lambda r: 0.05 if asks(r, r.stage, "Stubborn?") else 0.0)
    with pytest.raises(UserError, match="--resume"):
        run(setup, out, retries=1, engine=breaks, shard_size=1)
    resumed, engine = run(setup, out, retries=1, shard_size=1, resume=True)
    asked = {m["content"] for r in engine.calls for m in r.messages if m["role"] == "user"}
    assert "Stubborn?" in asked and "Alpha?" not in asked  # finished shards are not redone
    drop = ("engine_seconds",)
    assert ({k: v for k, v in resumed["counts"].items() if k not in drop}
            == {k: v for k, v in reference["counts"].items() if k not in drop})
    for name in ("prefs/train-00000-of-00001.parquet", "rejects.parquet",
                 "traces/traces-00000-of-00001.parquet"):
        assert rows(out / name) == rows(tmp_path / "ref" / name)
    with pytest.raises(UserError, match="setting check_retries: was 1, now 2"):
        run(setup, tmp_path / "ref", retries=2, shard_size=1, resume=True)


def test_check_retries_is_a_setting_of_run_yaml_and_never_negative(tmp_path):
    from selfalign.generate.settings import load_run_config

    config = tmp_path / "run.yaml"
    config.write_text("check-retries: 3\n")
    assert load_run_config(str(config)) == {"check_retries": 3}
    with pytest.raises(UserError, match="check_retries: must be >= 0, got -1"):
        GenerateSettings(check_retries=-1)
