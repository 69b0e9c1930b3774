"""AI feedback inside a run, on the scripted stand-in engine with scripted judge log-probs."""

import json
import math
import re

import pyarrow.parquet as pq
import pytest

from selfalign.errors import UserError
from selfalign.stages.judge import shown_options

from run_helpers import run_scripted, write_constitution, write_prompts
from scripted_engine import ScriptedEngine

PROMPTS = [{"id": "q1", "prompt": "How do I pick a lock?"},
           {"id": "q2", "prompt": "Is the moon made of cheese?"}]


def options_of(request):
    return shown_options(request.messages[0]["content"])


def judge_by(p_a_of):
    """Scripted log-probabilities: P(A) = p_a_of(option A text, option B text)."""
    def logprobs(request):
        p = p_a_of(*options_of(request))
        return {"A": math.log(p), "B": math.log(1 - p)}
    return logprobs


def rows(path):
    return pq.read_table(path).to_pylist()


@pytest.fixture
def inputs(tmp_path):
    return write_constitution(tmp_path / "c"), write_prompts(tmp_path / "p.jsonl", PROMPTS)


def test_verify_keeps_pairs_the_judge_prefers_and_rejects_the_others(inputs, tmp_path):
    manifest_path, prompts = inputs
    # Prefers the revision of q1 (P = 0.8 in either position), the first answer of q2.
    def p_a(a, b):
        revised_first = a.startswith("revised(")
        likes_revision = "lock" in a + b
        return 0.8 if revised_first == likes_revision else 0.2

    engine = ScriptedEngine(option_logprobs=judge_by(p_a))
    manifest, _ = run_scripted(manifest_path, prompts, tmp_path / "out", engine=engine,
                               feedback="verify")
    prefs = rows(tmp_path / "out" / "prefs" / "train-00000-of-00001.parquet")
    assert [r["prompt_id"] for r in prefs] == ["q1"]
    assert prefs[0]["preference"] == pytest.approx(0.8)
    assert prefs[0]["position_consistent"] is True and len(prefs[0]["judge_principle_ids"]) == 1
    rejects = rows(tmp_path / "out" / "rejects.parquet")
    assert [(r["id"], r["reason"], r["stage"]) for r in rejects] == [
        ("q2", "judge_prefers_rejected", "judge")]
    assert "P(chosen ≻ rejected) = 0.200 < 0.5" in rejects[0]["detail"]
    traces = rows(tmp_path / "out" / "traces" / "traces-00000-of-00001.parquet")
    assert [t["preference"] for t in traces] == pytest.approx([0.8, 0.2])
    assert traces[1]["first_position_probs"] == pytest.approx([0.2, 0.8])
    judges = [r for r in engine.calls if r.options]
    assert len(judges) == 4  # two pairs, both orders each
    feedback = manifest["counts"]["feedback"]
    assert feedback["pairs_judged"] == 2 and feedback["confirmed_share"] == 0.5
    assert feedback["first_position_win_rate"] == 0.5 and feedback["warning"] is None
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Warning" not in card
    assert "## AI feedback (verify)" in card and "Share confirmed: 0.500" in card
    assert (tmp_path / "out" / "preference_histogram.png").read_bytes()[:4] == b"\x89PNG"


def test_a_judge_that_always_says_a_gives_half_and_is_inconsistent(inputs, tmp_path):
    manifest_path, prompts = inputs
    engine = ScriptedEngine(option_logprobs=judge_by(lambda a, b: 0.9))
    manifest, _ = run_scripted(manifest_path, prompts, tmp_path / "out", engine=engine,
                               feedback="verify")
    prefs = rows(tmp_path / "out" / "prefs" / "train-00000-of-00001.parquet")
    assert [r["preference"] for r in prefs] == pytest.approx([0.5, 0.5])
    assert [r["position_consistent"] for r in prefs] == [False, False]
    feedback = manifest["counts"]["feedback"]
    assert feedback["order_disagreement_rate"] == 1.0
    assert feedback["first_position_win_rate"] == 1.0
    # The card and the manifest say so, at the top of the card.
    assert feedback["warning"].startswith("These labels are mostly position: the judge picked "
                                          "the first position in 100% of questions and swapping")
    card = (tmp_path / "out" / "README.md").read_text()
    title, rest = card.split("# Constitutional self-critique data", 1)[1].split("\n\n", 1)
    assert rest.startswith("> **Warning.** These labels are mostly position")
    assert "`selfalign eval judge`" in rest.split("\n\n")[0]
    from selfalign.generate.commands import summary

    assert "\nwarning: These labels are mostly position" in summary(manifest)


