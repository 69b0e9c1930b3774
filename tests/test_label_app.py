"""The app in-process: who may do what, what a labeller sees, and how answers are stored."""

import random
import re

import pytest

import selfalign.label.db as label_db
from selfalign.errors import UserError
from selfalign.label.answers import display_order
from selfalign.label.server import serve_project

from label_helpers import bearer, project_and_client, scripted_judged_run, synthetic_run, \
    write_tasks

SHOWN_KEYS = {"item", "task", "kind", "question", "conversation", "replies", "flags", "progress"}


@pytest.fixture
def app(tmp_path, monkeypatch):
    # A secret from a fixed generator: the same display orders on every run of the tests.
    fixed = random.Random(7)
    monkeypatch.setattr(label_db.secrets, "token_hex", lambda n: fixed.randbytes(n).hex())
    run = scripted_judged_run(tmp_path)
    write_tasks(run, "    overlap: 1.0\n")  # every item goes to two labellers
    project, client = project_and_client(run)
    tokens = {name: project.db.add_labeller(name, owner=name == "olga")
              for name in ("olga", "pat", "quinn")}
    return project, client, tokens


def login(client, token):
    page = client.get(f"/start?token={token}", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/"
    html = client.get("/").text
    return re.search(r'<meta name="csrf" content="([^"]+)"', html).group(1)


def test_every_request_needs_a_session_or_a_token(app):
    _, client, tokens = app
    for method, url in (("get", "/api/next"), ("get", "/api/labels"), ("post", "/api/undo"),
                        ("get", "/api/report"), ("get", "/report"), ("get", "/browse"),
                        ("get", "/")):
        assert getattr(client, method)(url).status_code == 401, url
        assert getattr(client, method)(url, headers=bearer("not-a-token")).status_code == 401
    assert client.get("/start?token=wrong", follow_redirects=False).status_code == 401
    assert client.get("/api/next", headers=bearer(tokens["pat"])).status_code == 200


def test_a_cookie_session_must_send_its_csrf_token_to_change_anything(app):
    _, client, tokens = app
    csrf = login(client, tokens["pat"])
    item = client.get("/api/next").json()["item"]
    assert client.post("/api/labels", json={"item": item, "answer": "a"}).status_code == 403
    assert client.post("/api/labels", json={"item": item, "answer": "a"},
                       headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/api/labels", json={"item": item, "answer": "a"},
                       headers={"X-CSRF-Token": csrf}).status_code == 201


def test_revoking_ends_the_token_and_the_sessions(app):
    project, client, tokens = app
    login(client, tokens["pat"])
    project.db.revoke("pat")
    assert client.get("/api/next").status_code == 401
    assert client.get("/api/next", headers=bearer(tokens["pat"])).status_code == 401


def test_the_ai_label_the_principle_and_the_revision_side_are_never_sent(app):
    _, client, tokens = app
    shown = client.get("/api/next", headers=bearer(tokens["pat"])).json()
    assert set(shown) == SHOWN_KEYS
    body = client.get("/api/next", headers=bearer(tokens["pat"])).text + client.get(
        "/", headers=bearer(tokens["pat"])).text
    for secret in ("ai_preference", "preference", "alpha", "beta", "scripted-model",
                   "principle", "sample_index"):
        assert secret not in body, secret
    # A labeller is refused the AI's label before labelling: the report is the owner's alone.
    assert client.get("/api/report", headers=bearer(tokens["pat"])).status_code == 403
    assert client.get("/api/report", headers=bearer(tokens["olga"])).status_code == 200


def test_a_labeller_reads_only_their_own_labels(app):
    _, client, tokens = app
    for name, answer in (("pat", "a"), ("quinn", "b")):
        item = client.get("/api/next", headers=bearer(tokens[name])).json()["item"]
        assert client.post("/api/labels", json={"item": item, "answer": answer},
                           headers=bearer(tokens[name])).status_code == 201
    mine = client.get("/api/labels", headers=bearer(tokens["pat"])).json()
    assert mine["labeller"] == "L002" and len(mine["labels"]) == 1
    # Answering an item handed to someone else is refused.
    quinn_next = client.get("/api/next", headers=bearer(tokens["quinn"])).json()["item"]
    pat_next = client.get("/api/next", headers=bearer(tokens["pat"])).json()["item"]
    if quinn_next != pat_next:
        assert client.post("/api/labels", json={"item": quinn_next, "answer": "a"},
                           headers=bearer(tokens["pat"])).status_code == 409


def test_answers_are_stored_in_the_runs_terms_whatever_the_order_shown(app):
    project, client, tokens = app
    labeller = project.db.labeller_by_token(tokens["pat"])
    for _ in range(6):
        shown = client.get("/api/next", headers=bearer(tokens["pat"])).json()
        item = project.db.item(shown["item"])
        order = display_order(project.db.display_secret, item.id, "L002", 2)
        assert shown["replies"] == [item.payload["replies"][i] for i in order]
        client.post("/api/labels", json={"item": item.id, "answer": "a"},
                    headers=bearer(tokens["pat"]))
    labels = project.db.own_labels(labeller)
    # "a" is whatever was shown first: the revision (reply 0) when the order was not flipped.
    expected = [display_order(project.db.display_secret, l["item"], "L002", 2)[0] for l in labels]
    assert [l["answer"]["preferred"] for l in labels] == expected
    assert 0 in expected and 1 in expected  # both orders occurred among six items


def test_a_retried_answer_is_stored_once_undo_gives_the_item_back_and_204_ends(app):
    project, client, tokens = app
    auth = bearer(tokens["pat"])
    shown = client.get("/api/next", headers=auth).json()
    first = shown["item"]
    assert shown["progress"] == {"done": 0, "left": 6, "left_capped": False}
    one = client.post("/api/labels", json={"item": first, "answer": "tie"}, headers=auth).json()
    again = client.post("/api/labels", json={"item": first, "answer": "tie"}, headers=auth)
    assert again.status_code == 201 and again.json() == one
    assert client.post("/api/labels", json={"item": first, "answer": "maybe"},
                       headers=auth).status_code == 400
    assert client.get("/api/next", headers=auth).json()["progress"] == {
        "done": 1, "left": 5, "left_capped": False}
    assert client.post("/api/undo", headers=auth).json() == {"undone": first}
    assert client.get("/api/next", headers=auth).json()["item"] == first
    seen = set()
    for _ in range(20):  # bounded: a loop that never ends fails instead of hanging
        response = client.get("/api/next", headers=auth)
        if response.status_code == 204:
            break
        item = response.json()["item"]
        assert item not in seen
        seen.add(item)
        client.post("/api/labels", json={"item": item, "answer": "skip"}, headers=auth)
    assert len(seen) == 6 and response.content == b""


def test_overlap_items_go_to_exactly_two_labellers(app):
    project, client, tokens = app
    for name in ("pat", "quinn", "olga"):
        for _ in range(20):  # bounded
            r = client.get("/api/next", headers=bearer(tokens[name]))
            if r.status_code == 204:
                break
            client.post("/api/labels", json={"item": r.json()["item"], "answer": "a"},
                        headers=bearer(tokens[name]))
    per_item = project.db.conn.execute("SELECT item, count(*) FROM labels GROUP BY item").fetchall()
    assert sorted(n for _, n in per_item) == [2] * 6
    assert project.db.conn.execute("SELECT count(*) FROM labels JOIN labellers ON "
                                   "labellers.id=labels.labeller WHERE name='olga'"
                                   ).fetchone()[0] == 0


def test_gold_items_come_first_and_wait_for_the_owners_answer(tmp_path):
    run = synthetic_run(tmp_path / "run", 10)
    write_tasks(run, "    gold: 2\n")
    project, client = project_and_client(run)
    owner, pat = (project.db.add_labeller(n, owner=n == "olga") for n in ("olga", "pat"))
    golds = {r[0] for r in project.db.conn.execute("SELECT id FROM items WHERE gold=1")}
    first_for_pat = client.get("/api/next", headers=bearer(pat)).json()["item"]
    assert first_for_pat not in golds  # no gold answer yet
    client.post("/api/labels", json={"item": first_for_pat, "answer": "a"}, headers=bearer(pat))
    for _ in range(2):
        item = client.get("/api/next", headers=bearer(owner)).json()["item"]
        assert item in golds
        client.post("/api/labels", json={"item": item, "answer": "a"}, headers=bearer(owner))
    assert client.get("/api/next", headers=bearer(pat)).json()["item"] in golds


def test_no_url_reaches_a_file_outside_the_app(app):
    project, client, tokens = app
    (project.run.out / "labels" / "secret.png").write_bytes(b"x")
    auth = bearer(tokens["olga"])
    for url in ("/static/../manifest.json", "/static/%2e%2e/%2e%2e/manifest.json",
                "/static/..%2fapp.py", "/report/plots/secret.png",
                "/report/plots/..%2f..%2fmanifest.json", "/manifest.json", "/labels/labels.sqlite"):
        response = client.get(url, headers=auth)
        assert response.status_code in (404, 400), url
    assert client.get("/static/label.js").status_code == 200


def test_pages_carry_a_strict_content_security_policy(app):
    _, client, tokens = app
    page = client.get("/", headers=bearer(tokens["pat"]))
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    # Every script comes from a file, and no element carries an inline event handler.
    assert re.findall(r"<script(?![^>]*\bsrc=)", page.text) == []
    assert re.findall(r"<[^>]*\son[a-z]+=", page.text) == []


def test_serving_beyond_loopback_without_tokens_is_refused(tmp_path):
    run = synthetic_run(tmp_path / "run", 4)
    write_tasks(run)
    with pytest.raises(UserError, match="refusing to serve beyond this machine"):
        serve_project(run, "0.0.0.0", 0)


def test_a_task_taken_out_of_the_file_is_no_longer_served_and_its_labels_stay(tmp_path):
    run = synthetic_run(tmp_path / "run", 3)
    write_tasks(run, "  - name: rate\n    kind: rate\n")
    project, client = project_and_client(run)
    auth = bearer(project.db.add_labeller("pat"))
    for _ in range(3):  # the compare task comes first, in file order
        shown = client.get("/api/next", headers=auth).json()
        assert shown["task"] == "compare"
        client.post("/api/labels", json={"item": shown["item"], "answer": "b"}, headers=auth)
    rate = client.get("/api/next", headers=auth).json()
    assert (rate["task"], rate["kind"], len(rate["replies"])) == ("rate", "rate", 1)
    write_tasks(run)  # the rate task is gone
    project, client = project_and_client(run)
    assert client.get("/api/next", headers=auth).status_code == 204
    assert client.post("/api/labels", json={"item": rate["item"], "answer": 5},
                       headers=auth).status_code == 409
    assert len(project.db.all_labels()) == 3


def test_the_owners_instructions_render_as_markdown_with_raw_html_escaped(tmp_path):
    run = synthetic_run(tmp_path / "run", 2)
    write_tasks(run, instructions="# Rules\n\nPrefer **honest** replies. <script>x()</script>\n")
    project, client = project_and_client(run)
    page = client.get("/", headers=bearer(project.db.add_labeller("pat"))).text
    assert "<h1>Rules</h1>" in page and "<strong>honest</strong>" in page
    assert "&lt;script&gt;x()&lt;/script&gt;" in page and "<script>x()" not in page


def test_rate_and_flags_tasks_take_their_own_answers(tmp_path):
    run = synthetic_run(tmp_path / "run", 1)
    write_tasks(run, "    limit: 1\n  - name: rate\n    kind: rate\n"
                     "  - name: prompt-flags\n    kind: flags\n    flags: [harmful, violent]\n")
    project, client = project_and_client(run)
    auth = bearer(project.db.add_labeller("pat"))
    answers = {"compare": ["a"], "rate": [8, True, 6],
               "prompt-flags": [["sexual"], ["violent", "harmful", "violent"]]}
    for _ in range(3):
        shown = client.get("/api/next", headers=auth).json()
        *bad, good = answers[shown["task"]]
        for answer in bad:
            assert client.post("/api/labels", json={"item": shown["item"], "answer": answer},
                               headers=auth).status_code == 400, (shown["task"], answer)
        body = {"item": shown["item"], "answer": good, "rewrite": "  better  "}
        assert client.post("/api/labels", json=body, headers=auth).status_code == 201
        if shown["kind"] == "flags":
            assert shown["replies"] == [] and shown["flags"] == ["harmful", "violent"]
    stored = {l["task"]: l["answer"] for l in project.db.all_labels()}
    assert stored["rate"] == {"score": 6, "rewrite": "better"}
    assert stored["prompt-flags"] == {"flags": ["harmful", "violent"]}
