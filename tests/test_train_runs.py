"""A few real TRL steps on a tiny random Llama: SFT, DPO and DPO with LoRA, through selfalign.train."""

import json

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

from selfalign.cli import main
from selfalign.train.config import TrainSettings
from selfalign.train.data import DataSource
from selfalign.train.run import RECORD_NAME, build_trainer, prepare, train
from premise import TEST_SEED
from train_fixtures import CHOSEN, finite_losses, write_run_dir

pytestmark = pytest.mark.train

# Few, short steps: TRL's chunked log-prob kernel is slow on a CPU with a 49k vocabulary.
FAST = {"logging_steps": 1, "gradient_checkpointing": False, "disable_tqdm": True,
        "save_strategy": "no", "eval_strategy": "no", "max_length": 64}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run_dir(tmp_path_factory.mktemp("data") / "run", {"train": 8, "validation": 4})


def settings(kind, run_dir, model_dir, out, **kw):
    overrides = {**FAST, **kw.pop("overrides", {})}
    return TrainSettings(kind=kind, data=[DataSource(run_dir)], out=out, model=str(model_dir),
                         max_steps=2, batch_size=2, learning_rate=1e-3, seed=TEST_SEED,
                         overrides=overrides, **kw)


def assert_trained(record, model_dir, out):
    """Loss logged (and finite: the fixture's premise), the saved folder loads, and its weights
    differ from the start model's."""
    assert finite_losses(record["log_history"], f"train {record['kind']}"), "no loss was logged"
    before = AutoModelForCausalLM.from_pretrained(model_dir).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "no parameter changed"
    assert (out / "tokenizer.json").exists()
    saved = json.loads((out / RECORD_NAME).read_text())
    assert saved["data"][0]["manifest_sha256"] == record["data"][0]["manifest_sha256"]
    assert saved["config"]["max_steps"] == 2 and saved["versions"]["trl"]
    return changed


def test_sft_masks_the_prompt_on_a_real_batch(run_dir, tiny_model_dir, tmp_path):
    prepared = prepare(settings("sft", run_dir, tiny_model_dir, tmp_path / "out"))
    batch = next(iter(build_trainer(prepared).get_train_dataloader()))
    tokenizer = prepared.tokenizer
    for ids, labels in zip(batch["input_ids"], batch["labels"]):
        trained = tokenizer.decode(ids[labels != -100])
        assert (labels == -100).sum() > 0
        assert "How do I" not in trained and "Can you help" not in trained and "user" not in trained
        assert trained.startswith("Happy to help! To ")
        assert CHOSEN.split("{t}")[1].strip() in trained


def test_sft_trains_and_saves(run_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "sft"
    record = train(settings("sft", run_dir, tiny_model_dir, out))
    assert_trained(record, tiny_model_dir, out)
    assert "eval_loss" in record["metrics"]  # final evaluation on the validation split
    assert record["rows"] == {"train": 8, "validation": 4}


def test_dpo_trains_and_reports_reward_metrics(run_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "dpo"
    record = train(settings("dpo", run_dir, tiny_model_dir, out, beta=0.1))
    assert_trained(record, tiny_model_dir, out)
    metrics = record["metrics"]
    assert {"eval_loss", "eval_rewards/accuracies", "eval_rewards/margins"} <= metrics.keys()
    assert record["log_history"][0]["rewards/margins"] == 0.0  # step 1: policy == reference


def test_dpo_lora_saves_merged_weights_and_adapter(run_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "dpo-lora"
    record = train(settings("dpo", run_dir, tiny_model_dir, out, lora=True,
                            overrides={"lora": {"r": 4, "lora_alpha": 8}}))
    changed = assert_trained(record, tiny_model_dir, out)
    assert not any("lora" in k for k in changed)  # merged: plain Llama keys only
    assert (out / "adapter" / "adapter_config.json").exists()
    assert record["lora"]["r"] == 4


def test_cli_sft_with_weighted_data_and_config_file(run_dir, tiny_model_dir, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in FAST.items()))
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, [
        "train", "sft", "--data", f"{run_dir}:0.5", "--out", str(out), "--model", str(tiny_model_dir),
        "--max-steps", "1", "--batch-size", "2", "--config", str(config), "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert "trained sft for 1 steps" in result.stdout
    record = json.loads((out / RECORD_NAME).read_text())
    assert record["data"][0]["weight"] == 0.5 and record["rows"]["train"] == 4
    assert record["config"]["seed"] == 7 and record["config"]["max_length"] == 64
