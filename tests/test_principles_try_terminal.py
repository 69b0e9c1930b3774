"""`principles try --watch` as a person uses it: in a real terminal (tmux), on the embedded
model. Save a change, save a broken file, fix it, save again and Ctrl-C while that trial runs;
read the screen as it is shown."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.vllm

PRINCIPLE = """\
name: brief
critique_request: Count the words of your last reply and say what could go.
revision_request: {revision}
checks:
  - kind: length_constraints:number_words
    relation: less than
    num_words: {words}
"""
BROKEN = "name: brief\ncritique_request: Count the words.\nrevision_requets: Shorter.\n"


class Terminal:
    """One tmux session on its own server socket, so no user's tmux is touched."""

    def __init__(self, tmux: str, socket: Path) -> None:
        self.tmux, self.socket = tmux, socket

    def run(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-S", str(self.socket), *args], check=True,
                              capture_output=True, text=True).stdout

    def screen(self) -> str:
        # -S -: the scrollback too, since a trial is longer than the window
        return self.run("capture-pane", "-p", "-J", "-S", "-", "-t", "try")

    def wait_for(self, text: str, count: int = 1, timeout: float = 60.0) -> str:
        """The screen, its words joined by single spaces (the command wraps at 80 columns),
        once `text` is on it `count` times."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = " ".join(self.screen().split())
            if screen.count(text) >= count:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} (x{count}) not on the screen after {timeout}s:\n"
                             f"{self.screen()}")


@pytest.fixture
def terminal(tmp_path):
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.skip("tmux not installed: `apt-get install -y tmux` (scripts/browser-setup.sh "
                    "installs it, and CI requires it)")
    term = Terminal(tmux, tmp_path / "tmux.sock")
    yield term
    subprocess.run([tmux, "-S", str(term.socket), "kill-server"], capture_output=True)


def test_watch_tries_each_save_shows_a_broken_one_and_stops_on_ctrl_c(terminal, tmp_path):
    principle = tmp_path / "brief.yaml"
    principle.write_text(PRINCIPLE.format(revision="Rewrite it in fewer than 40 words.",
                                          words=40))
    command = (f"cd {tmp_path} && env PYTHONPATH={REPO} {sys.executable} -m "
               f"selfalign.cli principles try brief.yaml --watch --limit 2 --max-tokens 32; "
               f"echo EXIT=$?")
    terminal.run("new-session", "-d", "-s", "try", "-x", "100", "-y", "50", command)
    terminal.run("set-option", "-t", "try", "remain-on-exit", "on")
    screen = terminal.wait_for("watching 1 file", timeout=400)
    assert "== 1/2 try-kill-process" in screen and "== 2/2 try-pipe-bomb" in screen
    assert "it must have fewer than 40" in screen or "fewer than 40 as asked" in screen

    principle.write_text(PRINCIPLE.format(revision="Rewrite it in fewer than 20 words.",
                                          words=20))
    screen = terminal.wait_for("watching 1 file", count=2, timeout=120)
    assert "saved: brief.yaml" in screen
    assert "it must have fewer than 20" in screen or "fewer than 20 as asked" in screen
    assert "after the save" in screen

    principle.write_text(BROKEN)
    screen = terminal.wait_for("watching 1 file", count=3, timeout=60)
    assert ("brief.yaml:3: revision_requets: unknown key `revision_requets` — did you mean "
            "`revision_request`?") in screen

    principle.write_text(PRINCIPLE.format(revision="Rewrite it in fewer than 30 words.",
                                          words=30))
    screen = terminal.wait_for("watching 1 file", count=4, timeout=120)
    assert "it must have fewer than 30" in screen or "fewer than 30 as asked" in screen

    # Ctrl-C while a trial runs: the terminal sends it to the engine's processes too
    principle.write_text(PRINCIPLE.format(revision="Rewrite it in fewer than 10 words.",
                                          words=10).replace("say what", "say which words"))
    terminal.wait_for("saved: brief.yaml", count=4, timeout=60)
    time.sleep(0.5)
    terminal.run("send-keys", "-t", "try", "C-c", "")
    screen = terminal.wait_for("EXIT=", timeout=60)
    assert "stopped EXIT=0" in screen
    assert "Traceback" not in screen and "Error" not in screen
