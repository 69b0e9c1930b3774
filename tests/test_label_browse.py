"""Browse, for principle authors: per-principle figures, filters and the word diff."""

import pytest

from selfalign.label.browse import browse, principle_figures
from selfalign.word_diff import word_diff
from selfalign.store.reader import open_finished_run

from label_helpers import project_and_client, bearer, synthetic_run, write_tasks

TEXTS = {  # (prompt, answer, revision) per pair; alpha gets pairs 0 and 2, beta 1 and 3
    0: ("q0", "I can't help with that.", "Here is how: mix flour and water."),
    1: ("q1", "short", "short"),
    2: ("q2", "Sure, twelve words here.", "Sure."),
    3: ("q3", "ok", "I cannot help with that request."),
}


def text(i, which):
    prompt, answer, revision = TEXTS[i]
    return {"prompt": prompt, "answer": answer, "revision": revision}[which]


def test_principle_figures_worked_out_by_hand(tmp_path):
    run = open_finished_run(synthetic_run(tmp_path / "run", 4, text=text))
    figures = {f["principle"]: f for f in principle_figures(run)}
    alpha, beta = figures["alpha"], figures["beta"]
    # alpha: lengths 23 → 33 (+10) and 24 → 5 (−19): mean −4.5; one refusing answer of two.
    assert (alpha["draws"], alpha["revised"], alpha["mean_length_change"]) == (2, 2, -4.5)
    assert (alpha["answer_refusal_share"], alpha["revision_refusal_share"]) == (0.5, 0.0)
    assert alpha["unchanged_share"] == 0.0 and alpha["mean_ai_preference"] == 0.7
    # beta: "short" unchanged, "ok" (2) → a refusal (32): mean +15.
    assert (beta["unchanged_share"], beta["mean_length_change"]) == (0.5, 15.0)
    assert (beta["answer_refusal_share"], beta["revision_refusal_share"]) == (0.0, 0.5)


def test_filters_and_search(tmp_path):
    run = open_finished_run(synthetic_run(tmp_path / "run", 4, text=text))
    assert [c["prompt_id"] for c in browse(run, principle="beta")["conversations"]] == [
        "p1", "p3"]
    assert [c["prompt_id"] for c in browse(run, text="FLOUR")["conversations"]] == ["p0"]
    assert browse(run, reason="judge_failed")["matches"] == 0
    found = browse(run)
    assert found["choices"]["principles"] == ["alpha", "beta"] and found["pages"] == 1


def test_word_diff_keeps_removes_and_adds_words():
    assert word_diff("the cat sat", "the dog sat down") == [
        ("=", "the "), ("-", "cat"), ("+", "dog"), ("=", " sat"), ("+", " down")]
    assert "".join(t for op, t in word_diff("a b c", "a x c") if op != "-") == "a x c"


def test_the_browse_page_is_the_owners_and_shows_text_inert(tmp_path):
    run = synthetic_run(tmp_path / "run", 2, text=lambda i, w: f"<b>{w}</b> {i}")
    write_tasks(run)
    project, client = project_and_client(run)
    assert client.get("/browse", headers=bearer(project.db.add_labeller("pat"))).status_code == 403
    page = client.get("/browse", headers=bearer(project.db.add_labeller("olga", owner=True)))
    assert page.status_code == 200
    assert "&lt;b&gt;answer&lt;/b&gt; 0" in page.text and "<b>answer</b>" not in page.text
