"""`label export` and `label import`: the export is read as is by `eval judge --pairs` and by
`train rm --data`; rankings become their C(K,2) pairs; imports land in the same database."""

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from selfalign.cli import main
from selfalign.errors import UserError
from selfalign.eval.judge.pair_files import read_pairs
from selfalign.label.export import export_labels
from selfalign.label.import_labels import import_labels
from selfalign.label.project import open_project
from selfalign.train.data import DataSource, load_folder

from label_helpers import put_answers, synthetic_run, write_tasks
from premise import TEST_SEED

# Run terms: 0 = the revision ("revision reply i"), 1 = the first answer ("answer reply i").
ANSWERS = {"pat": {"p0": 0, "p1": 1, "p2": "tie", "p3": "skip"},
           "quinn": {"p0": 0, "p1": 0, "p2": 1}}


def labelled(tmp_path, extra="    overlap: 1.0\n"):
    run = synthetic_run(tmp_path / "run", 4)
    write_tasks(run, extra)
    project = open_project(run, log=lambda m: None)
    put_answers(project, ANSWERS)
    return project


def test_preference_is_the_share_of_labellers_for_chosen_with_ties_half(tmp_path):
    project = labelled(tmp_path)
    export_labels(project, tmp_path / "human")
    rows = {r["prompt_id"]: r for r in pq.read_table(
        tmp_path / "human" / "prefs" / "train-00000-of-00001.parquet").to_pylist()}
    assert sorted(rows) == ["p0", "p1", "p2"]  # p3 was only skipped
    assert (rows["p0"]["chosen"][0]["content"], rows["p0"]["preference"],
            rows["p0"]["labellers"]) == ("revision reply 0", 1.0, 2)
    # p1: one each way: 0.5, the run's order kept.
    assert (rows["p1"]["chosen"][0]["content"], rows["p1"]["preference"]) == (
        "revision reply 1", 0.5)
    # p2: a tie (half each) and one for the answer: 0.75 for the answer.
    assert (rows["p2"]["chosen"][0]["content"], rows["p2"]["rejected"][0]["content"],
            rows["p2"]["preference"]) == ("answer reply 2", "revision reply 2", 0.75)
    assert rows["p2"]["labeller_ids"] == ["L001", "L002"]
    assert rows["p2"]["instructions_sha256"] == [""]  # imported: no instructions recorded
    manifest = json.loads((tmp_path / "human" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["prefs"] == {"train": 3}


def test_ties_can_be_left_out(tmp_path):
    export_labels(labelled(tmp_path), tmp_path / "human", drop_ties=True)
    rows = {r["prompt_id"]: r for r in pq.read_table(
        tmp_path / "human" / "prefs" / "train-00000-of-00001.parquet").to_pylist()}
    assert (rows["p2"]["chosen"][0]["content"], rows["p2"]["preference"],
            rows["p2"]["labellers"]) == ("answer reply 2", 1.0, 1)


def test_eval_judge_and_train_rm_read_the_export_as_it_is(tmp_path):
    export_labels(labelled(tmp_path), tmp_path / "human")
    pairs, rejects = read_pairs([str(tmp_path / "human")])
    assert rejects == [] and len(pairs) == 3
    p2 = next(p for p in pairs if p.chosen == "answer reply 2")
    assert (p2.rejected, p2.conversation) == ("revision reply 2",
                                              [{"role": "user", "content": "prompt reply 2"}])
    data = load_folder("rm", DataSource.parse(f"{tmp_path / 'human'}:3"))
    assert len(data.splits["train"]) == 3 and data.source.weight == 3.0


def test_a_ranking_exports_its_three_pairs(tmp_path):
    project = labelled(tmp_path)
    item = project.db.item_by_key("compare", "p0/0")
    payload = project.db.item(item).payload
    # A three-reply item, as a rank task stores it, ranked 2 > 0 > 1.
    project.db.conn.execute("UPDATE items SET payload=? WHERE id=?", (json.dumps(
        {**payload, "replies": ["x0", "x1", "x2"]}), item))
    project.db.conn.execute("DELETE FROM labels")
    labeller = project.db.labeller_named("pat")
    project.db.import_label(labeller, item, {"order": [2, 0, 1]}, None, "test")
    export_labels(project, tmp_path / "human")
    rows = pq.read_table(tmp_path / "human" / "prefs" / "train-00000-of-00001.parquet").to_pylist()
    assert sorted((r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows) == [
        ("x0", "x1"), ("x2", "x0"), ("x2", "x1")]


def test_import_reads_csv_and_jsonl_and_refuses_a_bad_row_whole(tmp_path):
    run = synthetic_run(tmp_path / "run", 4)
    write_tasks(run, "    overlap: 1.0\n")
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("task,item,labeller,answer,note\ncompare,p0/0,ann,chosen,\n"
                        "compare,p1/0,ann,rejected,long\ncompare,p2/0,ann,tie,\n")
    result = CliRunner().invoke(main, ["label", "import", str(run), str(csv_file)])
    assert result.exit_code == 0 and "imported 3 labels" in result.output, result.output
    project = open_project(run, log=lambda m: None)
    got = {l["key"]: l["answer"] for l in project.db.all_labels()}
    assert got == {"p0/0": {"preferred": 0}, "p1/0": {"preferred": 1}, "p2/0": {"tie": True}}
    bad = tmp_path / "more.jsonl"
    bad.write_text(json.dumps({"task": "compare", "item": "p3/0", "labeller": "bo",
                               "answer": "chosen"}) + "\n"
                   + json.dumps({"task": "compare", "item": "p0/0", "labeller": "bo",
                                 "answer": "A"}) + "\n")
    with pytest.raises(UserError, match=r"more.jsonl:2: answer: answer must be one of"):
        import_labels(project, bad)
    assert len(project.db.all_labels()) == 3  # nothing of the bad file was written


def test_rewritten_revisions_export_as_sft_rows(tmp_path):
    run = synthetic_run(tmp_path / "run", 3)
    write_tasks(run, "  - name: rate\n    kind: rate\n")
    project = open_project(run, log=lambda m: None)
    labeller = project.db.labeller_named("ann", create=True)
    item = project.db.item_by_key("rate", "p1/0")
    project.db.import_label(labeller, item, {"score": 3, "rewrite": "better reply 1"}, None, "t")
    export_labels(project, tmp_path / "human")
    rows = pq.read_table(tmp_path / "human" / "sft" / "train-00000-of-00001.parquet").to_pylist()
    assert rows[0]["messages"] == [{"role": "user", "content": "prompt reply 1"},
                                   {"role": "assistant", "content": "better reply 1"}]
    assert rows[0]["score"] == 3 and load_folder("sft", DataSource(tmp_path / "human"))


@pytest.mark.train
def test_train_rm_mixes_the_runs_pairs_with_the_human_ones(tmp_path, tiny_model_dir):
    project = labelled(tmp_path)
    export_labels(project, tmp_path / "human")
    result = CliRunner().invoke(main, [
        "train", "rm", "--data", str(project.run.out), "--data", f"{tmp_path / 'human'}:3",
        "--out", str(tmp_path / "rm"), "--model", str(tiny_model_dir), "--max-steps", "1",
        "--batch-size", "2", "--seed", str(TEST_SEED)])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "rm" / "selfalign-train.json").read_text())
    assert [d["weight"] for d in record["data"]] == [1.0, 3.0]
    assert record["data"][1]["train_rows_used"] == 9  # 3 human pairs, weight 3
