"""Runs to label: a real run on the scripted stand-in engine, judged, and a synthetic run folder
of any size written straight in the run's own parquet schemas (for the big tests and the
benchmark), plus the labelling project and its in-process client."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from selfalign.store.columns import PREFS_SCHEMA, TRACES_SCHEMA
from selfalign.store.layout import split_file_name

REPO = Path(__file__).resolve().parents[1]
SHARD_ROWS = 100_000
TASKS = """kind: label_tasks
instructions: instructions.md
seed: {seed}
tasks:
  - name: compare
    kind: compare
{extra}"""


def scripted_judged_run(root: Path, prompts: int = 6) -> Path:
    """A real run (runner, writers, assembly) on the scripted engine with `--feedback verify`;
    the judge gives P(A) = 0.7 whatever it sees, so its label of every pair is 0.5 and its
    first-position rate is 1."""
    from run_helpers import run_scripted, write_constitution, write_prompts
    from scripted_engine import ScriptedEngine

    manifest = write_constitution(root / "constitution")
    rows = [{"id": f"q{i}", "prompt": f"Question {i}: how do I bake bread?"}
            for i in range(prompts)]
    engine = ScriptedEngine(option_logprobs=lambda request: {"A": math.log(0.7),
                                                             "B": math.log(0.3)})
    run_scripted(manifest, write_prompts(root / "prompts.jsonl", rows), root / "run",
                 engine=engine, feedback="verify", min_preference=0.0)
    return root / "run"


def ranked_run(root: Path) -> Path:
    """A real `--feedback rank` run on the scripted engine: 2 prompts, 3 samples each."""
    from run_helpers import run_scripted, write_constitution, write_prompts
    from scripted_engine import ScriptedEngine

    engine = ScriptedEngine(vary_by_seed=True, option_logprobs=lambda r: {
        "A": math.log(0.6), "B": math.log(0.4)})
    prompts = write_prompts(root / "p.jsonl", [{"id": "q1", "prompt": "Name a colour."},
                                               {"id": "q2", "prompt": "Name a fruit."}])
    run_scripted(write_constitution(root / "c"), prompts, root / "run", engine=engine,
                 feedback="rank", samples=3, rounds=0)
    return root / "run"


def synthetic_run(out: Path, pairs: int, principles=("alpha", "beta"), splits=("train",),
                  text=lambda i, which: f"{which} reply {i}", judged: bool = True) -> Path:
    """A finished run folder of `pairs` pairs (one per prompt), cut into shards of 100,000."""
    per_split = {s: [i for i in range(pairs) if splits[i % len(splits)] == s] for s in splits}
    for split, indices in per_split.items():
        shards = max(1, math.ceil(len(indices) / SHARD_ROWS))
        for n in range(shards):
            chunk = indices[n * SHARD_ROWS:(n + 1) * SHARD_ROWS]
            _write(out / "prefs" / split_file_name(split, n, shards),
                   [_pref(i, split, principles, text, judged, splits) for i in chunk], PREFS_SCHEMA)
    every = list(range(pairs))
    shards = max(1, math.ceil(pairs / SHARD_ROWS))
    for n in range(shards):
        chunk = every[n * SHARD_ROWS:(n + 1) * SHARD_ROWS]
        _write(out / "traces" / split_file_name("traces", n, shards),
               [_trace(i, splits, principles, text, judged) for i in chunk], TRACES_SCHEMA)
    manifest = {"status": "complete", "started": time.time(), "finished": time.time(),
                "settings": {"principles": [], "feedback": "verify" if judged else None},
                "counts": {"pairs": {s: len(v) for s, v in per_split.items()}}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _pref(i, split, principles, text, judged, splits):
    principle = _principle(i, principles, splits)
    return {"prompt": [{"role": "user", "content": text(i, "prompt")}],
            "chosen": [{"role": "assistant", "content": text(i, "revision")}],
            "rejected": [{"role": "assistant", "content": text(i, "answer")}],
            "prompt_id": f"p{i}", "sample_index": 0, "split": split,
            "principle_ids": [principle], "rounds": 1, "model": "synthetic",
            "preference": 0.7 if judged else None,
            "judge_principle_ids": [principle] if judged else None,
            "position_consistent": True if judged else None}


def _principle(i, principles, splits):
    return principles[(i // len(splits)) % len(principles)]  # each split gets every principle


def _trace(i, splits, principles, text, judged):
    principle = _principle(i, principles, splits)
    return {"prompt_id": f"p{i}", "sample_index": 0, "split": splits[i % len(splits)],
            "principle_ids": [principle], "prompt": text(i, "prompt"),
            "initial": text(i, "answer"), "final": text(i, "revision"), "status": "pair",
            "round_details": [{"principle": principle, "critique": f"critique {i}",
                               "revision": text(i, "revision")}],
            "judge_principle_ids": [principle] if judged else None,
            # order 1 (revision in A): 0.9; order 2 (revision in B): 0.5 → label 0.7
            "first_position_probs": [0.9, 0.5] if judged else None}


def _write(path: Path, rows: list[dict], schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def write_tasks(run: Path, extra: str = "", seed: int = 0,
                instructions: str = "Pick the better reply.\n") -> Path:
    folder = run / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "instructions.md").write_text(instructions)
    path = folder / "tasks.yaml"
    path.write_text(TASKS.format(seed=seed, extra=extra))
    return path


def project_and_client(run: Path, log=lambda message: None):
    from starlette.testclient import TestClient

    from selfalign.label.app import create_app
    from selfalign.label.project import open_project

    project = open_project(run, log=log)
    return project, TestClient(create_app(project))


def put_answers(project, answers: dict[str, dict[str, object]]) -> None:
    """Labels straight into the database: labeller → prompt id → 0 (the revision), 1 (the
    first answer), "tie" or "skip", on the synthetic run's compare items."""
    for name, by_prompt in answers.items():
        labeller = project.db.labeller_named(name, create=True)
        for prompt_id, answer in by_prompt.items():
            stored = ({"skip": True} if answer == "skip" else {"tie": True} if answer == "tie"
                      else {"preferred": answer})
            project.db.import_label(labeller, project.db.item_by_key("compare", f"{prompt_id}/0"),
                                    stored, None, "test")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- the real server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, port: int, timeout: float = 60) -> subprocess.Popen:
    import httpx

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = run.parent / f"server-{port}.log"  # a file, never a pipe nobody reads
    with open(log, "ab") as sink:
        process = subprocess.Popen([sys.executable, "-m", "selfalign.cli", "label", "serve",
                                    str(run), "--port", str(port)], env=env, stdout=sink,
                                   stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
        if process.poll() is not None:
            raise AssertionError(log.read_text())
    process.kill()
    raise AssertionError(f"the server did not start in {timeout} s")
