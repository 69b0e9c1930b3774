"""Blind means blind: with everything a labeller receives (the task file, the item ids, their
pseudonym, every page and API answer, their labels read back) the side of the revision is
guessed no better than by a coin."""

from __future__ import annotations

import hashlib
import json
import random
import re
from math import comb

import pytest

import selfalign.label.db as label_db
from selfalign.stable_hash import derived_seed

from label_helpers import bearer, project_and_client, synthetic_run, write_tasks

ITEMS = 200


def neutral(i: int, which: str) -> str:
    """Reply texts that say nothing about which is the revision."""
    return f"reply {hashlib.sha256(f'{i}/{which}'.encode()).hexdigest()[:10]}"


def band_99(n: int) -> tuple[int, int]:
    """The counts a fair coin stays within 99% of the time over n tosses (two-sided)."""
    below = 0.0
    for k in range(n + 1):
        below += comb(n, k) / 2 ** n
        if below >= 0.005:
            return k, n - k
    raise AssertionError("unreachable")


def old_display_order(seed: int, item_id: int, pseudonym: str, replies: int) -> list[int]:
    """How the order was drawn before: from the seed, the item id and the pseudonym alone."""
    order = list(range(replies))
    random.Random(derived_seed(seed, "display", item_id, pseudonym)).shuffle(order)
    return order


@pytest.fixture
def labelled(tmp_path, monkeypatch):
    """200 compare items, each answered "a" by one labeller over the API; what they received.
    The secret is drawn from a fixed generator so the test gives the same figures every time;
    nothing the predictors see derives from that generator."""
    fixed = random.Random(33)
    monkeypatch.setattr(label_db.secrets, "token_hex", lambda n: fixed.randbytes(n).hex())
    run = synthetic_run(tmp_path / "run", ITEMS, text=neutral)
    tasks = write_tasks(run)
    project, client = project_and_client(run)
    auth = bearer(project.db.add_labeller("pat"))
    received, truth = [], {}
    for _ in range(ITEMS + 1):  # bounded: one more than the items, for the closing 204
        page = client.get("/", headers=auth).text
        shown = client.get("/api/next", headers=auth)
        if shown.status_code == 204:
            break
        view = shown.json()
        revision = project.db.item(view["item"]).payload["replies"][0]
        truth[view["item"]] = view["replies"].index(revision)
        answer = client.post("/api/labels", json={"item": view["item"], "answer": "a"},
                             headers=auth)
        received += [page, shown.text, answer.text]
    read_back = client.get("/api/labels", headers=auth)
    received.append(read_back.text)
    return project, tasks.read_text(), received, truth, read_back.json()


def test_nothing_a_labeller_receives_tells_the_side_of_the_revision(labelled):
    project, task_file, received, truth, read_back = labelled
    assert len(truth) == ITEMS
    seed = int(re.search(r"seed: (\d+)", task_file).group(1))
    pseudonym = read_back["labeller"]
    by_item = {label["item"]: label for label in read_back["labels"]}
    predictors = {
        "the old formula": lambda item: old_display_order(seed, item, pseudonym, 2).index(0),
        "always first": lambda item: 0,
        "the item id's parity": lambda item: item % 2,
        # Before, the read-back said {"preferred": 0} when the answer "a" was the revision.
        "the read-back": lambda item: 1 if by_item[item]["answer"] == {"preferred": 1} else 0,
    }
    low, high = band_99(ITEMS)
    assert (low, high) == (82, 118)
    hits = {name: sum(guess(item) == side for item, side in truth.items())
            for name, guess in predictors.items()}
    for name, count in hits.items():
        assert low <= count <= high, (name, hits)
    # What is read back is what was sent, in the labeller's own terms.
    assert {label["answer"] for label in read_back["labels"]} == {"a"}
    secret = project.db.display_secret
    assert all(secret not in text for text in received + [task_file])


def test_undoing_and_answering_again_shows_the_same_order_and_reads_back_the_new_answer(tmp_path):
    run = synthetic_run(tmp_path / "run", 3, text=neutral)
    write_tasks(run)
    project, client = project_and_client(run)
    auth = bearer(project.db.add_labeller("pat"))
    first = client.get("/api/next", headers=auth).json()
    client.post("/api/labels", json={"item": first["item"], "answer": "a"}, headers=auth)
    assert client.get("/api/labels", headers=auth).json()["labels"][0]["answer"] == "a"
    assert client.post("/api/undo", headers=auth).json() == {"undone": first["item"]}
    again = client.get("/api/next", headers=auth).json()
    assert again["replies"] == first["replies"]  # the same order: nothing new to compare
    client.post("/api/labels", json={"item": first["item"], "answer": "b"}, headers=auth)
    label = client.get("/api/labels", headers=auth).json()["labels"][0]
    assert {k: label[k] for k in ("item", "answer")} == {"item": first["item"], "answer": "b"}
    assert "preferred" not in json.dumps(label)


def test_each_database_draws_its_own_secret_and_keeps_it(tmp_path):
    one = label_db.LabelDB(tmp_path / "one.sqlite").display_secret
    two = label_db.LabelDB(tmp_path / "two.sqlite").display_secret
    assert one != two and re.fullmatch(r"[0-9a-f]{64}", one)
    assert label_db.LabelDB(tmp_path / "one.sqlite").display_secret == one
