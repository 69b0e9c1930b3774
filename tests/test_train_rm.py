"""`selfalign train rm` and `--min-preference`: prompt groups, soft labels, checks before a model
loads; then real TRL steps on a tiny random Llama (marked `train`)."""

import json
import math
import re
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from selfalign.cli import main
from selfalign.errors import UserError
from selfalign.train.config import TrainSettings, resolve_config
from selfalign.train.data import DataSource, load_folder, load_training_data, mix_folders
from selfalign.train.run import RECORD_NAME, build_trainer, prepare, train
from premise import TEST_SEED, fixture_broke
from train_fixtures import (error_of, finite_losses, ranked_rows, settings, write_ranked_run_dir,
                            write_run_dir)

FAST = {"logging_steps": 1, "gradient_checkpointing": False, "disable_tqdm": True,
        "save_strategy": "no", "eval_strategy": "no", "max_length": 96}


@pytest.fixture
def ranked(tmp_path):
    # Prompts with 3, 2 and 4 answers: 3 + 1 + 6 pairs.
    return write_ranked_run_dir(tmp_path / "ranked", {"train": [3, 2, 4], "validation": [2, 3]})


# ---------------------------------------------------------------- data, no model

def test_rm_rows_are_grouped_by_prompt(ranked):
    data = load_training_data("rm", [DataSource(ranked)])
    assert Counter(r["group"] for r in data.train) == {0: 3, 1: 1, 2: 6}
    assert Counter(r["group"] for r in data.validation) == {0: 1, 1: 3}
    first = data.train[0]
    assert set(first) == {"prompt", "chosen", "rejected", "preference", "group"}
    assert first["preference"] == pytest.approx(0.65)
    assert [r["preference"] for r in data.train if r["group"] == 1] == [pytest.approx(0.65)]


def test_rm_weight_samples_whole_prompts(tmp_path):
    folder = write_ranked_run_dir(tmp_path / "r", {"train": [3, 3, 4, 2]})
    data = load_training_data("rm", [DataSource(folder, 0.5)], seed=1)
    sizes = sorted(Counter(r["group"] for r in data.train).values())
    assert len(sizes) == 2 and all(s in (1, 3, 6) for s in sizes)  # whole prompts only
    assert data.folders[0]["train_rows_used"] == len(data.train)


def test_rm_without_preference_column_counts_pairs_as_certain(tmp_path):
    folder = write_run_dir(tmp_path / "run", {"train": 4})
    data = load_training_data("rm", [DataSource(folder)])
    assert [r["preference"] for r in data.train] == [1.0] * 4
    assert sorted(r["group"] for r in data.train) == [0, 1, 2, 3]


def write_prefs(folder, rows):
    write_ranked_run_dir(folder, {"train": [2]})
    pq.write_table(pa.Table.from_pylist(rows), folder / "prefs" / "train-00000-of-00001.parquet")
    return folder


def test_rm_needs_prompt_id(tmp_path, no_model_load):
    rows = [{k: v for k, v in r.items() if k != "prompt_id"} for r in ranked_rows("train", [3])]
    message = error_of("rm", [write_prefs(tmp_path / "run", rows)], tmp_path)
    assert "missing column(s) ['prompt_id']" in message
    assert message.endswith("the reward model groups every comparison of a prompt by its prompt_id")


def test_preference_outside_zero_one_is_refused(tmp_path, no_model_load):
    rows = ranked_rows("train", [3])
    rows[2]["preference"] = 1.5
    folder = write_prefs(tmp_path / "run", rows)
    assert error_of("rm", [folder], tmp_path) == (
        f"{folder / 'prefs'} split 'train' row 2: `preference` must be a probability in [0, 1], "
        "got 1.5")


def test_dpo_min_preference_keeps_confident_pairs(ranked):
    folder = load_folder("dpo", DataSource(ranked), min_preference=0.8)
    assert folder.below_min_preference == {"train": 6, "validation": 3}  # gap-1 pairs: 0.65
    data = mix_folders("dpo", [folder], seed=0)
    assert len(data.train) == 4 and len(data.validation) == 1
    assert set(data.train[0]) == {"prompt", "chosen", "rejected"}
    assert data.folders[0]["below_min_preference"]["train"] == 6


def test_dpo_min_preference_needs_the_column(tmp_path, no_model_load):
    folder = write_run_dir(tmp_path / "run", {"train": 4})
    message = error_of("dpo", [folder], tmp_path, min_preference=0.6)
    assert "missing column(s) ['preference']" in message
    assert message.endswith("--min-preference filters on the judge's preference, which `selfalign "
                            "generate` writes only when a judge ran; drop --min-preference or "
                            "judge the run")


