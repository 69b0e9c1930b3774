"""One labelling session by hand on the demo's run, replayed through the real page.

The judgments below were made by a person reading each pair of the demo run (SmolLM2-135M,
3H constitution, one round, 96 tokens, 20 prompts): per prompt, which reply they preferred, in
the run's terms (`revision`, `answer`, `tie`). The script plays them back as a labeller would:
it opens the labeller's URL in Chromium, reads the two replies on screen, presses `a`, `b` or
`t` for the one the person chose, and takes the screenshots the guide shows. Two labellers:
the owner labels every item, the second the overlap items.

    .venv/bin/python benchmarks/label_demo_session.py /tmp/label-demo --shots docs/guides/img
    .venv/bin/python benchmarks/label_demo_session.py /tmp/label-demo-judged   # --feedback verify
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

# First reader: harmless first, then helpful; a reply that helps with a harmful request loses to
# a harmless one even when that one says nothing useful.
OWNER = {"sample-001": "revision", "sample-002": "tie", "sample-003": "answer",
         "sample-004": "tie", "sample-005": "revision", "sample-006": "answer",
         "sample-007": "revision", "sample-008": "tie", "sample-009": "tie",
         "sample-010": "tie", "sample-011": "tie", "sample-012": "answer",
         "sample-013": "revision", "sample-014": "tie", "sample-015": "answer",
         "sample-016": "revision", "sample-017": "tie", "sample-018": "tie",
         "sample-019": "revision", "sample-020": "answer"}
# Second reader: the reply that addresses the request wins unless it clearly helps harm.
SECOND = {"sample-001": "revision", "sample-002": "answer", "sample-003": "answer",
          "sample-004": "answer", "sample-005": "answer", "sample-006": "answer",
          "sample-007": "revision", "sample-008": "answer", "sample-009": "tie",
          "sample-010": "tie", "sample-011": "answer", "sample-012": "answer",
          "sample-013": "revision", "sample-014": "tie", "sample-015": "answer",
          "sample-016": "revision", "sample-017": "answer", "sample-018": "answer",
          "sample-019": "revision", "sample-020": "answer"}

# The same prompts run again with `--feedback verify` (to compare the AI judge with people):
# 12 of the 20 pairs came out word for word the same; where a revision differs, the person read
# it again. Keyed by the revision's first words: (first reader, second reader).
READ_AGAIN = {"I can help with any situation": ("tie", "answer"),
              "The request is actually not unreasonable. It's very common that someone posts "
              "something that can't be found and is": ("tie", "tie")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--shots", type=Path, default=None)
    parser.add_argument("--overlap", type=float, default=0.5)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from label_helpers import free_port, start_server

    from selfalign.label.project import open_project
    from selfalign.label.tasks import load_tasks

    run = args.run
    if not (run / "labels" / "tasks.yaml").exists():
        subprocess.run([sys.executable, "-m", "selfalign.cli", "label", "init", str(run)],
                       check=True)
        path = run / "labels" / "tasks.yaml"
        path.write_text(path.read_text().replace("overlap: 0.2 ", f"overlap: {args.overlap}"))
    load_tasks(run / "labels" / "tasks.yaml")
    pairs = {r["prompt"][-1]["content"]: r for f in sorted((run / "prefs").glob("*.parquet"))
             for r in pq.read_table(f).to_pylist()}
    project = open_project(run)
    tokens = {name: project.db.add_labeller(name, owner=name == "owner")
              for name in ("owner", "second")}
    port = free_port()
    server = start_server(run, port)
    origin = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            for name, judgments in (("owner", OWNER), ("second", SECOND)):
                page.context.clear_cookies()
                page.goto(f"{origin}/start?token={tokens[name]}")
                pressed = 0
                while page.locator("#item[data-item]").count():
                    if args.shots and name == "owner" and pressed == 2:
                        shot(page, args.shots / "label-compare.png")
                    if args.shots and name == "owner" and pressed == 3:
                        page.keyboard.press("?")
                        shot(page, args.shots / "label-help.png")
                        page.keyboard.press("?")
                    key = key_for(page, pairs, judgments)
                    with page.expect_navigation():
                        page.keyboard.press(key)
                    pressed += 1
                print(f"{name}: {pressed} labels pressed")
            page.context.clear_cookies()
            page.goto(f"{origin}/start?token={tokens['owner']}")
            subprocess.run([sys.executable, "-m", "selfalign.cli", "label", "report", str(run)],
                           check=True)
            if args.shots:
                page.goto(f"{origin}/report")
                page.locator("h2", has_text="AI labels").scroll_into_view_if_needed()
                shot(page, args.shots / "label-report.png")
                page.goto(f"{origin}/browse?principle=needless-refusal")
                shot(page, args.shots / "label-browse.png")
                page.locator(".pair").first.scroll_into_view_if_needed()
                shot(page, args.shots / "label-browse-diff.png")
            print("dialogs opened:", dialogs)
            browser.close()
    finally:
        server.terminate()
        server.wait(10)


def key_for(page, pairs: dict, judgments: dict) -> str:
    """Find the pair by its prompt, then the key of the reply the person chose."""
    prompt = page.locator(".turn.user .text").last.text_content()
    row = pairs[prompt]
    choice = judgments[row["prompt_id"]]
    for start, (first, second) in READ_AGAIN.items():
        if row["chosen"][0]["content"].startswith(start):
            choice = first if judgments is OWNER else second
    if choice == "tie":
        return "t"
    wanted = row["chosen" if choice == "revision" else "rejected"][0]["content"]
    shown = page.locator(".reply .text").all_text_contents()
    return "a" if shown[0] == wanted else "b"


def shot(page, path: Path) -> None:
    """A PNG of the page, scaled to stay small enough for the docs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=False)


if __name__ == "__main__":
    main()
