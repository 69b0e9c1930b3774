"""The labelling app in a real browser (Debian's Chromium through Playwright): hostile model
text stays inert, and a keyboard session is stored exactly as pressed.

Skipped, with the reason printed, where Chromium or Playwright is missing (`make test` installs
both where apt-get is available; `.ci/run` always does).
"""

import os
import shutil

import pytest

from selfalign.label.project import open_project
from selfalign.label.report import build_report

from label_helpers import free_port, start_server, synthetic_run, write_tasks

pytestmark = pytest.mark.browser

HOSTILE = [
    "<script>alert('script')</script>",
    "<img src=x onerror=alert('img')>",
    "<a href=\"javascript:alert('link')\">click me</a> [md link](javascript:alert('md'))",
    "<b>raw html</b> **markdown bold** # heading <iframe src=\"http://example.com/\"></iframe>",
    "\u202eright-to-left override\u202c and zero\u200bwidth\u200d joiners \u05e9\u05dc\u05d5\u05dd",
    "<style>body{display:none}</style><link rel=stylesheet href=http://example.com/x.css>",
]


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium not installed: `apt-get install -y chromium` (make test does it "
                    "as root where apt-get is available)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright not installed: `pip install playwright==1.65.2`")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def served(tmp_path):
    servers = []

    def serve(run):
        port = free_port()
        servers.append(start_server(run, port))
        return f"http://127.0.0.1:{port}"
    yield serve
    for server in servers:
        server.terminate()
        server.wait(10)


def watch(page, origin):
    """Record every dialog and every request that leaves the app's own origin."""
    events = {"dialogs": [], "outside": []}
    page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
    page.on("request", lambda r: None if r.url.startswith(origin)
            else events["outside"].append(r.url))
    return events


def hostile_text(i, which):
    if which == "prompt":
        return HOSTILE[i % len(HOSTILE)] + " " + "long " * 10_000  # 50,000 characters
    return f"{which}: {HOSTILE[(i + 1) % len(HOSTILE)]}"


def test_hostile_model_text_is_shown_as_inert_text(tmp_path, browser, served):
    run = synthetic_run(tmp_path / "run", len(HOSTILE), text=hostile_text)
    write_tasks(run)
    token = open_project(run, log=lambda m: None).db.add_labeller("pat")
    origin = served(run)
    page = browser.new_page()
    events = watch(page, origin)
    page.goto(f"{origin}/start?token={token}")
    assert page.url == f"{origin}/"  # the token is gone from the address bar
    for _ in range(len(HOSTILE)):
        page.wait_for_selector("#item[data-item]")
        # The text on the page is the model's text, character for character.
        prompt = page.locator(".turn.user .text").text_content()
        assert prompt in {hostile_text(i, "prompt") for i in range(len(HOSTILE))}
        assert len(prompt) > 50_000
        replies = page.locator(".reply .text").all_text_contents()
        expected = {hostile_text(i, w) for i in range(len(HOSTILE)) for w in ("revision", "answer")}
        assert len(replies) == 2 and set(replies) <= expected
        # Nothing the text holds became an element: the only script is the app's own.
        assert page.locator("main img, main iframe, main a[href^='javascript'], main b, "
                            "main style, main link").count() == 0
        assert page.locator("script").count() == 1
        with page.expect_navigation():
            page.keyboard.press("a")
    page.wait_for_selector("#done")
    assert events == {"dialogs": [], "outside": []}


def pick(page, rule):
    """The key a person presses: they read the replies and choose by the rule."""
    replies = page.locator(".reply .text").all_inner_texts()
    number = int(replies[0].rsplit(" ", 1)[1])
    want = rule(number)
    if want == "tie":
        return "t"
    return "a" if replies[0].startswith(want) else "b"


def label_all(page, rule, limit=20):
    pressed = 0
    while page.locator("#item[data-item]").count() and pressed < limit:
        with page.expect_navigation():
            page.keyboard.press(pick(page, rule))
        pressed += 1
    return pressed


def olga_rule(n):
    return "tie" if n == 3 else "revision"


def pat_rule(n):
    return "revision" if n < 6 else "answer"


def test_a_keyboard_session_undo_reload_and_the_report_agree_with_the_hand_count(
        tmp_path, browser, served):
    run = synthetic_run(tmp_path / "run", 10)
    write_tasks(run, "    overlap: 1.0\n")  # both labellers get every item
    project = open_project(run, log=lambda m: None)
    tokens = {name: project.db.add_labeller(name, owner=name == "olga") for name in ("olga", "pat")}
    origin = served(run)

    page = browser.new_page()
    events = watch(page, origin)
    page.goto(f"{origin}/start?token={tokens['olga']}")
    assert label_all(page, olga_rule) == 10
    assert page.locator("#done").count() == 1
    with page.expect_navigation():
        page.keyboard.press("u")  # the tenth label comes back to the screen
    assert page.locator("#item[data-item]").count() == 1
    assert label_all(page, olga_rule) == 1
    page.reload()
    assert page.locator("#done").count() == 1  # nothing lost, nothing left
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()

    second = browser.new_page()
    second.goto(f"{origin}/start?token={tokens['pat']}")
    assert label_all(second, pat_rule) == 10
    assert events == {"dialogs": [], "outside": []}

    labels = project.db.all_labels()
    assert len(labels) == 20
    olga = {l["key"]: l["answer"] for l in labels if l["labeller"] == "olga"}
    assert olga["p3/0"] == {"tie": True} and olga["p9/0"] == {"preferred": 0}
    # By hand: p0, p1, p2, p4, p5 agree; p3 is a tie against the revision; p6–p9 differ.
    between = build_report(project)["between_labellers"]
    assert between["comparisons"] == 10 and between["with_ties"]["rate"] == 0.5
    assert between["decided"]["comparisons"] == 9
    assert between["decided"]["rate"] == pytest.approx(5 / 9, abs=1e-6)