def test_min_preference_that_leaves_nothing(ranked, tmp_path, no_model_load):
    assert error_of("rm", [ranked], tmp_path, min_preference=0.99) == (
        f"{ranked / 'prefs'}: the train split has no rows (10 below --min-preference 0.99)")


def test_settings_that_do_not_fit_the_kind():
    with pytest.raises(UserError, match="`train sft` has none"):
        TrainSettings(kind="sft", data=[], out="o", min_preference=0.5)
    with pytest.raises(UserError, match="DPO settings; `train rm` does not take them"):
        TrainSettings(kind="rm", data=[], out="o", beta=0.1)
    with pytest.raises(UserError, match=r"must be a probability in \[0, 1\], got 2"):
        TrainSettings(kind="dpo", data=[], out="o", min_preference=2)


def test_rm_config_is_a_reward_config_for_one_epoch(ranked, tmp_path):
    from trl import RewardConfig

    config, lora = resolve_config(settings("rm", [ranked], tmp_path, lora=True), has_validation=True)
    assert isinstance(config, RewardConfig) and config.num_train_epochs == 1
    assert lora["task_type"] == "SEQ_CLS"
    config, _ = resolve_config(settings("rm", [ranked], tmp_path, epochs=2), has_validation=False)
    assert config.num_train_epochs == 2 and config.eval_strategy == "no"
    with pytest.raises(UserError, match="unknown RewardConfig field 'centre_rewards_coefficient'"):
        resolve_config(settings("rm", [ranked], tmp_path,
                                overrides={"centre_rewards_coefficient": 0.1}), True)


def test_rm_eval_without_validation_split(tmp_path, no_model_load):
    folder = write_ranked_run_dir(tmp_path / "r", {"train": [3]})
    message = error_of("rm", [folder], tmp_path, overrides={"eval_strategy": "steps"})
    assert "no --data folder has a validation split" in message


