"""How long an author waits: `principles try --watch`, from a save to the last line shown.

Starts the command as a person would (a subprocess; its stdout read line by line), on the
embedded model unless --model, with 4 sample prompts at 96 tokens, under a copy of
principles/checked/brief.yaml. Then saves four edits, one at a time, each waiting for the
trial to be shown:

  revision   the revision request reworded: answers and critiques are asked again identically
             (answered from earlier in the session), the revisions are new
  critique   the critique request reworded: critiques and revisions are new
  check      only the check's bound changed: every request but a retry's is the same
  touch      the file saved unchanged: nothing is new

Reports the engine start, the first trial (nothing to reuse) and, per edit, the time from the
write to the line "shown ... after the save" (the last line of a trial), with the load.

    .venv/bin/python benchmarks/bench_try_watch.py
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRINCIPLE = (REPO / "principles" / "checked" / "brief.yaml").read_text()
EDITS = {
    "revision": lambda text: text.replace("keeping only what the user needs most",
                                          "keeping the one thing the user needs most"),
    "critique": lambda text: text.replace("Count the words of your last reply.",
                                          "Count the words of your last reply, one by one."),
    "check": lambda text: text.replace("num_words: 40", "num_words: 30"),
    "touch": lambda text: text,
}


def read_lines(stream, into: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        into.put((time.time(), line.rstrip("\n")))
    into.put((time.time(), None))


def wait_for(lines: queue.Queue, pattern: str, seen: list[str], timeout: float) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            at, line = lines.get(timeout=max(0.0, deadline - time.time()))
        except queue.Empty:
            break
        if line is None:
            raise SystemExit("the command ended:\n" + "\n".join(seen[-30:]))
        seen.append(line)
        if re.search(pattern, line):
            return at
    raise SystemExit(f"{pattern!r} not printed within {timeout}s:\n" + "\n".join(seen[-30:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--limit", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-try-"))
    principle = folder / "brief.yaml"
    principle.write_text(PRINCIPLE)
    command = [sys.executable, "-m", "selfalign.cli", "principles", "try", "brief.yaml",
               "--watch", "--max-tokens", str(args.max_tokens), "--limit", str(args.limit)]
    command += ["--model", args.model] if args.model else []
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    load_before = os.getloadavg()
    started = time.time()
    process = subprocess.Popen(command, cwd=folder, env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    seen: list[str] = []
    ready = wait_for(lines, r"^engine: .* ready in", seen, 600)
    shown = wait_for(lines, r"^watching", seen, 600)
    figures = {"engine_start_s": round(ready - started, 1),
               "first_trial_s": round(shown - ready, 1), "edits": {}}
    text = PRINCIPLE
    for name, edit in EDITS.items():
        time.sleep(1.0)  # a distinct modification time
        text = edit(text)
        saved = time.time()
        principle.write_text(text)
        last = wait_for(lines, r"after the save$", seen, 300)
        trial = next(line for line in reversed(seen) if "requests" in line)
        figures["edits"][name] = {"save_to_last_line_s": round(last - saved, 2),
                                  "trial": trial.strip()}
        wait_for(lines, r"^watching", seen, 60)
    process.send_signal(signal.SIGINT)
    figures["exit_status"] = process.wait(timeout=60)
    figures["load_before"] = [round(x, 2) for x in load_before]
    figures["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print("\n".join(seen))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
