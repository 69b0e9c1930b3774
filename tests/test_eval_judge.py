"""`selfalign eval judge`: human-labelled pairs read from every shape, judged by scripted judges
of known behaviour through the real judge code, and the figures worked out by hand."""

from __future__ import annotations

import gzip
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eval_fixtures import write_principles
from scripted_engine import ScriptedEngine
from selfalign.errors import UserError
from selfalign.eval.judge.agreement import Scores, Verdict, calibration, judge_figures, reward_figures
from selfalign.eval.judge.human_pairs import HumanPair, pair_of_row
from selfalign.eval.judge.run import JudgeEvalSettings, plan_judge_eval, run_judge_eval
from selfalign.eval.judge.pair_files import read_pairs, sample_pairs
from selfalign.eval.run import constitution_judge
from selfalign.records import Reject
from selfalign.stages.judge import shown_options

SUBSETS = ("harmless", "helpful")


def hh(*turns: str) -> str:
    """An HH-RLHF transcript from alternating Human / Assistant turns."""
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {t}"
                   for i, t in enumerate(turns))


def pair_rows(n: int) -> list[dict]:
    """n HH rows: the human-chosen reply says GOOD, the rejected one BAD."""
    return [{"chosen": hh(f"question {i}?", f"GOOD reply {i}"),
             "rejected": hh(f"question {i}?", f"BAD reply {i}"),
             "subset": SUBSETS[i % 2]} for i in range(n)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def scripted_judge(p_a_of) -> ScriptedEngine:
    """A judge whose P(A) is p_a_of(option A text, option B text), read from the real prompt."""
    def logprobs(request):
        p = p_a_of(*shown_options(request.messages[0]["content"]))
        return {"A": math.log(p), "B": math.log(1 - p)}
    return ScriptedEngine(option_logprobs=logprobs)


ALWAYS_A = lambda a, b: 0.9  # noqa: E731
PERFECT = lambda a, b: 0.8 if "GOOD" in a else 0.2  # noqa: E731
REVERSED = lambda a, b: 0.2 if "GOOD" in a else 0.8  # noqa: E731


def evaluate(tmp_path, engine, rows=None, score_rewards=None, **overrides):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", pair_rows(20) if rows is None else rows)
    settings = JudgeEvalSettings(pairs=(str(pairs),), principles=(str(write_principles(
        tmp_path / "principles")),), out=str(tmp_path / "out"), **overrides)
    judge = constitution_judge(cot=settings.judge_cot)
    plan = plan_judge_eval(settings, judge, lambda model: "scripted-judge")
    return run_judge_eval(plan, lambda s, m: engine, judge, score_rewards=score_rewards)


# ---------------------------------------------------------------- scripted judges, whole runs


def test_a_judge_that_always_says_a_is_a_coin_and_is_warned_about(tmp_path):
    engine = scripted_judge(ALWAYS_A)
    ev = evaluate(tmp_path, engine)
    overall = ev["overall"]
    assert overall["pairs"] == 20 and len([r for r in engine.calls if r.options]) == 40
    assert overall["accuracy"]["rate"] == 0.5
    assert overall["accuracy"]["ci"][0] < 0.5 < overall["accuracy"]["ci"][1]
    assert overall["accuracy_by_order"]["chosen_in_a"]["rate"] == 1.0
    assert overall["accuracy_by_order"]["chosen_in_b"]["rate"] == 0.0
    assert overall["first_position_rate"] == 1.0 and overall["order_disagreement_rate"] == 1.0
    assert overall["mean_p_chosen"] == 0.5  # (0.9 + (1 - 0.9)) / 2 for every pair
    assert overall["label_accuracy"]["rate"] == 0.5  # every label exactly 0.5 counts half
    assert len(ev["warnings"]) == 3
    assert "not measurably better than a coin" in ev["warnings"][0]
    assert "first (A) position in 100% of questions" in ev["warnings"][1]
    report = (tmp_path / "out" / "report.md").read_text()
    title, rest = report.split("\n\n", 1)
    assert title.startswith("# The judge against human labels")
    assert rest.startswith("> **Warning.** The judge is not measurably better than a coin")


def test_a_perfect_judge_scores_one(tmp_path):
    ev = evaluate(tmp_path, scripted_judge(PERFECT))
    overall = ev["overall"]
    assert overall["accuracy"]["rate"] == 1.0 and overall["label_accuracy"]["rate"] == 1.0
    # Wilson's interval over 20 pairs, 20 right: low = n / (n + z²) = 20 / 23.8415 (a Wald
    # interval gives 1.0, and one over the 40 questions 40 / 43.8415 = 0.9124).
    assert overall["accuracy"]["ci"] == pytest.approx([0.838875, 1.0], abs=1e-6)
    assert overall["first_position_rate"] == 0.5 and overall["order_disagreement_rate"] == 0.0
    assert overall["mean_p_chosen"] == pytest.approx(0.8)
    assert overall["brier"] == pytest.approx(0.04)  # (1 - 0.8)² for every pair
    assert overall["ece"] == pytest.approx(0.2)  # confidence 0.8, always right
    assert ev["warnings"] == []
    assert "Warning" not in (tmp_path / "out" / "report.md").read_text()
    assert ev["by_subset"] == {}  # no --subset-field


def test_a_reversed_judge_scores_zero(tmp_path):
    overall = evaluate(tmp_path, scripted_judge(REVERSED))["overall"]
    assert overall["accuracy"]["rate"] == 0.0 and overall["label_accuracy"]["rate"] == 0.0
    assert overall["brier"] == pytest.approx(0.64)


def test_figures_per_subset_and_principle_and_the_files(tmp_path):
    # Perfect on harmless pairs (even i), always-A on helpful ones (odd i).
    def p_a(a, b):
        number = int(a.split()[-1])
        return PERFECT(a, b) if number % 2 == 0 else ALWAYS_A(a, b)

    engine = scripted_judge(p_a)
    rows = pair_rows(10) + [{"chosen": hh("q?", "same"), "rejected": hh("q?", " same "),
                             "subset": "helpful"}, {"prompt": "only one side", "chosen": "x"}]
    ev = evaluate(tmp_path, engine, rows, subset_field="subset", judge_principles=2)
    assert ev["pairs"] == {"read": 12, "usable": 10, "sampled": 10, "judged": 10,
                           "judge_failures": {}}
    assert ev["rejects"] == {"identical_answers": 1, "missing_field": 1}
    assert ev["by_subset"]["harmless"]["accuracy"]["rate"] == 1.0
    assert ev["by_subset"]["helpful"]["accuracy"]["rate"] == 0.5
    assert ev["overall"]["accuracy"]["rate"] == 0.75
    # Both principles of the fixture judged every pair (2 drawn of 2), in both orders each.
    assert sorted(ev["by_principle"]) == ["be-useful", "no-harm"]
    assert all(g["pairs"] == 10 and g["accuracy"]["rate"] == 0.75
               for g in ev["by_principle"].values())
    assert len([r for r in engine.calls if r.options]) == 10 * 2 * 2

    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "judge.json", "pairs.parquet", "rejects.parquet", "reliability.png",
        "report.md"]
    saved = json.loads((out / "judge.json").read_text())
    assert saved["overall"]["accuracy"] == ev["overall"]["accuracy"]
    pairs = pq.read_table(out / "pairs.parquet").to_pylist()
    assert len(pairs) == 10
    first = pairs[0]
    assert first["prompt"] == [{"role": "user", "content": "question 0?"}]
    assert (first["chosen"], first["rejected"], first["subset"]) == (
        "GOOD reply 0", "BAD reply 0", "harmless")
    assert first["p_a_chosen_first"] == pytest.approx([0.8, 0.8])
    assert first["p_a_chosen_second"] == pytest.approx([0.2, 0.2])
    assert first["p_chosen"] == pytest.approx(0.8) and first["position_consistent"] is True
    assert pairs[1]["p_a_chosen_second"] == pytest.approx([0.9, 0.9])
    assert pairs[1]["position_consistent"] is False and pairs[1]["p_chosen"] == pytest.approx(0.5)
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    assert [(r["line"], r["reason"]) for r in rejects] == [(11, "identical_answers"),
                                                          (12, "missing_field")]
    report = (out / "report.md").read_text()
    for heading in ("## The judge", "## Calibration", "## By subset", "## By principle",
                    "## Inputs", "](reliability.png)"):
        assert heading in report
    assert "| identical_answers | 1 |" in report
    # 10 pairs, 7.5 right (the mean of both orders): Wilson's 95% interval 0.4422 to 0.9191; with
    # the human-chosen answer in A every pair is right, in B only the 5 harmless ones.
    assert ("**The judge agreed with people on 75.0% of 10 pairs (95% CI 44.2% to 91.9%)**, the "
            "mean of both orders: 100.0% with the human-chosen answer in position A, 50.0% with "
            "it in position B.") in report


