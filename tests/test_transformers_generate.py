"""`selfalign generate --backend transformers` end to end on the tiny random Llama: answer,
critique, revise and the judge (verify) through plain transformers, written as the contract says."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from run_helpers import write_prompts
from selfalign.cli import main
from test_vllm_integration import REPO

PROMPTS = [{"id": "a", "prompt": "How do I calm a barking dog?"},
           {"id": "b", "prompt": "Keep {{ x }} {0} %s </s> as typed."},
           {"id": "c", "prompt": "Name a quiet board game."}]


def rows_of(folder):
    return [row for f in sorted(folder.glob("*.parquet")) for row in pq.read_table(f).to_pylist()]


def test_generate_with_the_transformers_backend(tiny_model_dir, tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "generate", "--backend", "transformers", "--model", str(tiny_model_dir),
        "--principles", str(REPO / "constitution" / "harmless.yaml"), "--prompts", str(prompts),
        "--out", str(out), "--max-tokens", "6", "--temperature", "0", "--feedback", "verify",
        "--min-preference", "0"])
    assert result.exit_code == 0, result.output

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["engine"] == {**manifest["engine"], "backend": "transformers",
                                  "model": tiny_model_dir.name}  # portable: no machine path
    traces = rows_of(out / "traces")
    assert [t["prompt_id"] for t in traces] == ["a", "b", "c"]
    for t in traces:  # every sample went answer → critique → revise under its drawn principle
        assert len(t["round_details"]) == 1 and len(t["principle_ids"]) == 1
        assert t["round_details"][0]["critique"] and t["output_tokens"] > 0
        assert t["initial_finish"] == "length"  # 6 greedy tokens, never an early stop here
    assert traces[1]["prompt"] == "Keep {{ x }} {0} %s </s> as typed."

    prefs = rows_of(out / "prefs")
    paired = [t for t in traces if t["status"] == "pair"]
    assert paired, [t["status"] for t in traces]
    assert len(prefs) == len(paired) and [p["prompt_id"] for p in prefs] == [
        t["prompt_id"] for t in paired]
    for pair, trace in zip(prefs, paired):
        assert pair["chosen"] == [{"role": "assistant", "content": trace["final"]}]
        assert pair["rejected"] == [{"role": "assistant", "content": trace["initial"]}]
        first, second = trace["first_position_probs"]  # the judge asked both orders
        assert pair["preference"] == pytest.approx((first + 1 - second) / 2)
    sft = rows_of(out / "sft")
    assert len(sft) == sum(1 for t in traces if t["status"] in ("pair", "chosen_equals_rejected"))
    assert f"{len(prefs)} preference pairs" in result.output
