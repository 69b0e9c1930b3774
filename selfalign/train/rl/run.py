"""`selfalign train rl`: checks before any model loads, rewards, TRL's RLOO/GRPO, the outputs.

Order: prompts → TRL config (batch checks) → policy tokenizer → reward model folder (one label,
tokenizer, chat template) → principles (every one with a `comparison`) and the judge's option
tokens → every prompt's checks (`--reward checks`); only then do models load. Then: reference answers (judge), the held-out figures at the
start, training, the held-out figures at the end, the policy saved with its tokenizer,
`selfalign-train.json`, `report.md`, `reward_kl.png`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from selfalign.checks.instructions import carries_instructions
from selfalign.engine import resolve_model
from selfalign.engine.base import SamplingSettings
from selfalign.errors import UserError
from selfalign.stable_hash import derived_seed
from selfalign.train.rl.outputs import RunRecorder, plot_reward_kl, read_metrics, recording_trainer
from selfalign.train.rl.prompts import RLPrompts, dataset_rows, load_prompts
from selfalign.train.rl.settings import RLSettings, resolve_config
from selfalign.train.rl.watch import report_markdown, watch_point, watch_record
from selfalign.train.run import RECORD_NAME, load_tokenizer, package_versions, save_trained

REPORT_NAME = "report.md"


@dataclass
class RLPlan:
    """Everything checked and resolved before a model loads."""

    settings: RLSettings
    prompts: RLPrompts
    model: str
    config: Any  # trl.RLOOConfig or trl.GRPOConfig
    lora: dict | None
    tokenizer: Any
    reward_model: tuple[str, Any] | None = None  # (folder, its tokenizer)
    constitution: Any = None
    judge_model: str | None = None
    checks: Any = None  # a ChecksReward, with --reward checks or rm+checks
    started: float = field(default_factory=time.time)


def plan_rl(settings: RLSettings) -> RLPlan:
    """Check prompts, config, policy, reward model and principles; raise UserError on bad input."""
    started = time.time()
    prompts = load_prompts(settings.prompts, settings.held_out)
    unique = len({r.id for r in prompts.train})
    config, lora = resolve_config(settings, unique)
    model = resolve_model(settings.model)
    tokenizer = load_tokenizer(model)
    plan = RLPlan(settings, prompts, model, config, lora, tokenizer, started=started)
    if settings.uses_rm:
        from selfalign.train.rl.reward_model import check_reward_folder

        plan.reward_model = check_reward_folder(settings.reward_model, tokenizer)
    if settings.uses_judge:
        plan.constitution, plan.judge_model = check_judge(settings, model)
    if settings.uses_checks:
        from selfalign.train.rl.checks_reward import checks_reward

        plan.checks = checks_reward(prompts.train + prompts.held_out, settings.principles)
    return plan


def check_judge(settings: RLSettings, policy_model: str):
    """The constitution (every principle with a comparison, as generate asks) and judge model."""
    from selfalign.constitution import load_constitution
    from selfalign.engine import judge_checker
    from selfalign.stages.judge import check_judge_ready
    from selfalign.train.rl.judge import engine_settings

    constitution = load_constitution(settings.principles)
    check_judge_ready(constitution, settings.judge_principles)
    if settings.judge_base_url:
        if not settings.judge_model:
            raise UserError("--judge-base-url needs --judge-model: the name the servers serve")
        judge_model = settings.judge_model
    else:
        judge_model = resolve_model(settings.judge_model) if settings.judge_model else policy_model
    checker_settings = engine_settings(settings, settings.judge_base_url)
    checker_settings.judge_base_url = settings.judge_base_url
    judge_checker(checker_settings)(judge_model)
    return constitution, judge_model


# ---------------------------------------------------------------- the judge's side

@dataclass
class JudgeSide:
    """The judge reward, its engines, and a synchronous way to score held-out answers."""

    reward: Any
    engines: Any
    references: dict[str, str]

    def score(self, conversations, answers, prompt_ids) -> list[float | None]:
        return self.engines.loop.run(self.reward.preferences(conversations, answers, prompt_ids,
                                                             "watch"))


def start_judge(plan: RLPlan, make_engine: Callable) -> JudgeSide:
    """Build the engines, write the reference answers (read from --reference-run first)."""
    from selfalign.train.rl.judge import JudgeEngines, JudgeReward, answer_all, references_from_run

    settings = plan.settings
    engines = JudgeEngines.start(settings, plan.model, plan.judge_model, make_engine)
    records = plan.prompts.train + plan.prompts.held_out
    references = references_from_run(settings.reference_run) if settings.reference_run else {}
    missing = [r for r in records if r.id not in references]
    if missing:
        engine = engines.reference_engine(settings, plan.model, make_engine)
        sampling = SamplingSettings(max_tokens=settings.max_completion_length,
                                    temperature=plan.config.temperature, top_p=plan.config.top_p)
        references.update(engines.loop.run(answer_all(engine.complete, missing, sampling,
                                                      settings.seed)))
    engines.close_reference()
    unanswered = sorted({r.id for r in records} - set(references))
    if unanswered:
        raise UserError(f"no reference answer for {len(unanswered)} prompt(s) (e.g. "
                        f"{unanswered[:3]}); the SFT model failed to answer them")
    reward = JudgeReward(engines.judge.complete, plan.constitution, references,
                         settings.judge_principles, derived_seed(settings.seed, "judge"),
                         engines.loop)
    return JudgeSide(reward, engines, references)


# ---------------------------------------------------------------- training

def build_trainer(plan: RLPlan, reward_funcs: list, recorder: RunRecorder):
    """TRL's RLOOTrainer or GRPOTrainer with the recorder's hooks; the policy loads here."""
    from datasets import Dataset
    from trl import GRPOTrainer, RLOOTrainer

    from selfalign.train.run import peft_config_of

    base = {"rloo": RLOOTrainer, "grpo": GRPOTrainer}[plan.settings.algo]
    trainer = recording_trainer(base)(
        model=plan.model, reward_funcs=reward_funcs, args=plan.config,
        train_dataset=Dataset.from_list(dataset_rows(plan.prompts.train)),
        processing_class=plan.tokenizer, peft_config=peft_config_of(plan.lora))
    trainer.recorder = recorder
    return trainer


def train_rl(settings: RLSettings, make_engine: Callable | None = None) -> dict:
    """Check, train, save the policy and the record in settings.out; return the record."""
    return run_plan(plan_rl(settings), make_engine)


def run_plan(plan: RLPlan, make_engine: Callable | None = None) -> dict:
    from selfalign.train.rl.reward_model import RewardModelScore

    settings, out = plan.settings, Path(plan.settings.out)
    rm = RewardModelScore(*plan.reward_model) if plan.reward_model else None
    judge = None
    if settings.uses_judge:
        if make_engine is None:
            from selfalign.engine import make_engine
        judge = start_judge(plan, make_engine)
    try:
        by_source = {"rm": rm, "judge": judge.reward if judge else None, "checks": plan.checks}
        rewards = [by_source[source] for source in settings.sources]  # --reward-weights' order
        trainer = build_trainer(plan, rewards, RunRecorder(out, settings.sample_every))
        held_out = dataset_rows(plan.prompts.held_out)

        def watch():
            return watch_point(trainer.model, plan.tokenizer, held_out,
                               settings.max_completion_length, rm, judge.score if judge else None,
                               plan.checks.pass_rate if plan.checks else None)

        start = watch()  # the policy is still the SFT model
        metrics = dict(trainer.train().metrics)
        end = watch()
    finally:
        if judge:
            judge.engines.close()
    save_trained(trainer, out, plan.lora, plan.tokenizer)
    record = rl_record(plan, trainer, metrics, watch_record(start, end))
    if trainer.accelerator.is_main_process:
        plot_reward_kl(out, read_metrics(out))
        (out / RECORD_NAME).write_text(json.dumps(record, indent=2, default=str))
        (out / REPORT_NAME).write_text(report_markdown(record))
    return record


# ---------------------------------------------------------------- the record

def curve(log_history: list[dict]) -> dict[str, Any]:
    steps = [e for e in log_history if "reward" in e]
    return {"logged_steps": len(steps),
            "first_reward": steps[0]["reward"] if steps else None,
            "last_reward": steps[-1]["reward"] if steps else None,
            "last_kl": steps[-1].get("kl") if steps else None}


def rl_record(plan: RLPlan, trainer, metrics: dict, watch: dict) -> dict:
    settings = plan.settings
    return {
        "kind": "rl",
        "algo": settings.algo,
        "model": plan.model,
        "lora": plan.lora,
        "reward": settings.reward,
        "reward_sources": {
            "rm": ({"path": plan.reward_model[0],
                    # ties the reward to the data the reward model was trained on
                    "record_sha256": _sha256(Path(plan.reward_model[0]) / RECORD_NAME)}
                   if plan.reward_model else None),
            "judge": ({"model": plan.judge_model, "base_url": settings.judge_base_url,
                       "principles": [p.name for p in plan.constitution.principles],
                       "principles_per_pair": settings.judge_principles,
                       "reference_run": str(settings.reference_run) if settings.reference_run
                       else None} if settings.uses_judge else None),
            "checks": ({"principles": list(settings.principles),
                        "prompts_with_own_instructions": sum(
                            1 for r in plan.prompts.train + plan.prompts.held_out
                            if carries_instructions(r.metadata))}
                       if settings.uses_checks else None),
            "weights": list(plan.config.reward_weights or [1.0] * len(settings.sources)),
        },
        "prompts": {"sources": [str(Path(p).resolve()) for p in settings.prompts],
                    "sha256": {str(p): _sha256(Path(p)) for p in settings.prompts},
                    **plan.prompts.record()},
        "config": plan.config.to_dict(),
        "metrics": {**metrics, "global_step": trainer.state.global_step},
        "curve": curve(trainer.state.log_history),
        "watch": watch,
        "log_history": trainer.state.log_history,
        "versions": package_versions(),
        "wall_time_s": round(time.time() - plan.started, 2),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _sha256(path: Path) -> str | None:
    """The sha256 of a file, or of a folder's files in name order (None for stdin or no file)."""
    import hashlib

    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    if not all(f.is_file() for f in files):
        return None
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        with open(f, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
