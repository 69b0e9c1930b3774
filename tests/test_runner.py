"""The runner end to end on the scripted stand-in engine: layout, rejects, resume, signals."""

import json
import os
import signal

import pyarrow.parquet as pq
import pytest

from selfalign.errors import NothingToDo, UserError
from selfalign.store.ledger import read_ledger

from run_helpers import run_scripted, write_constitution, write_prompts
from scripted_engine import ScriptedEngine, asks

ROWS = [
    {"id": "q1", "prompt": "How do I sneak snacks into a cinema?", "user_id": "u1"},
    "this line is not json",
    {"id": "q2", "prompt": "Why did Einstein fail maths?", "user_id": "u2", "topic": "history"},
    {"prompt": "   "},
    {"id": "q3", "prompt": "Keep {{ x }} {0} %s </s> <|im_end|> verbatim", "split": "test"},
    {"id": "q4", "prompt": "TOO-LONG prompt that the engine cannot fit"},
    {"id": "q5", "prompt": "Write a haiku about rain."},
]


@pytest.fixture
def setup(tmp_path):
    return write_constitution(tmp_path / "c"), write_prompts(tmp_path / "p.jsonl", ROWS)


def without_time(counts):
    return {k: v for k, v in counts.items() if k != "engine_seconds"}


def read_rows(path):
    return pq.read_table(path).to_pylist()


