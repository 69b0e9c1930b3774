"""Nothing lost, nothing silently wrong: checksummed shards on resume and assembly, the output
folder's lock, write errors (a full disk), runs that make nothing, and `selfalign verify`.

All on the scripted stand-in engine; damage is done to real parquet files on disk.
"""

import errno
import json
import os
import re
import shutil
import socket
import subprocess

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import selfalign.atomic
from selfalign.cli import main
from selfalign.errors import UserError
from selfalign.generate.plan import plan_run
from selfalign.generate.run import run_generate
from selfalign.generate.settings import GenerateSettings
from selfalign.store.layout import lock_path, shard_dir, state_dir
from selfalign.store.ledger import append_ledger, read_ledger
from selfalign.store.shard_files import recorded_file

from run_helpers import run_scripted, write_constitution, write_prompts
from scripted_engine import ScriptedEngine, asks

# shard_size=1: shard i holds prompt i; the bad line is read with (and recorded in) shard 1.
ROWS = [
    {"id": "q1", "prompt": "Alpha question"},
    "this line is not json",
    {"id": "q2", "prompt": "Bravo question", "split": "test"},
    {"id": "q3", "prompt": "Charlie question"},
    {"id": "q4", "prompt": "Delta question"},
    {"id": "q5", "prompt": "Echo question"},
]
FINAL = ("prefs/train-00000-of-00001.parquet", "prefs/test-00000-of-00001.parquet",
         "sft/train-00000-of-00001.parquet", "sft/test-00000-of-00001.parquet",
         "traces/traces-00000-of-00001.parquet", "rejects.parquet")


@pytest.fixture
def setup(tmp_path):
    return write_constitution(tmp_path / "c"), write_prompts(tmp_path / "p.jsonl", ROWS)


@pytest.fixture
def reference(setup, tmp_path):
    """The same run, uninterrupted: what every repaired run must equal."""
    manifest, _ = run_scripted(*setup, tmp_path / "ref", shard_size=1)
    return manifest, tmp_path / "ref"


def breaks_at_echo(**kw):
    """Shard 4 (Echo) is slow and then fails: shards 0-3 are recorded, shard 4 is not."""
    return ScriptedEngine(delay=lambda r: 0.05 if asks(r, r.stage, "Echo") else 0.0,
                          fail_when=lambda r: asks(r, "critique r1", "Echo"), **kw)


def interrupted(setup, out):
    with pytest.raises(UserError, match="--resume"):
        run_scripted(*setup, out, engine=breaks_at_echo(), shard_size=1)
    assert sorted(read_ledger(out)) == [0, 1, 2, 3]


def shard_file(out, index, kind):
    """The shard file its ledger entry names (each attempt writes under names of its own)."""
    return recorded_file(out, read_ledger(out)[index], kind)


def answered(engine):
    return sorted(r.messages[-1]["content"] for r in engine.calls if r.stage == "answer")


def assert_same_outputs(out, ref):
    (manifest, ref_out) = ref
    for name in FINAL:
        assert pq.read_table(out / name).to_pylist() == pq.read_table(ref_out / name).to_pylist()
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert {k: v for k, v in counts.items() if k != "engine_seconds"} == \
        {k: v for k, v in manifest["counts"].items() if k != "engine_seconds"}


def no_temporary_files(out):
    return [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith("final-")]


# -- checksummed shards ------------------------------------------------------------------------

def test_ledger_records_size_and_sha256_of_every_shard_file(setup, tmp_path):
    out = tmp_path / "out"
    interrupted(setup, out)
    entry = read_ledger(out)[1]
    assert sorted(entry["files"]) == ["prefs", "rejects", "sft", "traces"]
    import hashlib
    data = shard_file(out, 1, "rejects").read_bytes()
    assert entry["files"]["rejects"] == {"name": f"00001-{entry['attempt']}-rejects.parquet",
                                         "bytes": len(data),
                                         "sha256": hashlib.sha256(data).hexdigest()}


