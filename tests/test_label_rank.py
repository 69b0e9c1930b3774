"""A `rank` task over a real `--feedback rank` run (scripted engine): the K samples shown in a
seeded order, a ranking in display positions stored in the run's sample order, and exported
as its C(K,2) pairs."""

import pyarrow.parquet as pq
from click.testing import CliRunner

from selfalign.cli import main
from selfalign.label.answers import display_order
from selfalign.label.export import export_labels
from selfalign.label.tasks import load_tasks

from label_helpers import bearer, project_and_client, ranked_run


def test_a_ranking_is_stored_in_the_runs_order_and_exported_as_pairs(tmp_path):
    run = ranked_run(tmp_path)
    assert CliRunner().invoke(main, ["label", "init", str(run)]).exit_code == 0
    assert [t.kind for t in load_tasks(run / "labels" / "tasks.yaml").tasks] == [
        "compare", "rank"]
    (run / "labels" / "tasks.yaml").write_text(
        "tasks:\n  - name: rank\n    kind: rank\n")  # only the ranking, for this test
    project, client = project_and_client(run)
    auth = bearer(project.db.add_labeller("pat"))
    shown = client.get("/api/next", headers=auth).json()
    item = project.db.item(shown["item"])
    replies = item.payload["replies"]
    assert shown["kind"] == "rank" and sorted(shown["replies"]) == sorted(replies)
    order = display_order(project.db.display_secret, item.id, "L001", 3)
    assert shown["replies"] == [replies[i] for i in order]
    assert client.post("/api/labels", json={"item": item.id, "answer": [1, 1, 2]},
                       headers=auth).status_code == 400
    # Best first: the third reply shown, then the first, then the second.
    assert client.post("/api/labels", json={"item": item.id, "answer": [3, 1, 2]},
                       headers=auth).status_code == 201
    best, middle, worst = (replies[order[p - 1]] for p in (3, 1, 2))
    export_labels(project, tmp_path / "human")
    rows = pq.read_table(tmp_path / "human" / "prefs" / "train-00000-of-00001.parquet").to_pylist()
    assert sorted((r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows) == \
        sorted([(best, middle), (best, worst), (middle, worst)])
    assert all(r["preference"] == 1.0 and r["labellers"] == 1 for r in rows)