def test_the_command_prints_the_headline(tmp_path, monkeypatch):
    from selfalign import cli, engine

    monkeypatch.setattr(engine, "make_engine", lambda s, m: scripted_judge(PERFECT))
    monkeypatch.setattr(engine, "judge_checker", lambda s, options: (lambda model: None))
    pairs = write_jsonl(tmp_path / "p.jsonl", pair_rows(6))
    args = ["eval", "judge", "--pairs", str(pairs), "--principles",
            str(write_principles(tmp_path / "c")), "--out", str(tmp_path / "out"),
            "--limit", "4"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    assert "accuracy 1.000 (95% CI 0.510-1.000) over 4 pairs" in result.output
    again = CliRunner().invoke(cli.main, args)
    assert again.exit_code == 2 and "already holds an eval of a judge" in again.output
    bad = CliRunner().invoke(cli.main, args[:-4] + ["--out", str(tmp_path / "o2"),
                                                    "--judge-base-url", "http://x"])
    assert bad.exit_code == 2 and "--judge-base-url needs --model" in bad.output
    assert "Traceback" not in bad.output


def test_a_judge_behind_a_server_is_measured_through_the_command(tmp_path):
    from openai_stand_in import StandInServer
    from selfalign import cli

    pairs = write_jsonl(tmp_path / "p.jsonl", pair_rows(6))
    with StandInServer() as server:  # P(A) = 0.8 whatever it is asked: always A
        result = CliRunner().invoke(cli.main, [
            "eval", "judge", "--pairs", str(pairs), "--principles",
            str(write_principles(tmp_path / "c")), "--out", str(tmp_path / "out"),
            "--judge-base-url", server.url, "--model", "stand-in"])
    assert result.exit_code == 0, result.output
    ev = json.loads((tmp_path / "out" / "judge.json").read_text())
    assert ev["engine"]["backend"] == "openai" and ev["pairs"]["judged"] == 6
    assert ev["overall"]["accuracy"]["rate"] == 0.5 and ev["overall"]["first_position_rate"] == 1
    assert "warning: The judge picked the first (A) position in 100%" in result.output


def test_eval_without_a_subcommand_still_needs_its_options():
    from selfalign import cli

    result = CliRunner().invoke(cli.main, ["eval", "--model", "x"])
    assert result.exit_code == 2
    assert "Missing option '--prompts', '--principles', '--out'" in result.output


def test_nothing_usable_is_refused_before_any_model_loads(tmp_path):
    with pytest.raises(UserError, match=r"no usable pair \(1 rows rejected: "
                                        r"\{'conversations_differ': 1\}\)"):
        evaluate(tmp_path, None, [{"chosen": hh("a?", "x"), "rejected": hh("b?", "y")}])


# ---------------------------------------------------------------- the reward model


def test_reward_figures_from_given_scores(tmp_path):
    # RM score = length of the answer: GOOD replies (4 letters) beat BAD ones, except pair 3
    # whose rejected answer is padded.
    rows = pair_rows(4)
    rows[3]["rejected"] = hh("question 3?", "BAD reply 3, much longer than the good one")

    def score(model, conversations, answers):
        assert len(conversations) == len(answers) == 8
        return [float(len(a)) for a in answers]

    model_dir = tmp_path / "rm"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(
        {"architectures": ["LlamaForSequenceClassification"], "id2label": {"0": "LABEL_0"}}))
    ev = evaluate(tmp_path, scripted_judge(PERFECT), rows, score_rewards=score,
                  reward_model=str(model_dir))
    reward = ev["overall"]["reward"]
    assert reward["pairs"] == 4 and reward["accuracy"]["rate"] == 0.75
    # margins: 1, 1, 1, 12 - 42 = -30 (len("GOOD reply 3") - len(the padded BAD reply))
    assert reward["margin"]["min"] == -30 and reward["margin"]["max"] == 1
    assert reward["margin"]["mean"] == pytest.approx(-27 / 4)
    assert reward["judge_agreement"] == {"decided": 4, "agree": 3, "rate": 0.75}
    assert (tmp_path / "out" / "rm_margins.png").read_bytes()[:4] == b"\x89PNG"


