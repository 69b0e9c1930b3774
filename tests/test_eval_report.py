"""Report writing on a small hand-made result: files, eval.json types, plots, examples, notes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from eval_fixtures import judgment, principle
from selfalign.engine.base import Completion
from selfalign.eval.outcomes import outcome_of
from selfalign.eval.report import report_markdown, write_report
from selfalign.eval.results import PromptResult, figures, most_one_sided
from selfalign.eval.settings import EvalSettings
from selfalign.records import PromptRecord

HARMLESS, HELPFUL = principle("no-harm", "harmless"), principle("be-useful", "helpful")
# prompt id → (preference, both orders agree, category, candidate answer, baseline answer)
CASES = {
    "w1": (0.97, True, "helpful", "Boil it for nine minutes.", "I'm sorry, but I can't help with that."),
    "w2": (0.91, True, "helpful", "Rayleigh scattering.", "The sky is blue because it is."),
    "w3": (0.85, True, "red_team", "I can't help you hurt him.", "Here are insults..."),
    "w4": (0.70, True, "helpful", "Two.", "Nine."),
    "t1": (0.52, True, "helpful", "Tea.", "Coffee."),
    "t2": (0.90, False, "red_team", "No.", "Maybe."),
    "l1": (0.05, True, "helpful", "I cannot provide a recipe.", "Lentils, onion, stock."),
    "l2": (0.12, True, "red_team", "Sure, the address is...", "I won't help find her address."),
    "l3": (0.20, True, "helpful", "x", "A longer and better answer."),
    "l4": (0.40, True, "helpful", "y", "z"),
}


def completion(text: str) -> Completion:
    return Completion(text=text, output_tokens=len(text.split()))


def results() -> list[PromptResult]:
    rows = []
    for pid, (pref, consistent, category, cand, base) in CASES.items():
        chosen = HARMLESS if category == "red_team" else HELPFUL
        rows.append(PromptResult(
            record=PromptRecord(id=pid, prompt=f"prompt <{pid}>", split="test",
                                metadata={"category": category}),
            candidate=completion(cand), baseline=completion(base), principles=(chosen,),
            judgment=judgment(pref, consistent, [chosen.name]),
            outcome=outcome_of(pref, consistent, 0.05)))
    rows.append(PromptResult(PromptRecord(id="f1", prompt="too long"),
                             candidate=Completion.failed("too_long"), baseline=completion("ok"),
                             skipped="candidate:too_long"))
    return rows


def evaluation(rows: list[PromptResult], same_model: bool = False) -> dict:
    settings = EvalSettings(model="out/dpo", baseline="out/dpo" if same_model else "base",
                            out="o", prompts=("prepared",), principles=("constitution/3h.yaml",))
    return {"candidate": settings.model, "baseline": settings.baseline, "judge": "base",
            "same_model": same_model, **figures(rows), "tie_band": 0.05,
            "interval": "Wilson score, 95%", "settings": settings.as_dict()}


def test_figures_of_the_hand_made_result():
    ev = evaluation(results())
    assert (ev["prompts"], ev["judged"], ev["wins"], ev["ties"], ev["losses"]) == (11, 10, 4, 2, 4)
    assert ev["win_rate"] == 0.5 and ev["win_rate_ci"] == [0.236593, 0.763407]
    assert ev["skipped"] == {"candidate:too_long": 1}
    soft = ev["preference_win_rate"]  # (0.97 + 0.91 + ... + 0.40) / 10 judged prompts
    assert (soft["prompts"], soft["rate"], soft["resamples"]) == (10, 0.562, 2000)
    assert soft["ci"][0] < 0.562 < soft["ci"][1] and 0.3 < soft["ci"][0] and soft["ci"][1] < 0.8
    assert ev["by_tag"]["harmless"] == {"prompts": 3, "wins": 1, "ties": 1, "losses": 1,
                                        "win_rate": 0.5, "win_rate_ci": [0.125334, 0.874666]}
    assert ev["by_category"]["helpful"]["prompts"] == 7
    assert ev["position_consistency"]["consistent"] == 9
    assert ev["refusals"]["candidate"]["all"] == {"prompts": 10, "refusals": 2, "rate": 0.2}
    assert ev["refusals"]["candidate"]["benign"] == {"prompts": 7, "refusals": 1,
                                                     "rate": 0.142857}
    assert ev["refusals"]["baseline"]["over_refusal_rate"] == 0.142857  # w1 of 7 benign
    assert ev["examples"] == {
        "wins": [{"prompt_id": "w1", "preference": 0.97}, {"prompt_id": "w2", "preference": 0.91},
                 {"prompt_id": "w3", "preference": 0.85}],
        "losses": [{"prompt_id": "l1", "preference": 0.05},
                   {"prompt_id": "l2", "preference": 0.12},
                   {"prompt_id": "l3", "preference": 0.2}]}
    assert ev["reward"] is None


def test_most_one_sided_breaks_ties_by_prompt_id():
    rows = [r for r in results() if r.outcome == "win"]
    rows[1].judgment = judgment(0.97)  # w2 now as one-sided as w1
    assert [e["prompt_id"] for e in most_one_sided(rows, 2)["wins"]] == ["w1", "w2"]


def test_write_report(tmp_path):
    import matplotlib.image

    rows = results()
    ev = evaluation(rows)
    write_report(tmp_path, ev, rows)

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.md", "answers.parquet", "eval.json", "lengths.png", "outcomes_by_category.png",
        "outcomes_by_tag.png", "report.md"]
    # The folder loads through its card like a run: answers.parquet as the `test` split.
    import datasets

    assert {s: d.num_rows for s, d in datasets.load_dataset(str(tmp_path), "answers").items()} \
        == {"test": len(rows)}
    saved = json.loads((tmp_path / "eval.json").read_text())
    for key in ("wins", "ties", "losses"):
        assert type(saved[key]) is int
    assert isinstance(saved["win_rate"], float)
    assert saved["win_rate_ci"] == [0.236593, 0.763407]
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = matplotlib.image.imread(png).shape
        assert height > 100 and width > 100

    table = pq.read_table(tmp_path / "answers.parquet")
    assert table.num_rows == 11
    first = table.to_pylist()[0]
    assert first["prompt"] == [{"role": "user", "content": "prompt <w1>"}]
    assert first["candidate_answer"] == "Boil it for nine minutes."
    assert first["baseline_refusal"] is True and first["candidate_refusal"] is False
    assert first["first_position_probs"] == [0.97, pytest.approx(0.03)]
    assert first["principle_ids"] == ["be-useful"] and first["outcome"] == "win"

    report = (tmp_path / "report.md").read_text()
    assert "win rate is 50.0% (95% CI 23.7% to 76.3%) over 10 judged prompts: 4 wins, 2 ties, " \
           "4 losses" in report
    assert "No clear difference" in report and "Same model" not in report
    assert "Preference-weighted win rate: 56.2% (95% bootstrap CI " in report
    assert "a weak but steady lean shows here even when every prompt is a tie" in report
    wins = report.index("### Candidate clearly better")
    losses = report.index("### Baseline clearly better")
    for pid in ("w1", "w2", "w3"):
        assert wins < report.index(f"`{pid}`") < losses
    for pid in ("l1", "l2", "l3"):
        assert report.index(f"`{pid}`") > losses
    assert "`w4`" not in report and "`l4`" not in report
    assert "prompt &lt;w1&gt;" in report  # prompt text is escaped, never raw HTML
    for plot in ("outcomes_by_tag.png", "outcomes_by_category.png", "lengths.png"):
        assert f"]({plot})" in report
    assert "1 of 11 prompts have no outcome (candidate:too_long 1)" in report


def test_the_report_says_when_both_models_are_the_same():
    rows = results()
    report = report_markdown(evaluation(rows, same_model=True), rows, [])
    assert "**Same model.**" in report and "null test" in report
    assert "![" not in report  # no plots were written, none is linked


def test_a_clear_winner_is_called_so():
    rows = [PromptResult(PromptRecord(id=f"p{i}", prompt="q"), completion("a"), completion("b"),
                         (HELPFUL,), judgment(0.9, True, ["be-useful"]), "win")
            for i in range(12)]
    report = report_markdown(evaluation(rows), rows, [])
    assert "The candidate is better than the baseline" in report
    assert "### Baseline clearly better\n\nNone." in report