def ranked_run_with_tasks(root, tasks: str):
    """A real `--feedback rank` run with the task file `tasks`. The run is made in its own
    process: Playwright's sync API keeps an event loop running here, and the runner needs one
    of its own (and the main thread, for its signals)."""
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).parent
    subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                    "from pathlib import Path; from label_helpers import ranked_run; "
                    "ranked_run(Path(sys.argv[2]))", str(tests), str(root)],
                   check=True, env={**os.environ, "PYTHONPATH": str(tests.parent)})
    run = root / "run"
    (run / "labels").mkdir()
    (run / "labels" / "tasks.yaml").write_text(tasks)
    return run


def test_a_ranking_and_a_rating_by_keys_alone(tmp_path, browser, served):
    run = ranked_run_with_tasks(tmp_path, "tasks:\n  - name: rank\n    kind: rank\n    limit: 1\n"
                                          "  - name: rate\n    kind: rate\n    limit: 1\n")
    project = open_project(run, log=lambda m: None)
    token = project.db.add_labeller("pat")
    origin = served(run)
    page = browser.new_page()
    events = watch(page, origin)
    page.goto(f"{origin}/start?token={token}")
    shown = page.locator(".reply .text").all_text_contents()
    for key in ("2", "3", "2", "Backspace", "3", "1"):  # a repeat is ignored; Backspace undoes
        page.keyboard.press(key)
    assert page.locator("#ranking").text_content() == "2 > 3 > 1"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.keyboard.press("5")
    page.locator("#rewrite").fill("A better demonstration.")
    page.locator("#rewrite").press("Escape")  # back to the keys
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#done").count() == 1 and events == {"dialogs": [], "outside": []}
    labels = {l["task"]: l for l in project.db.all_labels()}
    replies = labels["rank"]["payload"]["replies"]
    assert [replies[i] for i in labels["rank"]["answer"]["order"]] == [shown[1], shown[2],
                                                                       shown[0]]
    assert labels["rate"]["answer"] == {"score": 5, "rewrite": "A better demonstration."}


def test_a_ranking_by_dragging_the_replies_into_order(tmp_path, browser, served):
    run = ranked_run_with_tasks(tmp_path, "tasks:\n  - name: rank\n    kind: rank\n    limit: 1\n")
    project = open_project(run, log=lambda m: None)
    origin = served(run)
    page = browser.new_page()
    events = watch(page, origin)
    page.goto(f"{origin}/start?token={project.db.add_labeller('pat')}")
    shown = page.locator("#rank-list .reply .text").all_text_contents()
    cards = page.locator("#rank-list .reply")
    # The third reply is the best: dragged onto the first, it goes before it; then the second
    # is dragged onto the first, which puts it before that one.
    cards.nth(2).drag_to(cards.nth(0))
    assert page.locator("#ranking").text_content() == "3 > 1 > 2"
    cards = page.locator("#rank-list .reply")
    cards.nth(2).drag_to(cards.nth(1))
    assert page.locator("#ranking").text_content() == "3 > 2 > 1"
    assert page.locator("#rank-list .reply .text").all_text_contents() == [
        shown[2], shown[1], shown[0]]
    with page.expect_navigation():
        page.locator("#send-order").click()
    assert page.locator("#done").count() == 1 and events == {"dialogs": [], "outside": []}
    label = project.db.all_labels()[0]
    replies = label["payload"]["replies"]
    assert [replies[i] for i in label["answer"]["order"]] == [shown[2], shown[1], shown[0]]


def test_the_flags_page_by_keys_and_by_mouse(tmp_path, browser, served):
    run = synthetic_run(tmp_path / "run", 1)
    (run / "labels").mkdir()
    (run / "labels" / "tasks.yaml").write_text(
        "tasks:\n  - name: prompt-flags\n    kind: flags\n    flags: [harmful, violent, sexual]\n"
        "  - name: reply-flags\n    kind: flags\n    target: reply\n"
        "    flags: [harmful, not-english]\n")
    project = open_project(run, log=lambda m: None)
    origin = served(run)
    page = browser.new_page()
    events = watch(page, origin)
    page.goto(f"{origin}/start?token={project.db.add_labeller('pat')}")
    # The prompt's flags: no reply shown; 1 and 2 toggle harmful and violent on, a click takes
    # harmful off again, Escape leaves the box for the keys, 3 toggles sexual on.
    assert page.locator(".reply").count() == 0
    assert page.locator('input[name="flag"]').count() == 3
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.get_by_label("harmful").click()
    page.keyboard.press("Escape")
    page.keyboard.press("3")
    checked = page.locator('input[name="flag"]:checked')
    assert [checked.nth(i).get_attribute("value") for i in range(checked.count())] == [
        "violent", "sexual"]
    page.locator("#note").fill("asks for details")
    page.locator("#note").press("Escape")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    # The revision's flags: its text shown; nothing ticked is an answer too, sent by the button.
    assert page.locator(".reply .text").text_content() == "revision reply 0"
    with page.expect_navigation():
        page.locator("#send-flags").click()
    assert page.locator("#done").count() == 1 and events == {"dialogs": [], "outside": []}
    stored = {l["task"]: (l["answer"], l["note"]) for l in project.db.all_labels()}
    assert stored == {"prompt-flags": ({"flags": ["sexual", "violent"]}, "asks for details"),
                      "reply-flags": ({"flags": []}, None)}
