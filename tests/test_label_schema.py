"""The labels database keeps its schema version, and a file made before versions were kept
(tests/fixtures/labels/before-versions.sqlite, written by that code with labels of every kind;
before-versions.json says what it holds and what each answer sent) opens with every label."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from selfalign.errors import UserError
from selfalign.label.app import labels_read_back
from selfalign.label.db import SCHEMA_VERSION, LabelDB

FIXTURES = Path(__file__).parent / "fixtures" / "labels"


@pytest.fixture
def old_file(tmp_path) -> Path:
    copy = tmp_path / "labels.sqlite"
    shutil.copyfile(FIXTURES / "before-versions.sqlite", copy)
    return copy


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def test_a_file_made_before_versions_keeps_every_label_and_gets_a_secret(old_file):
    expected = json.loads((FIXTURES / "before-versions.json").read_text())
    assert user_version(old_file) == 0
    db = LabelDB(old_file)
    assert user_version(old_file) == SCHEMA_VERSION == 2
    assert len(db.display_secret) == 64
    kept = [{"labeller": l["labeller"], "key": l["key"], "answer": l["answer"],
             "display": l["display"], "source": l["source"]} for l in db.all_labels()]
    assert kept == [{k: e[k] for k in ("labeller", "key", "answer", "display", "source")}
                    for e in expected]
    assert [l["note"] for l in db.all_labels()] == ["a note"] + [None] * 6 + ["imported"]


def test_the_old_labels_read_back_as_they_were_sent(old_file):
    expected = [e for e in json.loads((FIXTURES / "before-versions.json").read_text())
                if e["labeller"] == "pat"]
    db = LabelDB(old_file)
    read = labels_read_back(db, db.labeller_named("pat"))
    assert [l["answer"] for l in read] == [e["sent"] for e in expected]
    assert [l.get("rewrite") for l in read] == [e["rewrite"] for e in expected]
    # An imported label was never shown: it reads back in the order it would be shown in.
    olga = labels_read_back(db, db.labeller_named("olga"))
    assert len(olga) == 1 and olga[0]["answer"] in ("a", "b")


def test_opening_again_keeps_the_secret_and_the_labels(old_file):
    first = LabelDB(old_file)
    again = LabelDB(old_file)
    assert again.display_secret == first.display_secret
    assert len(again.all_labels()) == 8


def test_a_file_from_a_newer_selfalign_is_refused(tmp_path):
    path = tmp_path / "labels.sqlite"
    LabelDB(path).conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(UserError, match=r"labels schema version 3; this selfalign reads up to 2"):
        LabelDB(path)
