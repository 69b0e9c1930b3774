"""Agreement figures against values worked out by hand for a small, fixed set of labels."""

import json
import math

import pytest

from selfalign.label.project import open_project
from selfalign.label.report import build_report
from selfalign.label.report_files import write_report

from label_helpers import put_answers, synthetic_run, write_tasks

# Items by key (run terms: 0 = the revision, 1 = the first answer). p4 is the gold item.
ANSWERS = {
    "pat": {"p0": 0, "p1": 0, "p2": "tie", "p3": 1, "p4": 0},
    "quinn": {"p0": 0, "p1": 1, "p2": "tie", "p3": "skip", "p4": 1},
    "rex": {"p0": 0, "p1": 0, "p2": 0},
    "olga": {"p4": 0},
}


def wilson(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [centre - half, centre + half]


@pytest.fixture
def report(tmp_path):
    run = synthetic_run(tmp_path / "run", 5)
    write_tasks(run, "    gold: 1\n")
    project = open_project(run, log=lambda m: None)
    # Make p4 the gold item whatever the seed drew, so the hand count below holds.
    project.db.conn.execute("UPDATE items SET gold = (key = 'p4/0')")
    project.db.add_labeller("olga", owner=True)
    put_answers(project, ANSWERS)
    return project, build_report(project)


def test_agreement_between_labellers_counts_ties_and_leaves_skips_out(report):
    _, figures = report
    between = figures["between_labellers"]
    # p0: 3 pairs agree; p1: pat=rex only; p2: pat=quinn (tie, tie) only; p3: one decided label.
    assert between["comparisons"] == 9
    assert between["with_ties"]["rate"] == pytest.approx(5 / 9, abs=1e-6)
    assert between["with_ties"]["ci"] == pytest.approx(wilson(5, 9), abs=1e-6)
    assert between["decided"]["comparisons"] == 6
    assert between["decided"]["rate"] == pytest.approx(4 / 6, abs=1e-6)
    # Fleiss: P̄ = (1 + 1/3 + 1/3)/3 = 5/9, Pe = (6² + 1² + 2²)/9² = 41/81 → κ = 0.1.
    assert between["fleiss_kappa"] == pytest.approx(0.1, abs=1e-6)
    # pat/quinn on p0, p1, p2: observed 2/3, expected (2·1 + 1·1)/9 → κ = 0.5.
    assert between["cohen_kappa"]["pat / quinn"] == pytest.approx(0.5, abs=1e-6)


def test_each_labeller_against_the_gold_answer_and_the_others(report):
    _, figures = report
    by_name = {l["labeller"]: l for l in figures["labellers"]}
    assert by_name["pat"]["others"]["comparisons"] == 6
    assert by_name["pat"]["others"]["rate"] == pytest.approx(4 / 6, abs=1e-6)
    assert by_name["quinn"]["others"]["rate"] == pytest.approx(3 / 6, abs=1e-6)
    assert by_name["rex"]["others"]["rate"] == pytest.approx(3 / 6, abs=1e-6)
    assert (by_name["pat"]["gold"]["comparisons"], by_name["pat"]["gold"]["rate"]) == (1, 1.0)
    assert (by_name["quinn"]["gold"]["comparisons"], by_name["quinn"]["gold"]["rate"]) == (1, 0.0)
    assert by_name["olga"]["gold"]["comparisons"] == 0
    assert by_name["pat"]["tie_share"] == 0.2 and by_name["quinn"]["skip_share"] == 0.2


def test_the_runs_ai_labels_against_people_per_principle_and_per_order(report):
    _, figures = report
    ai = figures["ai_vs_people"]
    # The AI preferred the revision everywhere (0.7). Decided labels: 11; on the revision: 8.
    assert ai["labels"] == 11 and ai["rate"] == pytest.approx(8 / 11, abs=1e-6)
    # alpha: p0, p2, p4; beta: p1, p3 (the synthetic run alternates principles).
    assert ai["by_principle"]["alpha"]["labels"] == 7
    assert ai["by_principle"]["alpha"]["rate"] == pytest.approx(6 / 7, abs=1e-6)
    assert ai["by_principle"]["beta"]["rate"] == pytest.approx(2 / 4, abs=1e-6)
    # Raw P(A): 0.9 with the revision in A, 0.5 with it in B. People's choice in A: right on
    # the 8 revision labels, half on the 3 others; in B: half, and wrong on the 3 others.
    judge = ai["judge"]
    assert judge["accuracy_by_order"]["chosen_in_a"]["rate"] == pytest.approx(9.5 / 11, abs=1e-6)
    assert judge["accuracy_by_order"]["chosen_in_b"]["rate"] == pytest.approx(4 / 11, abs=1e-6)
    assert judge["first_position_rate"] == pytest.approx(0.5)


def test_report_files_say_the_same(report):
    project, figures = report
    path, written = write_report(project)
    assert json.loads((path.parent / "report.json").read_text()) == json.loads(
        json.dumps(written))
    text = path.read_text()
    assert "55.6% (" in text and "Fleiss' kappa 0.1" in text
    assert (path.parent / "agreement.png").stat().st_size > 1000


def test_a_reward_model_is_scored_against_each_decided_label(report, tiny_reward_model):
    from selfalign.eval.reward import score_answers

    project, _ = report
    figures = build_report(project, reward_model=str(tiny_reward_model))["reward_model"]
    decided = [l for l in project.db.all_labels() if "preferred" in l["answer"]]
    assert figures["labels"] == len(decided) == 11
    # Worked out again from the model's own scores: people's reply above the other one.
    scores = score_answers(str(tiny_reward_model),
                           [l["payload"]["conversation"] for l in decided] * 2,
                           [l["payload"]["replies"][l["answer"]["preferred"]] for l in decided]
                           + [l["payload"]["replies"][1 - l["answer"]["preferred"]]
                              for l in decided])
    hits = sum(a > b for a, b in zip(scores[:11], scores[11:]))
    assert figures["rate"] == pytest.approx(hits / 11, abs=1e-6)
