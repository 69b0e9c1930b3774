"""What --resume refuses (an input file that changed, a run that read stdin), and SIGTERM (what a
scheduler sends before it preempts a job) leaving a folder that resumes to the same data."""

from __future__ import annotations

import io
import json
import os
import signal
import sys

import pyarrow.parquet as pq
import pytest

from run_helpers import run_scripted, write_constitution, write_prompts
from scripted_engine import ScriptedEngine, asks
from selfalign.errors import UserError
from selfalign.store.ledger import read_ledger

PROMPTS = [{"id": f"q{i}", "prompt": f"Question {i}: why is the sea salty?"} for i in range(5)]
LAST = PROMPTS[-1]["prompt"]  # alone in shard 2 when shards hold 2 prompts


def slow_last(request) -> float:
    """The last prompt's conversation is slow, so shards 0 and 1 are written before it ends."""
    return 0.05 if asks(request, request.stage, LAST) else 0.0


def breaks_at_last_critique() -> ScriptedEngine:
    return ScriptedEngine(delay=slow_last, fail_when=lambda r: asks(r, "critique r1", LAST))


@pytest.fixture
def manifest(tmp_path):
    return write_constitution(tmp_path / "c")


def rows(path):
    return pq.read_table(path).to_pylist()


def test_resume_refuses_an_input_file_that_changed(manifest, tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS)
    out = tmp_path / "out"
    with pytest.raises(UserError, match="resume"):
        run_scripted(manifest, prompts, out, engine=breaks_at_last_critique(), shard_size=2)
    write_prompts(prompts, PROMPTS + [{"id": "late", "prompt": "Added after the start."}])
    with pytest.raises(UserError) as refused:
        run_scripted(manifest, prompts, out, shard_size=2, resume=True)
    assert str(refused.value) == (
        f"cannot resume {out}: the run started with other settings or files:\n"
        f"  input {prompts}: content changed (sha256 differs)\n"
        f"Restore them, or start a new run in another --out folder.")

    other = write_prompts(tmp_path / "other.jsonl", PROMPTS)
    with pytest.raises(UserError) as refused:
        run_scripted(manifest, other, out, shard_size=2, resume=True)
    assert f"  input {prompts}: no longer given\n" in str(refused.value)
    assert f"  input {other}: new since the run started\n" in str(refused.value)
    assert sorted(read_ledger(out)) == [0, 1]  # the refusals touched nothing


def jsonl(rows_: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows_)


def test_resume_refuses_a_run_that_read_stdin(manifest, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "stdin", io.StringIO(jsonl(PROMPTS)))
    with pytest.raises(UserError, match="resume"):
        run_scripted(manifest, "-", out, engine=breaks_at_last_critique(), shard_size=2)
    assert sorted(read_ledger(out)) == [0, 1]  # stdin was read: the first shards were written
    monkeypatch.setattr(sys, "stdin", io.StringIO(jsonl(PROMPTS)))
    with pytest.raises(UserError) as refused:
        run_scripted(manifest, "-", out, shard_size=2, resume=True)
    assert str(refused.value) == ("cannot resume a run that read prompts from stdin: its input "
                                  "cannot be checked or read again; save the prompts to a file")


def test_sigterm_leaves_a_folder_that_resumes_to_the_uninterrupted_data(manifest, tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS)
    out, reference = tmp_path / "out", tmp_path / "reference"

    def terminate(request):
        if asks(request, "critique r1", LAST):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(UserError) as stopped:
        run_scripted(manifest, prompts, out, shard_size=2,
                     engine=ScriptedEngine(delay=slow_last, on_call=terminate))
    assert str(stopped.value) == (f"interrupted by SIGTERM; finished shards are kept in {out}. "
                                  f"Resume with:\n  selfalign generate --out {out} --resume")
    assert sorted(read_ledger(out)) == [0, 1]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler was taken down

    resumed, engine = run_scripted(manifest, prompts, out, shard_size=2, resume=True)
    assert [r.stage for r in engine.calls] == ["answer", "critique r1", "revise r1"]  # q4 only
    run_scripted(manifest, prompts, reference, shard_size=2)
    for name in ("traces/traces-00000-of-00001.parquet", "prefs/train-00000-of-00001.parquet",
                 "sft/train-00000-of-00001.parquet"):
        got, expected = rows(out / name), rows(reference / name)
        assert len(got) == len(expected) == len(PROMPTS)
        assert got == expected
    assert resumed["status"] == "complete"