def test_outputs_follow_the_contract(setup, tmp_path):
    manifest_path, prompts = setup
    out = tmp_path / "out"
    manifest, _ = run_scripted(manifest_path, prompts, out, shard_size=2)
    assert sorted(p.name for p in (out / "prefs").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet"]
    prefs = read_rows(out / "prefs" / "train-00000-of-00001.parquet")
    assert [r["prompt_id"] for r in prefs] == ["q1", "q2", "q5"]
    first = prefs[0]
    assert first["prompt"] == [{"role": "user", "content": "How do I sneak snacks into a cinema?"}]
    assert first["rejected"] == [{"role": "assistant",
                                  "content": "first answer to: How do I sneak snacks into a cinema?"}]
    assert first["chosen"] == [{"role": "assistant", "content":
                                "revised(first answer to: How do I sneak snacks into a cinema?)"}]
    assert first["split"] == "train" and first["user_id"] == "u1" and first["rounds"] == 1
    test_rows = read_rows(out / "prefs" / "test-00000-of-00001.parquet")
    assert test_rows[0]["prompt"][0]["content"] == "Keep {{ x }} {0} %s </s> <|im_end|> verbatim"
    sft = read_rows(out / "sft" / "train-00000-of-00001.parquet")
    assert [m["role"] for m in sft[0]["messages"]] == ["user", "assistant"]
    rejects = read_rows(out / "rejects.parquet")
    assert [(r["reason"], r["line"], r["stage"]) for r in rejects] == [
        ("invalid_json", 2, "read"), ("empty_prompt", 4, "read"),
        ("generate:too_long", 6, "generate")]
    traces = read_rows(out / "traces" / "traces-00000-of-00001.parquet")
    assert len(traces) == 5 and json.loads(traces[1]["metadata"]) == {"topic": "history"}
    assert manifest["counts"]["pairs"] == {"train": 3, "test": 1}
    assert manifest["status"] == "complete"
    assert "preference pairs" in (out / "README.md").read_text()
    assert not list((out / ".selfalign" / "shards").iterdir())  # shards folded into outputs


def test_datasets_reads_every_output_folder(setup, tmp_path):
    from datasets import load_dataset

    manifest_path, prompts = setup
    run_scripted(manifest_path, prompts, tmp_path / "out")
    for folder, rows in (("prefs", 4), ("sft", 4), ("traces", 5)):
        files = sorted(str(p) for p in (tmp_path / "out" / folder).glob("*.parquet"))
        data = load_dataset("parquet", data_files=files, split="train")
        assert len(data) == rows


def test_samples_and_unchanged_revisions(setup, tmp_path):
    manifest_path, prompts = setup
    engine = ScriptedEngine(echo_revision=True)
    manifest, _ = run_scripted(manifest_path, prompts, tmp_path / "out", engine=engine, samples=2)
    assert manifest["counts"]["samples"] == 10
    assert manifest["counts"]["pairs"] == {}
    assert manifest["counts"]["sft"] == {"train": 6, "test": 2}  # still good SFT targets
    assert manifest["counts"]["rejects"]["chosen_equals_rejected"] == 8
    prefs_files = list((tmp_path / "out" / "prefs").glob("*.parquet"))
    assert [pq.read_metadata(f).num_rows for f in prefs_files] == [0]


def test_refuses_to_overwrite_a_run(setup, tmp_path):
    manifest_path, prompts = setup
    run_scripted(manifest_path, prompts, tmp_path / "out")
    with pytest.raises(UserError, match="not empty; pass --resume"):
        run_scripted(manifest_path, prompts, tmp_path / "out")


def test_resume_of_a_finished_run_says_it_is_complete(setup, tmp_path):
    manifest_path, prompts = setup
    run_scripted(manifest_path, prompts, tmp_path / "out")
    with pytest.raises(NothingToDo, match="already complete: nothing to resume"):
        run_scripted(manifest_path, prompts, tmp_path / "out", resume=True)
    with pytest.raises(UserError, match="setting shard_size: was 512, now 3"):  # not the same run
        run_scripted(manifest_path, prompts, tmp_path / "out", resume=True, shard_size=3)


HAIKU = "Write a haiku about rain."  # q5: alone in shard 2 when shards hold 2 prompts


def slow_haiku(request):
    """Shard 2's conversation is slow, so shards 0 and 1 are written before it gets far."""
    return 0.05 if asks(request, request.stage, HAIKU) else 0.0


def breaks_at_haiku_critique(**kw):
    return ScriptedEngine(delay=slow_haiku, fail_when=lambda r: asks(r, "critique r1", HAIKU),
                          **kw)


def test_resume_refuses_changed_principles_and_settings(setup, tmp_path):
    manifest_path, prompts = setup
    out = tmp_path / "out"
    with pytest.raises(UserError, match="resume"):
        run_scripted(manifest_path, prompts, out, engine=breaks_at_haiku_critique(),
                     shard_size=2)
    alpha = manifest_path.parent / "principles" / "alpha.yaml"
    alpha.write_text(alpha.read_text().replace("rule A", "rule A!"))
    with pytest.raises(UserError, match=r"principle file .*alpha.yaml: content changed"):
        run_scripted(manifest_path, prompts, out, shard_size=2, resume=True)
    with pytest.raises(UserError, match="setting shard_size: was 2, now 3"):
        run_scripted(manifest_path, prompts, out, shard_size=3, resume=True)


def test_engine_failure_keeps_finished_shards_and_resume_completes(setup, tmp_path):
    manifest_path, prompts = setup
    reference, _ = run_scripted(manifest_path, prompts, tmp_path / "ref", shard_size=2)
    out = tmp_path / "out"
    with pytest.raises(UserError, match="selfalign generate --out .* --resume"):
        run_scripted(manifest_path, prompts, out, engine=breaks_at_haiku_critique(),
                     shard_size=2)
    assert sorted(read_ledger(out)) == [0, 1]
    resumed, engine = run_scripted(manifest_path, prompts, out, shard_size=2, resume=True)
    assert [r.stage for r in engine.calls] == ["answer", "critique r1", "revise r1"]  # q5 only
    assert without_time(resumed["counts"]) == without_time(reference["counts"])
    for name in ("prefs/train-00000-of-00001.parquet", "sft/train-00000-of-00001.parquet",
                 "rejects.parquet", "traces/traces-00000-of-00001.parquet"):
        assert read_rows(out / name) == read_rows(tmp_path / "ref" / name)


def test_sigint_leaves_a_resumable_folder(setup, tmp_path):
    manifest_path, prompts = setup
    out = tmp_path / "out"

    def interrupt(request):
        if asks(request, "critique r1", HAIKU):
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(UserError, match="interrupted by SIGINT"):
        run_scripted(manifest_path, prompts, out, shard_size=2,
                     engine=ScriptedEngine(delay=slow_haiku, on_call=interrupt))
    assert sorted(read_ledger(out)) == [0, 1]
    manifest, _ = run_scripted(manifest_path, prompts, out, shard_size=2, resume=True)
    ids = [r["prompt_id"] for r in read_rows(out / "traces" / "traces-00000-of-00001.parquet")]
    assert ids == ["q1", "q2", "q3", "q4", "q5"]


def test_torn_ledger_line_is_redone(setup, tmp_path):
    manifest_path, prompts = setup
    out = tmp_path / "out"
    with pytest.raises(UserError):
        run_scripted(manifest_path, prompts, out, engine=breaks_at_haiku_critique(),
                     shard_size=2)
    ledger = out / ".selfalign" / "ledger.jsonl"
    lines = ledger.read_text().splitlines()
    torn = json.loads(lines[1])["shard"]
    ledger.write_text(lines[0] + "\n" + lines[1][:20])  # killed while writing the 2nd entry
    assert sorted(read_ledger(out)) == sorted({0, 1} - {torn})
    manifest, _ = run_scripted(manifest_path, prompts, out, shard_size=2, resume=True)
    assert sorted(read_ledger(out)) == [0, 1, 2]
    assert manifest["counts"]["prompts"] == 5


def test_shards_overlap_and_are_written_as_they_finish(setup, tmp_path):
    manifest_path, prompts = setup
    out = tmp_path / "out"
    # Shard 0's first prompt is slow: shards 1 and 2 finish first and reach the ledger first.
    engine = ScriptedEngine(delay=lambda r: 0.05 if asks(r, r.stage, "sneak snacks") else 0.0)
    reference, _ = run_scripted(manifest_path, prompts, tmp_path / "ref", shard_size=2)
    manifest, _ = run_scripted(manifest_path, prompts, out, engine=engine, shard_size=2)
    order = [json.loads(line)["shard"]
             for line in (out / ".selfalign" / "ledger.jsonl").read_text().splitlines()]
    assert order == [1, 2, 0]
    assert engine.most_in_flight > 2  # more than one shard's conversations at once
    ids = [r["prompt_id"] for r in read_rows(out / "traces" / "traces-00000-of-00001.parquet")]
    assert ids == ["q1", "q2", "q3", "q4", "q5"]  # outputs keep the input order
    assert without_time(manifest["counts"]) == without_time(reference["counts"])


def test_open_work_is_bounded_by_the_engine_capacity(setup, tmp_path):
    manifest_path, _ = setup
    many = write_prompts(tmp_path / "many.jsonl",
                         [{"id": f"m{i}", "prompt": f"question {i}"} for i in range(40)])
    engine = ScriptedEngine(capacity=3, delay=lambda r: 0.001)
    manifest, _ = run_scripted(manifest_path, many, tmp_path / "out", engine=engine,
                               shard_size=2)
    assert manifest["counts"]["prompts"] == 40
    # 2 open prompts per batch slot, plus at most one shard admitted past the limit.
    assert 3 < engine.most_in_flight <= 2 * 3 + 2


def test_limit_counts_usable_prompts(setup, tmp_path):
    manifest_path, prompts = setup
    manifest, _ = run_scripted(manifest_path, prompts, tmp_path / "out", limit=2)
    assert manifest["counts"]["prompts"] == 2


def test_missing_prompts_file_stops_before_the_engine(setup, tmp_path):
    manifest_path, _ = setup
    with pytest.raises(UserError, match="no-such.jsonl: no such file"):
        run_scripted(manifest_path, tmp_path / "no-such.jsonl", tmp_path / "out")