def test_cli_rm_error_without_traceback(tmp_path):
    result = CliRunner().invoke(main, ["train", "rm", "--data", str(tmp_path / "nope"),
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr == f"error: --data {tmp_path / 'nope'}: folder does not exist\n"


# ---------------------------------------------------------------- real steps on a tiny model

def rm_settings(folder, model_dir, out, **kw):
    overrides = {**FAST, **kw.pop("overrides", {})}
    return TrainSettings(kind="rm", data=[DataSource(folder)], out=out, model=str(model_dir),
                         learning_rate=1e-3, seed=TEST_SEED, overrides=overrides, **kw)


def score_margin(model, chosen, rejected) -> float:
    """score(chosen) - score(rejected), each sequence scored alone."""
    with torch.no_grad():
        return (model(input_ids=torch.tensor([chosen])).logits.item()
                - model(input_ids=torch.tensor([rejected])).logits.item())


def pair_margins(model, groups) -> list[float]:
    return [score_margin(model, c, r) for g in groups
            for c, r in zip(g["group_chosen_ids"], g["group_rejected_ids"])]


def expected_loss(model, groups) -> float:
    """The grouped soft-label loss by hand: each sequence scored alone, plain Python floats."""
    per_group = []
    for group in groups:
        losses = []
        for chosen, rejected, p in zip(group["group_chosen_ids"], group["group_rejected_ids"],
                                       group["group_preference"]):
            m = score_margin(model, chosen, rejected)
            log_sigmoid = -math.log1p(math.exp(-m))
            log_sigmoid_neg = -math.log1p(math.exp(m))
            losses.append(-(p * log_sigmoid + (1 - p) * log_sigmoid_neg))
        per_group.append(sum(losses) / len(losses))
    return sum(per_group) / len(per_group)


@pytest.mark.train
def test_rm_loss_is_the_grouped_soft_label_formula(ranked, tiny_model_dir, tmp_path):
    prepared = prepare(rm_settings(ranked, tiny_model_dir, tmp_path / "out", max_steps=1,
                                   batch_size=3))
    trainer = build_trainer(prepared)
    groups = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    assert sorted(len(g["group_preference"]) for g in groups) == [1, 3, 6]
    # Soft and hard labels give the same loss where every margin is 0: the untrained head must
    # tell chosen from rejected somewhat for the comparison below to mean anything.
    margins = pair_margins(trainer.model, groups)
    if max(map(abs, margins)) < 0.05:
        fixture_broke(f"the untrained reward head's margins are all near 0: {margins}",
                      "train rm")
    expected = expected_loss(trainer.model, groups)

    # A hand-built batch through the collator and compute_loss.
    batch = trainer.data_collator(groups)
    assert batch["pair_weight"].sum().item() == pytest.approx(1.0)
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, dict(batch)).item()
    assert loss == pytest.approx(expected, abs=1e-5)
    # With hard labels and one group it is TRL's loss: -mean log σ(Δ).
    assert expected != pytest.approx(
        expected_loss(trainer.model, [{**g, "group_preference": [1.0] * len(g["group_preference"])}
                                      for g in groups]), abs=1e-3)

    # The logged loss of the first step (one batch = the whole train set) is the same number.
    trainer.train()
    logged = [e for e in trainer.state.log_history if "loss" in e][0]
    assert logged["loss"] == pytest.approx(expected, abs=1e-5)
    assert 0.0 <= logged["accuracy"] <= 1.0 and "margin" in logged


@pytest.mark.train
def test_every_batch_holds_whole_prompts(tmp_path, tiny_model_dir):
    sizes = [3, 2, 4, 3, 2, 4, 2]
    folder = write_ranked_run_dir(tmp_path / "r", {"train": sizes})
    prepared = prepare(rm_settings(folder, tiny_model_dir, tmp_path / "out", batch_size=2))
    trainer = build_trainer(prepared)
    seen = Counter()
    for batch in trainer.get_train_dataloader():
        pairs = len(batch["preference"])
        chosen_half = batch["input_ids"][:pairs]
        prompts = Counter(int(re.search(r"\(prompt (\d+)\)", prepared.tokenizer.decode(ids))[1])
                          for ids in chosen_half)
        for prompt, count in prompts.items():
            assert count == math.comb(sizes[prompt], 2), f"prompt {prompt} split across batches"
            for w in batch["pair_weight"][[i for i, ids in enumerate(chosen_half)
                                           if f"(prompt {prompt})" in prepared.tokenizer.decode(ids)]]:
                assert w.item() == pytest.approx(1 / (count * len(prompts)))
        seen.update(prompts)
    assert sorted(seen) == list(range(len(sizes)))


@pytest.mark.train
def test_rm_trains_saves_and_reloads(ranked, tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "rm"
    record = train(rm_settings(ranked, tiny_model_dir, out, max_steps=2, batch_size=2))
    assert finite_losses(record["log_history"], "train rm")
    assert {"eval_loss", "eval_accuracy", "eval_margin"} <= record["metrics"].keys()
    assert record["prompts"] == {"train": 3, "validation": 2}
    assert record["rows"] == {"train": 10, "validation": 4}
    assert record["pairs_too_long"] == {"train": 0, "eval": 0}
    saved = json.loads((out / RECORD_NAME).read_text())
    assert saved["kind"] == "rm" and saved["config"]["max_steps"] == 2
    assert saved["data"][0]["manifest_sha256"] == record["data"][0]["manifest_sha256"]

    reloaded = AutoModelForSequenceClassification.from_pretrained(out)
    assert reloaded.config.num_labels == 1
    start = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    before, after = start.state_dict(), reloaded.state_dict()
    backbone = [k for k in before if not k.startswith("score")]
    assert backbone and before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in backbone), "no parameter changed"
    with torch.no_grad():
        reward = reloaded(**prepared_input(out)).logits
    assert reward.shape == (1, 1)


def prepared_input(out):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"},
                                          {"role": "assistant", "content": "hello"}], tokenize=False)
    return tokenizer(text, return_tensors="pt")


@pytest.mark.train
def test_cli_rm_with_lora_saves_a_merged_classifier(ranked, tiny_model_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    config = tmp_path / "train.yaml"
    config.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in FAST.items())
                      + "lora: {r: 4, lora_alpha: 8}\n")
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, [
        "train", "rm", "--data", str(ranked), "--out", str(out), "--model", str(tiny_model_dir),
        "--max-steps", "1", "--batch-size", "2", "--config", str(config),
        "--min-preference", "0.7"])
    assert result.exit_code == 0, result.output
    assert "trained rm for 1 steps" in result.stdout and "eval_accuracy=" in result.stdout
    record = json.loads((out / RECORD_NAME).read_text())
    assert record["min_preference"] == 0.7 and record["rows"] == {"train": 4, "validation": 1}
    assert (out / "adapter" / "adapter_config.json").exists()
    merged = AutoModelForSequenceClassification.from_pretrained(out)
    assert merged.config.num_labels == 1
    assert not any("lora" in k for k in merged.state_dict())
