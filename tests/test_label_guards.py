"""Guards of the labelling app that nothing else would notice missing: secrets at rest, the
session cookie's flags, claims, revocation, and the report's half credit."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner

from selfalign.cli import main
from selfalign.label.report import build_report

from label_helpers import bearer, project_and_client, put_answers, synthetic_run, write_tasks


@pytest.fixture
def two_items(tmp_path):
    run = synthetic_run(tmp_path / "run", 2)
    write_tasks(run)
    project, client = project_and_client(run)
    return run, project, client


def test_the_database_files_hold_tokens_and_sessions_only_as_sha256(two_items):
    run, project, client = two_items
    token = project.db.add_labeller("pat")
    start = client.get(f"/start?token={token}", follow_redirects=False)
    session = start.cookies["selfalign_label"]
    item = client.get("/api/next").json()["item"]
    client.post("/api/labels", json={"item": item, "answer": "a"}, headers=bearer(token))
    files = sorted(project.db.path.parent.glob(project.db.path.name + "*"))  # with -wal, -shm
    stored = b"".join(f.read_bytes() for f in files)
    for secret in (token, session):
        assert secret.encode() not in stored
    stored_hashes = {row for row in project.db.conn.execute(
        "SELECT token_sha256 FROM labellers UNION SELECT sha256 FROM sessions")}
    assert stored_hashes == {(hashlib.sha256(token.encode()).hexdigest(),),
                             (hashlib.sha256(session.encode()).hexdigest(),)}


def test_the_session_cookie_is_http_only_and_same_site_strict(two_items):
    _, project, client = two_items
    start = client.get(f"/start?token={project.db.add_labeller('pat')}", follow_redirects=False)
    flags = {part.strip().lower() for part in start.headers["set-cookie"].split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags


def test_an_answer_to_an_item_handed_to_someone_else_is_refused(two_items):
    _, project, client = two_items
    pat, quinn = (bearer(project.db.add_labeller(name)) for name in ("pat", "quinn"))
    pats = client.get("/api/next", headers=pat).json()["item"]
    quinns = client.get("/api/next", headers=quinn).json()["item"]
    assert pats != quinns  # two items, one labeller each: each holds one
    refused = client.post("/api/labels", json={"item": quinns, "answer": "a"}, headers=pat)
    assert refused.status_code == 409
    assert refused.json() == {"error": "this item is not the one handed to you; fetch /api/next"}
    assert project.db.all_labels() == []
    assert client.post("/api/labels", json={"item": quinns, "answer": "a"},
                       headers=quinn).status_code == 201


def test_label_revoke_hands_the_revoked_labellers_item_to_someone_else(tmp_path):
    run = synthetic_run(tmp_path / "run", 1)
    write_tasks(run)
    project, client = project_and_client(run)
    pat, quinn = (bearer(project.db.add_labeller(name)) for name in ("pat", "quinn"))
    only = client.get("/api/next", headers=pat).json()["item"]
    assert client.get("/api/next", headers=quinn).status_code == 204  # pat holds the one item
    result = CliRunner().invoke(main, ["label", "revoke", str(run), "pat"])
    assert result.exit_code == 0, result.output
    handed = client.get("/api/next", headers=quinn)
    assert handed.status_code == 200 and handed.json()["item"] == only


def test_the_report_counts_an_ai_label_of_exactly_one_half_as_half_agreement(tmp_path):
    run = synthetic_run(tmp_path / "run", 2)
    write_tasks(run)
    project, _ = project_and_client(run)
    project.db.conn.execute("UPDATE items SET payload=json_set(payload, '$.ai_preference', 0.5) "
                            "WHERE key='p0/0'")
    put_answers(project, {"pat": {"p0": 0, "p1": 0}, "quinn": {"p0": 0}})
    ai = build_report(project)["ai_vs_people"]
    # p0 (0.5): half each for pat and quinn; p1 (0.7, the revision): pat agrees → 2 of 3.
    assert ai["labels"] == 3 and ai["rate"] == pytest.approx(2 / 3, abs=1e-6)
    assert ai["by_principle"]["alpha"]["rate"] == 0.5  # p0 is alpha's: two halves