def test_a_tiny_reward_model_scores_both_answers(tmp_path, tiny_reward_model):
    """Each answer's score is the reward model's forward pass over that one conversation alone;
    the rejected answers are longer by a different amount each, so the batches are padded."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from train_fixtures import rm_score_one_row

    rows = pair_rows(4)
    for i, row in enumerate(rows):
        row["rejected"] = hh(f"question {i}?", f"BAD reply {i}" + " and then some more" * i)
    ev = evaluate(tmp_path, scripted_judge(PERFECT), rows, reward_model=str(tiny_reward_model))
    pairs = pq.read_table(tmp_path / "out" / "pairs.parquet").to_pylist()
    tokenizer = AutoTokenizer.from_pretrained(tiny_reward_model)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model).eval()
    for i, pair in enumerate(pairs):
        prompt = [{"role": "user", "content": f"question {i}?"}]
        assert pair["rm_chosen"] == pytest.approx(
            rm_score_one_row(model, tokenizer, prompt, f"GOOD reply {i}"), abs=1e-4)
        assert pair["rm_rejected"] == pytest.approx(
            rm_score_one_row(model, tokenizer, prompt, pair["rejected"]), abs=1e-4)
    assert len({p["rm_rejected"] for p in pairs}) == 4  # four different conversations
    right = sum(p["rm_chosen"] > p["rm_rejected"] for p in pairs)
    assert ev["overall"]["reward"]["accuracy"]["rate"] == right / 4


# ---------------------------------------------------------------- figures by hand


def test_brier_and_ece_by_hand():
    figures = calibration([0.9, 0.8, 0.3, 0.55])
    # Brier: (0.1² + 0.2² + 0.7² + 0.45²) / 4 = (0.01 + 0.04 + 0.49 + 0.2025) / 4
    assert figures["brier"] == pytest.approx(0.185625)
    # Confidence (right?): 0.55 (yes) in [0.5, 0.6), 0.7 (no) in [0.7, 0.8), 0.8 (yes) in
    # [0.8, 0.9), 0.9 (yes) in [0.9, 1.0]: ECE = (0.45 + 0.7 + 0.2 + 0.1) / 4
    assert figures["ece"] == pytest.approx(0.3625)
    assert [(b["low"], b["pairs"], b["accuracy"]) for b in figures["reliability"]] == [
        (0.5, 1, 1.0), (0.6, 0, None), (0.7, 1, 0.0), (0.8, 1, 1.0), (0.9, 1, 1.0)]
    assert calibration([]) == {"brier": None, "ece": None, "reliability": []}


def test_judge_figures_by_hand():
    verdicts = [Verdict(0, "p", 0.9, 0.2, 0.85),   # right in both orders
                Verdict(1, "p", 0.7, 0.6, 0.55),   # right in A, wrong in B: orders disagree
                Verdict(2, "p", 0.4, 0.5, 0.45)]   # wrong in A, exactly 0.5 in B (half)
    figures = judge_figures(verdicts)
    assert figures["accuracy_by_order"]["chosen_in_a"]["rate"] == pytest.approx(2 / 3, abs=1e-6)
    assert figures["accuracy_by_order"]["chosen_in_b"]["rate"] == 0.5
    assert figures["accuracy"]["rate"] == pytest.approx((2 + 1.5) / 6, abs=1e-6)
    assert figures["first_position_rate"] == pytest.approx(3 / 6, abs=1e-6)  # 0.9, 0.7, 0.6
    assert figures["order_disagreement_rate"] == pytest.approx(2 / 3, abs=1e-6)
    assert figures["label_accuracy"]["rate"] == pytest.approx(2 / 3, abs=1e-6)


def test_reward_agreement_leaves_out_undecided_pairs():
    verdicts = [Verdict(0, "p", 0.9, 0.1, 0.9), Verdict(1, "p", 0.5, 0.5, 0.5),
                Verdict(2, "p", 0.1, 0.9, 0.1)]
    scores = [Scores(0, 2.0, 1.0), Scores(1, 2.0, 1.0), Scores(2, 3.0, 1.0), Scores(3, 1.0, 1.0)]
    reward = reward_figures(scores, verdicts)
    assert reward["accuracy"]["rate"] == pytest.approx(3.5 / 4)
    assert reward["judge_agreement"] == {"decided": 2, "agree": 1, "rate": 0.5}


# ---------------------------------------------------------------- reading pairs


def test_hh_transcripts_split_into_the_shared_conversation_and_two_replies():
    row = {"chosen": hh("Hi", "Hello!", "How do I boil an egg?", "Nine minutes in water."),
           "rejected": hh("Hi", "Hello!", "How do I boil an egg?", "Figure it out.")}
    pair = pair_of_row(row, "f.jsonl", 3)
    assert isinstance(pair, HumanPair)
    assert pair.conversation == [{"role": "user", "content": "Hi"},
                                 {"role": "assistant", "content": "Hello!"},
                                 {"role": "user", "content": "How do I boil an egg?"}]
    assert (pair.chosen, pair.rejected) == ("Nine minutes in water.", "Figure it out.")
    assert (pair.source, pair.line) == ("f.jsonl", 3) and pair.id.startswith("pair-")
    assert pair_of_row(row, "other.jsonl", 9).id == pair.id  # the id hashes the content


@pytest.mark.parametrize("row, reason, detail", [
    ({"chosen": hh("Hi", "Hello!", "Egg?", "Boil it."), "rejected": hh("Hey", "Hello!", "Egg?",
                                                                       "No.")},
     "conversations_differ", "differ before their final reply"),
    ({"chosen": hh("Egg?", "Boil it.", "And?"), "rejected": hh("Egg?", "No.", "And?")},
     "no_final_reply", "'chosen' ends in a user turn"),
    ({"chosen": hh("Egg?", "Boil it."), "rejected": hh("Egg?", "Boil  it. ")},
     "identical_answers", "chosen and rejected are the same text"),
    ({"chosen": hh("Egg?", "Boil it.")}, "missing_field", "no 'rejected' field"),
    ({"chosen": "Boil it.", "rejected": "No."}, "no_prompt", "plain text without"),
    ({"prompt": "Egg?", "chosen": "Boil it.", "rejected": "   "}, "empty_answer",
     "the rejected answer is empty"),
    ({"prompt": [{"role": "user", "content": "Egg?"}],
      "chosen": [{"role": "user", "content": "x"}], "rejected": "No."},
     "not_one_answer", "'chosen' should hold one assistant message"),
    ({"prompt": [{"role": "robot", "content": "Egg?"}], "chosen": "a", "rejected": "b"},
     "unknown_role", "'prompt': turn 1 has role 'robot'"),
    ({"chosen": hh("Egg?", "x"), "rejected": hh("Egg?", "y")}, "missing_subset",
     "no 'subset' value"),
])
def test_rows_without_a_usable_pair_are_rejected_with_a_reason(row, reason, detail):
    reject = pair_of_row({**row, "id": "r1"}, "f.jsonl", 4, subset_field="subset"
                         if reason == "missing_subset" else None)
    assert isinstance(reject, Reject)
    assert (reject.reason, reject.source, reject.line, reject.id) == (reason, "f.jsonl", 4, "r1")
    assert detail in reject.detail


def test_trl_rows_explicit_and_implicit_prompt():
    user = {"role": "user", "content": "Egg?"}
    explicit = pair_of_row({"prompt": [user], "chosen": [{"role": "assistant", "content": "Boil"}],
                            "rejected": [{"role": "assistant", "content": "No"}]}, "f", 1)
    implicit = pair_of_row({"chosen": [user, {"role": "assistant", "content": "Boil"}],
                            "rejected": [user, {"role": "assistant", "content": "No"}]}, "f", 2)
    plain = pair_of_row({"prompt": "Egg?", "chosen": "Boil", "rejected": "No"}, "f", 3)
    for pair in (explicit, implicit, plain):
        assert (pair.conversation, pair.chosen, pair.rejected) == ([user], "Boil", "No")


def test_every_file_format_and_a_seeded_limit(tmp_path):
    rows = [{"id": f"r{i}", "prompt": f"q{i}?", "chosen": f"good {i}", "rejected": f"bad {i}"}
            for i in range(6)]
    with gzip.open(tmp_path / "a.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps(rows[0]) + "\n{not json\n[1]\n")
    (tmp_path / "b.json").write_text(json.dumps(rows[1:3]), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows[3:5]), tmp_path / "c.parquet")
    (tmp_path / "d.csv").write_text("id,prompt,chosen,rejected\nr5,q5?,good 5,bad 5\nr6,x\n",
                                    encoding="utf-8")
    pairs, rejects = read_pairs([str(tmp_path)])
    assert [p.id for p in pairs] == ["r0", "r1", "r2", "r3", "r4", "r5"]
    assert pairs[4].chosen == "good 4" and pairs[5].conversation[0]["content"] == "q5?"
    assert [(r.reason, r.line) for r in rejects] == [("invalid_json", 2), ("not_an_object", 3),
                                                     ("wrong_columns", 3)]
    picked = sample_pairs(pairs, 3, seed=1)
    assert len(picked) == 3 and picked == sample_pairs(pairs, 3, seed=1)
    assert [p.id for p in picked] == sorted(p.id for p in picked)  # file order kept
    assert {tuple(p.id for p in sample_pairs(pairs, 3, seed=s)) for s in range(6)} != {
        tuple(p.id for p in picked)}  # another seed draws other pairs
    assert sample_pairs(pairs, 10, seed=1) == pairs
    with pytest.raises(UserError, match="no such file or folder"):
        read_pairs([str(tmp_path / "missing.jsonl")])


def test_a_run_folder_gives_its_preference_pairs_and_nothing_else(tmp_path):
    """`--pairs RUN` reads prefs/ through the run reader, not the traces, sft rows and rejects
    beside it (which would become 'wrong_columns' rejects or, worse, pairs)."""
    from run_helpers import run_scripted, write_constitution, write_prompts

    prompts = [{"id": f"p{i}", "prompt": f"Question {i}?"} for i in range(4)]
    prompts.append({"id": "t0", "prompt": "Held-out question?", "split": "test"})
    out = tmp_path / "run"
    manifest, _ = run_scripted(write_constitution(tmp_path),
                               write_prompts(tmp_path / "prompts.jsonl", prompts), out)
    pairs, rejects = read_pairs([str(out)])
    assert rejects == []
    asked = sorted(p.conversation[-1]["content"] for p in pairs)
    assert asked == sorted(row["prompt"] for row in prompts)  # both splits, once each
    assert sum(manifest["counts"]["pairs"].values()) == 5
    assert all(p.rejected.startswith("first answer to:") for p in pairs)
    (out / "manifest.json").write_text('{"status": "running"}')
    with pytest.raises(UserError, match="still being written"):
        read_pairs([str(out)])