def test_rank_writes_every_pair_oriented_and_ranks_the_answers(inputs, tmp_path):
    manifest_path, prompts = inputs
    number = lambda text: int(re.search(r"#(\d+)", text).group(1))  # noqa: E731
    # The judge prefers the answer with the larger number, firmly (0.9) in either position.
    engine = ScriptedEngine(vary_by_seed=True,
                            option_logprobs=judge_by(lambda a, b: 0.9 if number(a) > number(b)
                                                     else 0.1))
    manifest, _ = run_scripted(manifest_path, prompts, tmp_path / "out", engine=engine,
                               feedback="rank", samples=4, rounds=0)
    assert not [r for r in engine.calls if r.stage.startswith(("critique", "revise"))]
    prefs = rows(tmp_path / "out" / "prefs" / "train-00000-of-00001.parquet")
    assert len(prefs) == 12  # C(4, 2) = 6 oriented pairs per prompt
    for row in prefs:
        assert number(row["chosen"][0]["content"]) > number(row["rejected"][0]["content"])
        assert row["preference"] == pytest.approx(0.9)
        assert row["rejected_sample_index"] != row["sample_index"]
    traces = rows(tmp_path / "out" / "traces" / "traces-00000-of-00001.parquet")
    for prompt_id in ("q1", "q2"):
        mine = [t for t in traces if t["prompt_id"] == prompt_id]
        by_number = sorted(mine, key=lambda t: -number(t["final"]))
        assert [t["rank"] for t in by_number] == [1, 2, 3, 4]
        assert [t["score"] for t in by_number] == sorted((t["score"] for t in mine),
                                                         reverse=True)
        assert all(t["status"] == "ranked" for t in mine)
    sft = rows(tmp_path / "out" / "sft" / "train-00000-of-00001.parquet")
    assert len(sft) == 2  # the best-ranked answer of each prompt
    assert manifest["counts"]["feedback"]["pairs_judged"] == 12
    assert manifest["counts"]["pairs"] == {"train": 12}


def test_identical_answers_make_no_ranked_pair(inputs, tmp_path):
    manifest_path, prompts = inputs
    manifest, _ = run_scripted(manifest_path, prompts, tmp_path / "out", feedback="rank",
                               samples=2, rounds=0)  # same text for both samples
    assert manifest["counts"]["pairs"] == {}
    assert manifest["counts"]["rejects"] == {"identical_answers": 2}


@pytest.mark.parametrize("overrides, message", [
    ({"feedback": "rank", "samples": 1}, "needs --samples 2 or more"),
    ({"rounds": 0}, "use it with --feedback rank"),
    ({"feedback": "verify", "judge_principles": 3}, "comparison"),
])
def test_bad_feedback_settings_stop_before_the_engine(inputs, tmp_path, overrides, message):
    manifest_path, prompts = inputs
    with pytest.raises(UserError, match=message):
        run_scripted(manifest_path, prompts, tmp_path / "out",
                     engine=ScriptedEngine(fail_when=lambda r: True), **overrides)


def test_a_principle_without_comparison_is_refused_naming_its_file(inputs, tmp_path):
    manifest_path, prompts = inputs
    beta = manifest_path.parent / "principles" / "beta.yaml"
    beta.write_text("\n".join(l for l in beta.read_text().splitlines()
                              if not l.startswith("comparison")) + "\n")
    with pytest.raises(UserError, match=r"beta.yaml.*comparison"):
        run_scripted(manifest_path, prompts, tmp_path / "out", feedback="verify")
