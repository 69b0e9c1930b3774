"""SFT, DPO and reward-model runs: checks before any model loads, TRL's trainer, saving, the record.

`selfalign-train.json` in the output folder ties the model to its data: every `--data` folder with
the sha256 of its manifest.json and its weight, the full resolved TRL config, final metrics,
package versions and wall time.
"""

from __future__ import annotations

import contextlib
import json
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from selfalign.errors import UserError
from selfalign.engine import resolve_model
from selfalign.train.config import TrainSettings, resolve_config
from selfalign.train.data import TrainingData, load_folder, mix_folders

RECORD_NAME = "selfalign-train.json"
ADAPTER_DIR = "adapter"
PACKAGES = ("selfalign", "torch", "transformers", "trl", "peft", "accelerate", "datasets")


@dataclass
class Prepared:
    """Everything checked and resolved before a model loads."""

    settings: TrainSettings
    data: TrainingData
    model: str
    config: Any  # trl.SFTConfig, trl.DPOConfig or trl.RewardConfig
    lora: dict | None
    tokenizer: Any
    started: float = field(default_factory=time.time)


def prepare(settings: TrainSettings) -> Prepared:
    """Check data, config and model path, load the tokenizer; raise UserError on bad input."""
    started = time.time()
    if not settings.data:
        raise UserError("no --data folder given")
    folders = [load_folder(settings.kind, source, settings.min_preference)
               for source in settings.data]
    has_validation = any(f.splits.get("validation") for f in folders)
    config, lora = resolve_config(settings, has_validation)
    data = mix_folders(settings.kind, folders, seed=config.seed)
    model = resolve_model(settings.model)
    return Prepared(settings, data, model, config, lora, load_tokenizer(model), started)


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as err:
        raise UserError(f"--model {model}: cannot load its tokenizer ({err})") from None
    if not tokenizer.chat_template:
        raise UserError(f"--model {model}: the tokenizer has no chat template; training on "
                        "conversations needs one (use an instruct/chat checkpoint)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def datasets_of(prepared: Prepared) -> tuple[Any, Any]:
    """The trainer's datasets: memory-mapped, as `train/data.py` mixed them."""
    train = prepared.data.train
    validation = prepared.data.validation if len(prepared.data.validation) else None
    return train, validation


def peft_config(prepared: Prepared):
    return peft_config_of(prepared.lora)


def peft_config_of(lora: dict | None):
    if lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(**lora)


def trainer_class(kind: str):
    if kind == "rm":
        from selfalign.train.reward import GroupedRewardTrainer

        return GroupedRewardTrainer
    from trl import DPOTrainer, SFTTrainer

    return SFTTrainer if kind == "sft" else DPOTrainer


def build_trainer(prepared: Prepared):
    """TRL's SFTTrainer, DPOTrainer or (rm) selfalign's RewardTrainer; this is where the model loads.

    SFT rows are prompt/completion conversations, so TRL puts the loss on the completion only.
    DPO gets no ref_model: TRL loads the start model again as the reference, or with LoRA uses the
    base with adapters switched off. The reward model is the start model with a one-output head.
    """
    trainer = trainer_class(prepared.settings.kind)
    train, validation = datasets_of(prepared)
    return trainer(model=prepared.model, args=prepared.config, train_dataset=train,
                   eval_dataset=validation, processing_class=prepared.tokenizer,
                   peft_config=peft_config(prepared))


def train(settings: TrainSettings) -> dict:
    """Check, train, save model + tokenizer + selfalign-train.json in settings.out; return the record."""
    return train_and_save(prepare(settings))


# ---------------------------------------------------------------- running

@contextlib.contextmanager
def out_of_memory_hint(settings: TrainSettings, config):
    """Turn an out-of-memory crash into advice on which settings to lower."""
    try:
        yield
    except RuntimeError as err:  # torch.OutOfMemoryError is a RuntimeError
        if "out of memory" not in str(err).lower():
            raise
        lora = "" if settings.lora else ", or train LoRA adapters with --lora"
        raise UserError(
            f"out of memory during training ({str(err).splitlines()[0]}). Lower --batch-size "
            f"(now {config.per_device_train_batch_size}) or --max-length (now {config.max_length}); "
            f"to keep the effective batch, raise gradient_accumulation_steps in --config "
            f"(now {config.gradient_accumulation_steps}){lora}.") from None


def train_and_save(prepared: Prepared) -> dict:
    """Build the trainer, train, evaluate, save model and tokenizer and the record; return it."""
    settings = prepared.settings
    with out_of_memory_hint(settings, prepared.config):
        try:
            trainer = build_trainer(prepared)
        except OSError as err:
            raise UserError(f"--model {prepared.model}: cannot load the model ({err})") from None
        metrics = dict(trainer.train().metrics)
        if trainer.eval_dataset is not None:
            metrics.update(final_evaluation(trainer))
    save_model(trainer, prepared)
    record = training_record(prepared, trainer, metrics, time.time() - prepared.started)
    if trainer.accelerator.is_main_process:
        path = Path(settings.out) / RECORD_NAME
        path.write_text(json.dumps(record, indent=2, default=str))
    return record


def final_evaluation(trainer) -> dict:
    """Eval metrics after the last step; reuses an evaluation the trainer already ran there."""
    step = trainer.state.global_step
    for entry in reversed(trainer.state.log_history):
        if "eval_loss" in entry and entry.get("step") == step:
            return {k: v for k, v in entry.items() if k.startswith("eval_")}
    return trainer.evaluate()


def save_model(trainer, prepared: Prepared) -> None:
    save_trained(trainer, Path(prepared.settings.out), prepared.lora, prepared.tokenizer,
                 classifier=prepared.settings.kind == "rm")


def save_trained(trainer, out: Path, lora: dict | None, tokenizer, classifier: bool = False) -> None:
    """Full model in OUT. With LoRA: the adapter in OUT/adapter, merged weights in OUT."""
    if lora is None:
        trainer.save_model(str(out))
        return
    adapter = out / ADAPTER_DIR
    trainer.save_model(str(adapter))
    if trainer.accelerator.is_main_process:
        # Reload from disk rather than merging in place: under FSDP/ZeRO-3 the live weights are sharded.
        from peft import AutoPeftModelForCausalLM, AutoPeftModelForSequenceClassification

        if classifier:
            merged = AutoPeftModelForSequenceClassification.from_pretrained(
                str(adapter), dtype="auto", num_labels=1).merge_and_unload()
            merged.config.pad_token_id = tokenizer.pad_token_id  # finds the last token
        else:
            merged = AutoPeftModelForCausalLM.from_pretrained(str(adapter), dtype="auto").merge_and_unload()
        merged.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
    trainer.accelerator.wait_for_everyone()


# ---------------------------------------------------------------- the record

def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def reward_data_record(prepared: Prepared, trainer) -> dict:
    """How many prompts the pairs came from, and how many pairs TRL left out for length."""
    return {"prompts": dict(prepared.data.groups),
            "pairs_too_long": trainer.pairs_too_long}


def training_record(prepared: Prepared, trainer, metrics: dict, wall_time: float) -> dict:
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    extra = reward_data_record(prepared, trainer) if prepared.settings.kind == "rm" else {}
    return {
        "kind": prepared.settings.kind,
        "model": prepared.model,
        "lora": prepared.lora,
        "data": prepared.data.folders,
        "rows": {"train": len(prepared.data.train), "validation": len(prepared.data.validation)},
        "min_preference": prepared.settings.min_preference,
        **extra,
        "config": prepared.config.to_dict(),
        "metrics": {**metrics, "first_logged_loss": losses[0] if losses else None,
                    "last_logged_loss": losses[-1] if losses else None,
                    "global_step": trainer.state.global_step},
        "log_history": trainer.state.log_history,
        "versions": package_versions(),
        "wall_time_s": round(wall_time, 2),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