def flip_one_byte(path):
    """The same number of bytes, one of them different: only the sha256 can tell."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_resume_redoes_exactly_the_damaged_shards(setup, tmp_path, reference):
    out = tmp_path / "out"
    interrupted(setup, out)
    traces, prefs, sft = shard_file(out, 0, "traces"), shard_file(out, 1, "prefs"), \
        shard_file(out, 2, "sft")
    traces.write_bytes(traces.read_bytes()[:100])  # truncated
    flip_one_byte(prefs)
    shard_file(out, 2, "sft").unlink()
    said = []
    _, engine = run_scripted(*setup, out, shard_size=1, resume=True, log=said.append)
    assert answered(engine) == ["Alpha question", "Bravo question", "Charlie question",
                                "Echo question"]  # shards 0, 1, 2 redone, 4 done; 3 kept
    redone = [line for line in said if "will be redone" in line]
    assert len(redone) == 3
    assert redone[0].startswith(f"shard 0 will be redone: {traces.name} truncated (100 of ")
    assert redone[1] == (f"shard 1 will be redone: {prefs.name} content changed (same "
                         "size, sha256 differs)")
    assert redone[2] == f"shard 2 will be redone: {sft.name} missing"
    assert_same_outputs(out, reference)


@pytest.mark.parametrize("when", ["before assembly", "while reading"])
def test_assembly_refuses_a_damaged_shard_and_resume_repairs_it(setup, tmp_path, reference,
                                                                 monkeypatch, when):
    out = tmp_path / "out"
    interrupted(setup, out)
    if when == "while reading":  # damage after the check of all shards: the read checks too
        import selfalign.store.assemble as writers
        monkeypatch.setattr(writers, "_check_shards", lambda out, shards: None)
    damaged = shard_file(out, 1, "prefs")
    recorded = read_ledger(out)[1]["files"]["prefs"]["bytes"]

    def damage_after_the_resume_check(request):
        if damaged.stat().st_size == recorded:
            damaged.write_bytes(damaged.read_bytes()[:-10])

    with pytest.raises(UserError) as refused:
        run_scripted(*setup, out, shard_size=1, resume=True,
                     engine=ScriptedEngine(on_call=damage_after_the_resume_check))
    message = str(refused.value)
    assert f"shard file {damaged} is truncated ({recorded - 10} of {recorded} bytes)" in message
    assert f"selfalign generate --out {out} --resume" in message
    assert not (out / "prefs").exists() and not no_temporary_files(out)
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    said = []
    _, engine = run_scripted(*setup, out, shard_size=1, resume=True, log=said.append)
    assert answered(engine) == ["Bravo question"]
    assert [line for line in said if "will be redone" in line] == [
        f"shard 1 will be redone: {damaged.name} truncated ({recorded - 10} of {recorded} "
        f"bytes)"]
    assert_same_outputs(out, reference)


# -- write errors (a full disk) ----------------------------------------------------------------

def full_disk_at(monkeypatch, pattern):
    """Every atomic write passes selfalign.atomic.sync_file: fail there for matching paths."""
    real = selfalign.atomic.sync_file

    def sync_file(path):
        if re.search(pattern, str(path)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path)

    monkeypatch.setattr(selfalign.atomic, "sync_file", sync_file)


def test_full_disk_at_a_shard_write_stops_cleanly_and_resume_completes(
        setup, tmp_path, reference, monkeypatch):
    out = tmp_path / "out"
    full_disk_at(monkeypatch, r"/\.00002-[0-9a-f]+-prefs\.parquet\.")
    with pytest.raises(UserError) as stopped:
        run_scripted(*setup, out, shard_size=1)
    message = str(stopped.value)
    assert "could not write shard 2" in message and "No space left on device" in message
    assert f"selfalign generate --out {out} --resume" in message
    assert not list(shard_dir(out).glob("00002-*-prefs.parquet")) and not no_temporary_files(out)
    lines = (state_dir(out) / "ledger.jsonl").read_text().splitlines()
    assert 2 not in [json.loads(line)["shard"] for line in lines]  # every line parses
    assert not lock_path(out).exists()  # released on the error too
    monkeypatch.undo()
    run_scripted(*setup, out, shard_size=1, resume=True)
    assert_same_outputs(out, reference)


@pytest.mark.parametrize("fragment", ["final-prefs", r"\.rejects\.parquet\."])
def test_full_disk_at_assembly_stops_cleanly_and_resume_completes(
        setup, tmp_path, reference, monkeypatch, fragment):
    out = tmp_path / "out"
    full_disk_at(monkeypatch, fragment)
    with pytest.raises(UserError, match="could not write the final outputs .*No space left"):
        run_scripted(*setup, out, shard_size=1)
    assert not (out / "rejects.parquet").exists() and not no_temporary_files(out)
    if fragment == "final-prefs":
        assert not (out / "prefs").exists()
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    monkeypatch.undo()
    made = []
    settings = GenerateSettings(principles=[str(setup[0])], prompts=[str(setup[1])],
                                out=str(out), shard_size=1, resume=True)
    plan = plan_run(settings, resolve_model=lambda model: "scripted-model")
    run_generate(plan, lambda s, m: made.append(m) or ScriptedEngine(), log=lambda m: None)
    assert made == []  # every shard was recorded and intact: no engine needed to finish
    assert_same_outputs(out, reference)


def test_a_failed_ledger_append_leaves_the_ledger_as_it_was(tmp_path, monkeypatch):
    state_dir(tmp_path).mkdir()
    append_ledger(tmp_path, {"shard": 0, "prompts": 1})
    before = (state_dir(tmp_path) / "ledger.jsonl").read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError):
        append_ledger(tmp_path, {"shard": 1, "prompts": 1})
    monkeypatch.undo()
    assert (state_dir(tmp_path) / "ledger.jsonl").read_bytes() == before
    assert sorted(read_ledger(tmp_path)) == [0]


# -- the lock on --out -------------------------------------------------------------------------

def test_a_second_run_on_the_same_out_is_refused_naming_the_holder(setup, tmp_path):
    out = tmp_path / "out"
    refusals = []

    def second_run(request):
        if refusals:
            return
        for resume in (False, True):
            try:
                run_scripted(*setup, out, shard_size=1, resume=resume)
                refusals.append(None)
            except UserError as err:
                refusals.append(str(err))

    run_scripted(*setup, out, shard_size=1, engine=ScriptedEngine(on_call=second_run))
    holder = f"process {os.getpid()} on host {socket.gethostname()}"
    assert len(refusals) == 2
    for refusal in refusals:
        assert refusal is not None and "being written by another run" in refusal
        assert holder in refusal
    assert not lock_path(out).exists()


def test_a_stale_lock_is_taken_over_with_a_message(setup, tmp_path, reference):
    out = tmp_path / "out"
    interrupted(setup, out)
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock_path(out).write_text(json.dumps({"host": socket.gethostname(), "pid": gone.pid}))
    said = []
    run_scripted(*setup, out, shard_size=1, resume=True, log=said.append)
    assert f"taking over the lock of {out}: its holder, process {gone.pid} on host " \
           f"{socket.gethostname()}, is gone" in said
    assert not lock_path(out).exists()
    assert_same_outputs(out, reference)


def test_a_lock_held_on_another_host_is_refused_with_how_to_clear_it(setup, tmp_path):
    out = tmp_path / "out"
    interrupted(setup, out)
    lock_path(out).write_text(json.dumps({"host": "node-7", "pid": 4242}))
    with pytest.raises(UserError, match=r"locked by process 4242 on host node-7, which cannot "
                                        r"be checked .*delete .*\.selfalign/lock"):
        run_scripted(*setup, out, shard_size=1, resume=True)


# -- runs that make nothing fail, before any model loads --------------------------------------

def run_without_engine(setup, prompts, out):
    made = []
    settings = GenerateSettings(principles=[str(setup[0])], prompts=[str(prompts)], out=str(out))
    plan = plan_run(settings, resolve_model=lambda model: "scripted-model")
    with pytest.raises(UserError) as failed:
        run_generate(plan, lambda s, m: made.append(m) or ScriptedEngine(), log=lambda m: None)
    assert made == []  # the engine factory was never called
    return str(failed.value)


def test_a_binary_prompts_file_fails_before_any_model_loads(setup, tmp_path):
    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(b"\x89PNG\r\x00\x01\xff\xfe binary\n")
    message = run_without_engine(setup, binary, tmp_path / "out")
    assert f"no usable prompt in --prompts {binary}: 1 row(s) read, every one rejected" in message
    assert f"undecodable: 1 (at {binary} line 1)" in message
    assert str(tmp_path / "out" / "rejects.parquet") in message
    assert pq.read_table(tmp_path / "out" / "rejects.parquet").column("reason").to_pylist() == [
        "undecodable"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "empty" and manifest["counts"]["rejects"] == {"undecodable": 1}
    result = verify(tmp_path / "out")
    assert result.exit_code == 1
    assert "PROBLEM: the run found no usable prompt and produced no data" in result.output


def test_an_all_rejected_jsonl_fails_with_reasons_and_places(setup, tmp_path):
    prompts = write_prompts(tmp_path / "bad.jsonl", ["not json", {"prompt": "  "}, "{also bad"])
    message = run_without_engine(setup, prompts, tmp_path / "out")
    assert f"invalid_json: 2 (at {prompts} line 1, {prompts} line 3)" in message
    assert f"empty_prompt: 1 (at {prompts} line 2)" in message


def test_cli_exits_non_zero_on_an_empty_run_without_loading_the_model(setup, tmp_path,
                                                                       monkeypatch):
    import selfalign.engine

    def no_engine(settings, model):
        raise AssertionError("the engine was started")

    monkeypatch.setattr(selfalign.engine, "make_engine", no_engine)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(b"\x00\xff\xfe\n")
    result = CliRunner().invoke(main, ["generate", "--principles", str(setup[0]), "--prompts",
                                       str(binary), "--out", str(tmp_path / "out"), "--model",
                                       str(model)])
    assert result.exit_code == 2, result.output
    assert "no usable prompt" in result.output and "undecodable: 1" in result.output


def test_prompts_prepare_with_nothing_kept_exits_non_zero(tmp_path):
    prompts = write_prompts(tmp_path / "in.jsonl", [{"prompt": " "}, {"prompt": ""}])
    result = CliRunner().invoke(main, ["prompts", "prepare", str(prompts), "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"nothing kept from {prompts}: 2 row(s) read, every one rejected" in result.output
    assert f"empty_prompt: 2 (at {prompts} line 1, {prompts} line 2)" in result.output
    assert pq.read_metadata(tmp_path / "out" / "rejects.parquet").num_rows == 2


# -- selfalign verify --------------------------------------------------------------------------

def verify(out):
    return CliRunner().invoke(main, ["verify", str(out)])


def test_verify_a_good_folder(reference):
    manifest, out = reference
    assert set(manifest["files"]) == {*FINAL, "README.md"}
    assert manifest["files"]["prefs/train-00000-of-00001.parquet"]["rows"] == 4
    result = verify(out)
    assert result.exit_code == 0, result.output
    assert "checked: 7 final files against the size and sha256 in manifest.json" in result.output
    assert ("row counts equal the ledger's sums (prefs/test 1, prefs/train 4, rejects 1, "
            "sft/test 1, sft/train 4, traces/traces 5)") in result.output
    assert result.output.rstrip().endswith("ok: everything checked holds")


def test_verify_a_damaged_folder_names_the_file(reference):
    _, out = reference
    damaged = out / "sft" / "train-00000-of-00001.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-5])
    shutil.copy(out / "prefs" / "test-00000-of-00001.parquet", out / "prefs" / "extra.parquet")
    flip_one_byte(out / "prefs" / "train-00000-of-00001.parquet")
    result = verify(out)
    assert result.exit_code == 1
    assert "PROBLEM: sft/train-00000-of-00001.parquet: truncated" in result.output
    assert ("PROBLEM: prefs/train-00000-of-00001.parquet: content changed (same size, sha256 "
            "differs)") in result.output
    assert "PROBLEM: prefs/extra.parquet: not written by this run" in result.output


def test_verify_without_the_state_folder_says_what_it_cannot_check(reference, tmp_path):
    _, out = reference
    received = tmp_path / "received"
    shutil.copytree(out, received, ignore=shutil.ignore_patterns(".selfalign"))
    result = verify(received)
    assert result.exit_code == 0, result.output
    assert "cannot check: .selfalign/ (the run's ledger of shards) is absent" in result.output
    assert "row counts equal the manifest's counts" in result.output
    rows = pq.read_table(received / "traces" / "traces-00000-of-00001.parquet")
    pq.write_table(rows.slice(0, 4), received / "traces" / "traces-00000-of-00001.parquet")
    result = verify(received)
    assert result.exit_code == 1
    assert "traces/traces-00000-of-00001.parquet: size changed" in result.output \
        or "traces/traces-00000-of-00001.parquet: truncated" in result.output
    assert "PROBLEM: traces/traces: 4 rows, 5 in the manifest's counts" in result.output


def test_verify_an_interrupted_folder_checks_its_shards(setup, tmp_path):
    out = tmp_path / "out"
    interrupted(setup, out)
    result = verify(out)
    assert result.exit_code == 3, result.output  # intact, unfinished: not data to train on
    assert result.output.rstrip().endswith("unfinished: what is recorded holds, but the run has "
                                           "not written its data yet")
    assert "checked: 4 recorded shards (4 prompts) against the size and sha256 in the ledger" \
        in result.output
    assert "cannot check: final files: the run is not finished" in result.output
    lost = shard_file(out, 3, "traces")
    lost.unlink()
    result = verify(out)
    assert result.exit_code == 1
    assert f"PROBLEM: shard 3: .selfalign/shards/{lost.name} missing" in result.output


def test_verify_a_folder_without_a_manifest_is_a_clean_error(tmp_path):
    (tmp_path / "x").mkdir()
    result = verify(tmp_path / "x")
    assert result.exit_code == 2 and "holds no manifest.json" in result.output


def test_splits_over_several_files_are_each_written_whole_and_recorded(setup, tmp_path,
                                                                       monkeypatch):
    import selfalign.store.assemble as writers

    monkeypatch.setattr(writers, "ROWS_PER_FILE", 3)
    out = tmp_path / "out"
    manifest, _ = run_scripted(*setup, out, shard_size=2)
    names = sorted(p.name for p in (out / "traces").iterdir())
    assert names == ["traces-00000-of-00002.parquet", "traces-00001-of-00002.parquet"]
    rows = [manifest["files"][f"traces/{name}"]["rows"] for name in names]
    assert rows == [3, 2]
    ids = [r["prompt_id"] for name in names for r in pq.read_table(out / "traces" / name)
           .to_pylist()]
    assert ids == ["q1", "q2", "q3", "q4", "q5"]
    assert not no_temporary_files(out)
    assert verify(out).exit_code == 0
