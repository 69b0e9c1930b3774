"""eval's headline direction: the win rate is the candidate's, whichever answer the judge saw first.

The models answer differently (one of them puts MARKER in its answers), and the judge is the real
judge stage (`constitution_judge`: real principle draw, real questions in both orders) asking a
scripted engine whose verdict depends only on the text it is shown: it prefers the option that
carries MARKER, a little more firmly in position (A) than in (B), as real judges lean to the
first position. If eval passed the baseline as the first answer, or read the preference the
wrong way round, the win rate would be the baseline's and these tests would fail.

The same run goes through `selfalign eval --backend openai` on two local stand-in servers.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eval_fixtures import write_prompts
from openai_stand_in import StandInServer
from scripted_engine import ScriptedEngine
from selfalign.engine.base import Completion, Request
from selfalign.eval.run import ANSWER_STAGE, constitution_judge, plan_eval, run_eval
from selfalign.eval.settings import EvalSettings
from selfalign.stages.judge import shown_options

MARKER = "MARKER"
PROMPTS = [{"id": f"p{i}", "prompt": f"Question {i}: how do I keep basil alive?"}
           for i in range(8)]
# P(option A) the scripted judge gives: 0.8 when the marked answer is (A), 0.3 when it is (B).
# So the marked answer gets 0.8 shown first and 0.7 shown second, and P(marked ≻ plain) averaged
# over both orders is (0.8 + 0.7) / 2 = 0.75.
P_A_MARKED_FIRST, P_A_MARKED_SECOND = 0.8, 0.3
P_A_UNDECIDED = 0.8  # with nothing to tell the answers apart, it picks the first position
COMPARISONS = {"prefer-care": "Which reply shows more care for the plant?",
               "prefer-clarity": "Which reply is clearer?"}


def write_principles(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, question in COMPARISONS.items():
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\ntags: [helpful]\ncritique_request: Critique it.\n"
            f"revision_request: Revise it.\ncomparison: {question}\n", encoding="utf-8")
    return folder


def options_shown(judge_turn: str) -> tuple[str, str]:
    """The texts of options (A) and (B) in a judge question."""
    return shown_options(judge_turn)


def p_option_a(judge_turn: str) -> float:
    a, b = options_shown(judge_turn)
    if (MARKER in a) == (MARKER in b):
        return P_A_UNDECIDED
    return P_A_MARKED_FIRST if MARKER in a else P_A_MARKED_SECOND


def marker_logprobs(request: Request) -> dict[str, float]:
    p = p_option_a(request.messages[-1]["content"])
    return {"A": math.log(p), "B": math.log(1 - p)}


def answer_text(model: str, marked_model: str, prompt: str) -> str:
    mark = f" {MARKER}" if model == marked_model else ""
    return f"{model} answers {prompt!r}{mark}"


class ModelEngine(ScriptedEngine):
    """Each model answers in its own words; the one named `marked` adds MARKER."""

    def __init__(self, marked: str, **options):
        super().__init__(option_logprobs=marker_logprobs, **options)
        self.marked = marked

    def _answer(self, request: Request) -> Completion:
        if request.stage != ANSWER_STAGE:
            return super()._answer(request)
        text = answer_text(self.model, self.marked, request.messages[-1]["content"])
        return Completion(text=text, prompt_tokens=5, output_tokens=len(text.split()))


@pytest.fixture
def inputs(tmp_path: Path) -> dict:
    return {"principles": (str(write_principles(tmp_path / "principles")),),
            "prompts": (str(write_prompts(tmp_path / "prompts.jsonl", PROMPTS)),),
            "out": str(tmp_path / "eval")}


def evaluate(inputs: dict, marked: str, **overrides) -> tuple[dict, list[ModelEngine]]:
    settings = EvalSettings(**{"model": "cand", "baseline": "base", **inputs, **overrides})
    built: list[ModelEngine] = []

    def make_engine(settings_, model):
        built.append(ModelEngine(marked, model=model))
        return built[-1]

    judge = constitution_judge()
    plan = plan_eval(settings, lambda model: model, judge)
    return run_eval(plan, make_engine, judge), built


def answers_of(out: str) -> list[dict]:
    return pq.read_table(Path(out) / "answers.parquet").to_pylist()


def test_a_candidate_whose_answers_the_judge_prefers_wins(inputs):
    evaluation, engines = evaluate(inputs, marked="cand")
    assert (evaluation["wins"], evaluation["ties"], evaluation["losses"]) == (8, 0, 0)
    assert evaluation["win_rate"] == 1.0
    rows = answers_of(inputs["out"])
    assert len(rows) == len(PROMPTS)
    for row, prompt in zip(rows, PROMPTS):
        assert row["candidate_answer"] == answer_text("cand", "cand", prompt["prompt"])
        assert row["baseline_answer"] == answer_text("base", "cand", prompt["prompt"])
        assert row["preference"] == pytest.approx(0.75)
        # Order 1 shows the candidate as (A), order 2 as (B): P(A) is 0.8, then 0.3.
        assert row["first_position_probs"] == pytest.approx([P_A_MARKED_FIRST,
                                                             P_A_MARKED_SECOND])
        assert row["position_consistent"] is True and row["outcome"] == "win"

    # The baseline's engine judged: two questions per prompt, one in each order.
    judge_calls = [r for r in engines[-1].calls if r.options]
    assert len(judge_calls) == 2 * len(PROMPTS)
    shown = [options_shown(r.messages[-1]["content"]) for r in judge_calls]
    assert sum(1 for a, b in shown if a.startswith("cand ") and b.startswith("base ")) == 8
    assert sum(1 for a, b in shown if a.startswith("base ") and b.startswith("cand ")) == 8


def test_a_candidate_whose_baseline_the_judge_prefers_loses(inputs):
    evaluation, _ = evaluate(inputs, marked="base")
    assert (evaluation["wins"], evaluation["ties"], evaluation["losses"]) == (0, 0, 8)
    assert evaluation["win_rate"] == 0.0
    rows = answers_of(inputs["out"])
    assert len(rows) == len(PROMPTS)
    assert [r["preference"] for r in rows] == pytest.approx([0.25] * len(PROMPTS))
    # Raw P(A): order 1 shows the marked baseline as (B), order 2 as (A).
    assert rows[0]["first_position_probs"] == pytest.approx([P_A_MARKED_SECOND,
                                                             P_A_MARKED_FIRST])


def test_the_judge_that_is_the_candidate_still_reports_the_candidate_s_win_rate(inputs):
    # The candidate answers last here (its engine stays up to judge): the order of answering
    # must not change which answer is `first`.
    evaluation, engines = evaluate(inputs, marked="cand", judge_model="cand")
    assert [e.model for e in engines] == ["base", "cand"]
    assert (evaluation["wins"], evaluation["losses"]) == (8, 0)


def test_the_question_asked_is_the_drawn_principle_s(inputs):
    evaluation, engines = evaluate(inputs, marked="cand")
    rows = {r["prompt_id"]: r for r in answers_of(inputs["out"])}
    judge_calls = [r for r in engines[-1].calls if r.options]
    assert len(judge_calls) == 16 and len(rows) == 8
    asked: dict[str, set[str]] = {}
    for request in judge_calls:
        turn = request.messages[-1]["content"]
        prompt_id = re.search(r"Question (\d+):", turn).group(1)
        question = re.search(r"\[Question\]\n(.*)\n", turn).group(1)
        asked.setdefault(f"p{prompt_id}", set()).add(question)
    assert sorted(asked) == sorted(rows)
    for prompt_id, questions in asked.items():  # both orders asked the same, recorded, question
        (principle,) = rows[prompt_id]["principle_ids"]
        assert questions == {COMPARISONS[principle]}
    # The draw spreads over both principles (8 prompts; all alike would be 1 chance in 128).
    assert {tuple(r["principle_ids"]) for r in rows.values()} == {("prefer-care",),
                                                                  ("prefer-clarity",)}
    assert evaluation["by_tag"]["helpful"]["wins"] == 8


def test_a_judge_that_only_follows_position_gives_ties(inputs):
    evaluation, _ = evaluate(inputs, marked="nobody")
    # P(A) = 0.8 in both orders: P(candidate) is 0.8, then 1 - 0.8; the orders disagree.
    assert (evaluation["wins"], evaluation["ties"], evaluation["losses"]) == (0, 8, 0)
    assert evaluation["win_rate"] == 0.5
    assert evaluation["position_consistency"] == {"judged": 8, "consistent": 0, "rate": 0.0}
    rows = answers_of(inputs["out"])
    assert [r["preference"] for r in rows] == pytest.approx([0.5] * 8)


# ---------------------------------------------------------------- the same through servers


def stand_in_judge(request: dict) -> list[tuple[str, float]]:
    text = request["messages"][-1]["content"]
    p = p_option_a(text) if "<reply_A>" in text else 0.5  # else eval's check: are there logprobs?
    return [("A", math.log(p)), ("B", math.log(1 - p))]


def stand_in(model: str, marked: str) -> StandInServer:
    return StandInServer(model=model, judge=stand_in_judge, reply=lambda request: answer_text(
        model, marked, request["messages"][-1]["content"]))


@pytest.mark.parametrize("marked, expected", [("cand", (8, 0, 1.0)), ("base", (0, 8, 0.0))])
def test_eval_through_the_openai_backend_reports_the_candidate_s_win_rate(inputs, marked,
                                                                          expected):
    from selfalign.cli import main

    with stand_in("cand", marked) as candidate, stand_in("base", marked) as baseline:
        args = ["eval", "--backend", "openai", "--model", "cand", "--baseline", "base",
                "--candidate-base-url", candidate.url, "--baseline-base-url", baseline.url,
                "--prompts", inputs["prompts"][0], "--principles", inputs["principles"][0],
                "--out", inputs["out"], "--max-tokens", "16"]
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    evaluation = json.loads((Path(inputs["out"]) / "eval.json").read_text())
    assert (evaluation["wins"], evaluation["losses"], evaluation["win_rate"]) == expected
    # The baseline's server judged: one check question before anything else, then two
    # questions per prompt (besides its own 8 answers); the candidate's only answered.
    judged = sum(1 for _, _, asked in baseline.arrivals if asked)
    assert baseline.arrivals[0][2] is True and judged == 1 + 2 * len(PROMPTS)
    assert [asked for _, _, asked in candidate.arrivals] == [False] * len(PROMPTS)
    win_rate = f"win rate {expected[2]:.3f}"
    assert win_rate in result.output
