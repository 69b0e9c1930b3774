"""Training settings: CLI options and `--config train.yaml` resolved into a TRL config object.

Precedence, lowest first: TRL's defaults → selfalign's defaults (device, eval on the validation
split, no external loggers, one epoch for a reward model) → the YAML file → options given on the
command line.

The YAML file holds any field of `trl.SFTConfig` / `trl.DPOConfig` / `trl.RewardConfig`, plus one
selfalign key:
`lora:` — `true`, or a mapping of `peft.LoraConfig` fields (e.g. `{r: 64, lora_alpha: 128}`),
which also turns LoRA on.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfalign.errors import UserError
from selfalign.settings_schema import read_settings_file
from selfalign.train.data import DataSource

KINDS = ("sft", "dpo", "rm")
LORA_DEFAULTS = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear",
                 "task_type": "CAUSAL_LM"}
# A reward model is a sequence classifier; PEFT then also trains its new `score` head.
LORA_TASK = {"sft": "CAUSAL_LM", "dpo": "CAUSAL_LM", "rm": "SEQ_CLS"}


@dataclass
class TrainSettings:
    """What a `selfalign train sft|dpo|rm` call asked for; None means "not given"."""

    kind: str  # "sft", "dpo" or "rm"
    data: list[DataSource]
    out: Path
    model: str | None = None
    max_steps: int | None = None
    epochs: float | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    max_length: int | None = None
    beta: float | None = None
    loss_type: str | None = None
    seed: int | None = None
    min_preference: float | None = None  # keep only pairs the judge preferred at least this much
    lora: bool = False
    config_file: Path | None = None
    # Extra TRL fields, as from the YAML file (tests and scripts pass them directly).
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind != "dpo" and (self.beta is not None or self.loss_type is not None):
            raise UserError(f"--beta and --loss-type are DPO settings; `train {self.kind}` does not "
                            "take them")
        if self.min_preference is not None:
            if self.kind == "sft":
                raise UserError("--min-preference filters preference pairs; `train sft` has none")
            if not 0.0 <= self.min_preference <= 1.0:
                raise UserError(f"--min-preference must be a probability in [0, 1], got "
                                f"{self.min_preference}")

    def cli_fields(self) -> dict[str, Any]:
        """Command-line options as TRL config fields, only those that were given."""
        names = {"max_steps": self.max_steps, "num_train_epochs": self.epochs,
                 "learning_rate": self.learning_rate, "per_device_train_batch_size": self.batch_size,
                 "per_device_eval_batch_size": self.batch_size, "max_length": self.max_length,
                 "beta": self.beta, "loss_type": self.loss_type, "seed": self.seed}
        return {k: v for k, v in names.items() if v is not None}


def config_class(kind: str):
    from trl import DPOConfig, RewardConfig, SFTConfig

    return {"sft": SFTConfig, "dpo": DPOConfig, "rm": RewardConfig}[kind]


# ---------------------------------------------------------------- YAML and key checks

def unknown_key_error(key: str, valid: list[str], kind: str, where: str) -> UserError:
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.0)
    hint = f" Did you mean: {near[0]}?" if near else ""
    return UserError(f"{where}: unknown {kind} field '{key}'.{hint} "
                     f"(any field of {kind} is accepted; see its documentation)")


def check_keys(values: dict, valid: list[str], kind: str, where: str) -> None:
    for key in values:
        if key not in valid:
            raise unknown_key_error(str(key), valid, kind, where)


def read_yaml(path: Path, schema: str = "train") -> dict[str, Any]:
    """The YAML file, its values typed by selfalign/schemas/<schema>.schema.json (made from
    TRL's config classes by scripts/build_schemas.py); a bad value names file:line: key."""
    return read_settings_file(path, schema)


def split_lora(values: dict[str, Any], cli_lora: bool, where: str,
               kind: str = "sft") -> tuple[dict, dict | None]:
    """Take the `lora:` key out of the YAML values; return (TRL fields, LoRA kwargs or None)."""
    values = dict(values)
    lora = values.pop("lora", None)
    defaults = {**LORA_DEFAULTS, "task_type": LORA_TASK[kind]}
    if lora is None or lora is False:
        return values, (defaults if cli_lora else None)
    if lora is True:
        return values, defaults
    if not isinstance(lora, dict):
        raise UserError(f"{where}: `lora` must be true, false or a mapping of LoraConfig fields")
    from peft import LoraConfig

    check_keys(lora, [f.name for f in dataclasses.fields(LoraConfig)], "LoraConfig", where)
    return values, {**defaults, **lora}


# ---------------------------------------------------------------- resolution

def device_defaults() -> dict[str, Any]:
    """bf16 on a GPU that has it; plain fp32 on the CPU. Placement itself is left to accelerate.

    TRL's configs turn gradient checkpointing on; on a CPU, memory is rarely the limit and the
    recomputation costs time (`train rm` ran at about 37 s a step with it), so it is off there.
    """
    import torch

    if torch.cuda.is_available():
        return {"bf16": torch.cuda.is_bf16_supported(), "use_cpu": False}
    return {"bf16": False, "use_cpu": True, "gradient_checkpointing": False}


def resolve_config(settings: TrainSettings, has_validation: bool):
    """The TRL config object for `settings`, and the LoRA kwargs (None without LoRA)."""
    cls = config_class(settings.kind)
    valid = [f.name for f in dataclasses.fields(cls)]
    where = str(settings.config_file) if settings.config_file else "config"
    values = read_yaml(settings.config_file) if settings.config_file else {}
    values = {**values, **settings.overrides}
    values, lora = split_lora(values, settings.lora, where, settings.kind)
    check_keys(values, valid, cls.__name__, where)

    fields = {"output_dir": str(settings.out), "report_to": "none", **device_defaults()}
    if has_validation:
        fields["eval_strategy"] = "steps"
    if settings.kind == "rm":
        fields["num_train_epochs"] = 1  # InstructGPT: a reward model overfits after one epoch
    if lora and fields["bf16"]:
        # LoRA trains adapters only: keep the frozen base in bf16 instead of fp32 master weights.
        fields["model_init_kwargs"] = {"dtype": "bfloat16"}
    fields.update(values)
    fields.update(settings.cli_fields())
    fields["output_dir"] = str(settings.out)
    if not has_validation and fields.get("eval_strategy", "no") != "no":
        raise UserError(f"eval_strategy is '{fields['eval_strategy']}' but no --data folder has a "
                        "validation split; remove eval_strategy or add validation rows")
    try:
        return cls(**fields), lora
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: invalid {cls.__name__} setting: {err}") from None
