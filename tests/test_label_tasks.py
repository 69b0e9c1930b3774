"""The task file, the items drawn from a run, and the CLI's answer to bad input."""

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from selfalign.cli import main
from selfalign.errors import UserError
from selfalign.label.items import draw, quotas, stratified_sample
from selfalign.label.project import open_project
from selfalign.label.tasks import load_tasks

from label_helpers import scripted_judged_run, synthetic_run, write_tasks


def test_init_writes_a_task_file_that_loads_and_serves_one_compare_task(tmp_path):
    run = scripted_judged_run(tmp_path)
    result = CliRunner().invoke(main, ["label", "init", str(run)])
    assert result.exit_code == 0, result.output
    tasks = load_tasks(run / "labels" / "tasks.yaml")
    assert [(t.name, t.kind, t.limit, t.overlap) for t in tasks.tasks] == [
        ("compare", "compare", 6, 0.2)]
    assert tasks.instructions.startswith("# Instructions")
    project = open_project(run)
    assert project.db.task_state("compare")[1] == 6
    # A second init never overwrites the file people edit.
    again = CliRunner().invoke(main, ["label", "init", str(run)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_a_typo_in_the_task_file_names_file_line_and_the_key_meant(tmp_path):
    run = synthetic_run(tmp_path / "run", 4)
    path = write_tasks(run, "    limt: 3\n")
    with pytest.raises(UserError) as err:
        load_tasks(path)
    assert str(err.value) == (f"{path}:7: tasks[0].limt: unknown key `limt` — did you mean "
                              "`limit`?")
    result = CliRunner().invoke(main, ["label", "serve", str(run)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {err.value}"]


@pytest.mark.parametrize("make, says", [
    (lambda p: p.mkdir(), "no manifest.json"),
    (lambda p: (p.mkdir(), (p / "manifest.json").write_text('{"status": "running"}')),
     "still being written"),
])
def test_a_folder_that_is_not_a_finished_run_gets_one_line_and_exit_2(tmp_path, make, says):
    folder = tmp_path / "out"
    make(folder)
    for args in (["init"], ["serve"], ["report"], ["export", "--out", str(tmp_path / "x")]):
        result = CliRunner().invoke(main, ["label", args[0], str(folder), *args[1:]])
        assert result.exit_code == 2, args
        assert len(result.output.strip().splitlines()) == 1 and says in result.output


def test_the_sample_keeps_each_strata_share_and_is_the_same_on_every_draw():
    class C:
        def __init__(self, key, stratum):
            self.key, self.stratum = key, stratum
    # 60 alpha/train, 30 beta/train, 10 beta/test; 20 drawn → 12, 6 and 2 exactly.
    pool = ([C(f"a{i}", "alpha/train") for i in range(60)]
            + [C(f"b{i}", "beta/train") for i in range(30)]
            + [C(f"t{i}", "beta/test") for i in range(10)])
    strata = Counter(c.stratum for c in pool)
    first = stratified_sample(pool, strata, 20, 0, "t")
    assert Counter(c.stratum for c in first) == {"alpha/train": 12, "beta/train": 6,
                                                 "beta/test": 2}
    # Within a stratum the kept ones are those with the smallest seeded draws.
    alpha = sorted(pool[:60], key=lambda c: draw(0, "t", c.key, "sample"))[:12]
    assert {c.key for c in first if c.stratum == "alpha/train"} == {c.key for c in alpha}
    assert {c.key for c in stratified_sample(pool, strata, 20, 0, "t")} == {c.key for c in first}
    assert {c.key for c in stratified_sample(pool, strata, 20, 1, "t")} != {c.key for c in first}
    # 7 of 3 strata sized 60/30/10: exact shares 4.2, 2.1, 0.7 → 4, 2, and the largest
    # remainder (0.7) takes the last one.
    assert quotas(strata, 7) == {"alpha/train": 4, "beta/train": 2, "beta/test": 1}


def test_items_hold_the_overlap_share_gold_first_and_stay_put_once_labelled(tmp_path):
    run = synthetic_run(tmp_path / "run", 400, splits=("train", "test"))
    write_tasks(run, "    limit: 200\n    overlap: 0.25\n    gold: 5\n    splits: [train]\n")
    project = open_project(run)
    rows = project.db.conn.execute("SELECT key, gold, needed, ord, stratum FROM items "
                                   "ORDER BY ord").fetchall()
    assert len(rows) == 200 and all(r[4].endswith("/train") for r in rows)
    assert [r[1] for r in rows[:5]] == [1] * 5 and sum(r[1] for r in rows) == 5
    overlap = sum(r[2] == 2 for r in rows)
    assert 30 <= overlap <= 70  # 25% of 195 is 49; seeded, so the count is fixed run to run
    assert Counter(r[4] for r in rows) == {"alpha/train": 100, "beta/train": 100}
    # Labels pin the selection: changing it afterwards is refused, not silently redrawn.
    token = project.db.add_labeller("owner", owner=True)
    labeller = project.db.labeller_by_token(token)
    item = project.db.next_item(labeller)
    project.db.record_label(labeller, item.id, {"tie": True})
    write_tasks(run, "    limit: 150\n    overlap: 0.25\n    gold: 5\n    splits: [train]\n")
    with pytest.raises(UserError, match="has labels, and its item selection"):
        open_project(run)


def test_the_payload_keeps_the_run_side_apart_from_what_is_shown(tmp_path):
    run = scripted_judged_run(tmp_path)
    write_tasks(run)
    project = open_project(run)
    payload = json.loads(project.db.conn.execute("SELECT payload FROM items LIMIT 1").fetchone()[0])
    assert payload["replies"][0].startswith("revised(")  # reply 0 is always the revision
    assert payload["ai_preference"] == 0.5 and payload["principle"] in ("alpha", "beta")
    # The constitution the run names is still there, so the question is the principle's own.
    assert payload["question"].startswith("Which answer follows rule")
