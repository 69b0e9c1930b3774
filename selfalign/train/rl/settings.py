"""`selfalign train rl` settings: CLI options and `--config` resolved into TRL's RLOOConfig or
GRPOConfig, with the checks that TRL would make late, silently or with a bare ValueError.

Defaults right for RL from a reward model on the SFT model: the KL leash on for both algorithms
(`--beta` 0.05; TRL's GRPO default is 0, which drops the reference model), `--samples` 4
completions per prompt, short completions, bf16 only on hardware that has it, no gradient
checkpointing on a CPU, one log line per step.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfalign.errors import UserError
from selfalign.train.config import check_keys, device_defaults, read_yaml, split_lora

ALGOS = ("rloo", "grpo")
REWARDS = ("rm", "judge", "rm+judge", "checks", "rm+checks")
DEFAULT_BETA = 0.05
DEFAULT_SAMPLES = 4
DEFAULT_BATCH = 8  # completions per device per step (TRL's per_device_train_batch_size)
DEFAULT_COMPLETION_TOKENS = 64
DEFAULT_LEARNING_RATE = 1e-6  # TRL's RL default; tiny test models need far more


@dataclass
class RLSettings:
    """What a `selfalign train rl` call asked for; None means "not given"."""

    prompts: list[str]
    out: Path
    model: str | None = None  # the SFT model: policy start and KL reference
    reward_model: str | None = None
    algo: str = "rloo"
    reward: str = "rm"
    reward_weights: list[float] | None = None  # one per source, in the order of `reward`
    checks_weight: float | None = None  # the checks' weight beside a reward model's 1
    beta: float = DEFAULT_BETA
    samples: int = DEFAULT_SAMPLES
    max_completion_length: int = DEFAULT_COMPLETION_TOKENS
    temperature: float | None = None  # of the sampled completions; None: TRL's 1.0
    max_steps: int | None = None
    epochs: float | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    seed: int = 0
    lora: bool = False
    use_vllm: bool = False
    config_file: Path | None = None
    # The judge (`--reward judge` or `rm+judge`).
    principles: list[str] = field(default_factory=list)
    judge_model: str | None = None  # default: the SFT model
    judge_base_url: list[str] = field(default_factory=list)
    judge_principles: int = 1
    reference_run: Path | None = None  # a generate run whose sft/ holds the reference answers
    backend: str = "vllm"  # in-process engine for references and a local judge
    # Outputs and the reward-hacking watch.
    sample_every: int = 10  # steps between saved sample completions
    held_out: int = 32  # validation prompts scored at start and end
    # Extra TRL fields, as from the YAML file (tests and scripts pass them directly).
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.algo not in ALGOS:
            raise UserError(f"--algo must be one of {', '.join(ALGOS)}, got {self.algo!r}")
        if self.reward not in REWARDS:
            raise UserError(f"--reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        if self.uses_rm and not self.reward_model:
            raise UserError(f"--reward {self.reward} scores with a reward model: give "
                            "--reward-model DIR (the --out folder of `selfalign train rm`)")
        if self.uses_judge and not self.principles:
            raise UserError(f"--reward {self.reward} asks the judge under comparison principles: "
                            "give --principles (a principle file, folder or constitution)")
        if self.samples < 2:
            raise UserError(f"--samples {self.samples}: RLOO and GRPO compare each completion with "
                            "the others of its prompt, so they need at least 2")
        if self.beta < 0:
            raise UserError(f"--beta must be >= 0 (0 turns the KL penalty off), got {self.beta}")
        if self.checks_weight is not None and not self.uses_checks:
            raise UserError(f"--checks-weight weighs the checks' reward, but --reward "
                            f"{self.reward} has none; use --reward rm+checks")
        if self.checks_weight is not None and self.reward_weights is not None:
            raise UserError("--checks-weight and --reward-weights both set the weights; give one")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.sources):
            raise UserError(f"--reward-weights has {len(self.reward_weights)} weight(s) for "
                            f"{len(self.sources)} reward source(s) ({', '.join(self.sources)}); "
                            "give one per source, in that order")
        if self.temperature is not None and self.temperature <= 0:
            raise UserError(f"--temperature must be > 0 (RL needs sampled completions), got "
                            f"{self.temperature}")
        if self.sample_every < 1:
            raise UserError(f"--sample-every must be at least 1, got {self.sample_every}")

    @property
    def sources(self) -> list[str]:
        return self.reward.split("+")

    @property
    def uses_rm(self) -> bool:
        return "rm" in self.sources

    @property
    def uses_judge(self) -> bool:
        return "judge" in self.sources

    @property
    def uses_checks(self) -> bool:
        return "checks" in self.sources

    @property
    def weights(self) -> list[float] | None:
        """--reward-weights, or 1 for each source but the checks, which get --checks-weight."""
        if self.checks_weight is None:
            return self.reward_weights
        return [self.checks_weight if s == "checks" else 1.0 for s in self.sources]

    def cli_fields(self) -> dict[str, Any]:
        """Command-line options as TRL config fields, only those that were given."""
        names = {"max_steps": self.max_steps, "num_train_epochs": self.epochs,
                 "learning_rate": self.learning_rate, "per_device_train_batch_size": self.batch_size,
                 "reward_weights": self.weights, "temperature": self.temperature}
        fields = {k: v for k, v in names.items() if v is not None}
        fields.update(beta=self.beta, num_generations=self.samples, seed=self.seed,
                      max_completion_length=self.max_completion_length)
        if self.use_vllm:
            # Colocated vLLM shares the training GPU; TRL's server mode needs a second process.
            fields.update(use_vllm=True, vllm_mode="colocate")
        return fields


def config_class(algo: str):
    from trl import GRPOConfig, RLOOConfig

    return {"rloo": RLOOConfig, "grpo": GRPOConfig}[algo]


def world_size() -> int:
    """Processes training together (accelerate/torchrun set WORLD_SIZE; one otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def generation_batch(fields: dict[str, Any]) -> tuple[int, str]:
    """Completions per generation batch, as TRL will compute it, and how it came about."""
    batch = fields.get("per_device_train_batch_size", DEFAULT_BATCH)
    processes = world_size()
    if fields.get("generation_batch_size"):
        return fields["generation_batch_size"], "generation_batch_size"
    steps = fields.get("steps_per_generation") or fields.get("gradient_accumulation_steps", 1)
    how = f"--batch-size {batch}" + (f" × {processes} processes" if processes > 1 else "")
    how += f" × {steps} steps per generation" if steps > 1 else ""
    return batch * processes * steps, how


def check_batch(fields: dict[str, Any], samples: int, prompts: int) -> None:
    """The generation batch holds whole prompt groups, and the prompts fill at least one."""
    completions, how = generation_batch(fields)
    if completions % samples:
        raise UserError(f"a generation batch of {completions} completions ({how}) does not divide "
                        f"into groups of --samples {samples}; make --batch-size a multiple of "
                        f"{samples} (e.g. {samples * max(1, completions // samples)})")
    needed = completions // samples
    if prompts < needed:
        raise UserError(f"{prompts} train prompt(s), but one generation batch takes {needed} "
                        f"({completions} completions ({how}) / --samples {samples}); TRL would "
                        f"train no step. Add prompts, or lower --batch-size to "
                        f"{samples * max(prompts, 1)} or below")


def resolve_config(settings: RLSettings, prompts: int):
    """The TRL config object for `settings`, and the LoRA kwargs (None without LoRA)."""
    cls = config_class(settings.algo)
    where = str(settings.config_file) if settings.config_file else "config"
    values = read_yaml(settings.config_file, "rl") if settings.config_file else {}
    values = {**values, **settings.overrides}
    values, lora = split_lora(values, settings.lora, where, "sft")
    check_keys(values, [f.name for f in dataclasses.fields(cls)], cls.__name__, where)

    fields = {"output_dir": str(settings.out), "report_to": "none", "logging_steps": 1,
              "save_strategy": "no", "per_device_train_batch_size": DEFAULT_BATCH,
              **device_defaults()}
    if not fields["bf16"]:  # TRL loads the saved dtype: bf16 weights would train in bf16 on a CPU
        fields["model_init_kwargs"] = {"dtype": "float32"}
    fields.update(values)
    fields.update(settings.cli_fields())
    fields["output_dir"] = str(settings.out)
    check_batch(fields, settings.samples, prompts)
    try:
        return cls(**fields), lora
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}: invalid {cls.__name__} setting: {err}") from None
