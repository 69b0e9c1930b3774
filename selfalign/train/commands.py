"""`selfalign train sft|dpo|rm|rl`: parse options, call selfalign.train.run.train, print a summary."""

from __future__ import annotations

from pathlib import Path

import click

from selfalign.train.data import DataSource


def _data_sources(ctx, param, values) -> list[DataSource]:
    return [DataSource.parse(v) for v in values]


def _common_options(command):
    options = [
        click.option("--data", "data", multiple=True, required=True, callback=_data_sources,
                     metavar="RUN_DIR[:WEIGHT]",
                     help="A folder written by `selfalign generate`; repeat to mix folders. WEIGHT "
                          "scales its train rows (0.5 = a seeded half, 2 = every row twice)."),
        click.option("--out", type=click.Path(path_type=Path), required=True,
                     help="Folder for the trained model, tokenizer and selfalign-train.json."),
        click.option("--model", default=None,
                     help="Start checkpoint folder or hub id (default: the embedded SmolLM2-135M)."),
        click.option("--max-steps", type=int, default=None, help="Stop after this many optimiser steps."),
        click.option("--epochs", type=float, default=None, help="Passes over the train rows."),
        click.option("--learning-rate", type=float, default=None,
                     help="Peak learning rate [default: TRL's for the kind]."),
        click.option("--batch-size", type=int, default=None, help="Rows per device per step."),
        click.option("--max-length", type=int, default=None, help="Tokens per sequence, longer ones cut."),
        click.option("--seed", type=int, default=None, help="Seed of training and of --data weighting."),
        click.option("--lora", is_flag=True,
                     help="Train LoRA adapters; OUT gets merged weights, OUT/adapter the adapter."),
        click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
                     help="YAML of any TRL SFTConfig/DPOConfig/RewardConfig field (plus `lora:`); "
                          "options win."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


_min_preference = click.option(
    "--min-preference", type=click.FloatRange(0.0, 1.0), default=None, metavar="P",
    help="Keep only pairs whose judge preference P(chosen ≻ rejected) is at least P, in every "
         "split (needs the `preference` column a judged run writes).")


def _run(kind: str, **options) -> None:
    from selfalign.train.config import TrainSettings
    from selfalign.train.run import train as run_training

    record = run_training(TrainSettings(kind=kind, **options))
    metrics = record["metrics"]
    shown = {k: v for k, v in metrics.items()
             if k in ("train_loss", "eval_loss", "eval_rewards/accuracies", "eval_rewards/margins",
                      "eval_accuracy", "eval_margin")}
    summary = ", ".join(f"{k}={v:.4g}" for k, v in shown.items())
    click.echo(f"trained {kind} for {metrics['global_step']} steps in {record['wall_time_s']:.0f} s"
               f" ({summary}); model in {options['out']}")


@click.group()
def train() -> None:
    """Train on generated folders (SFT, DPO, a reward model, RL on it) through TRL."""


@train.command()
@_common_options
def sft(**options) -> None:
    """Supervised fine-tuning on sft/ (loss on the assistant answer only)."""
    _run("sft", **options)


@train.command()
@_common_options
@click.option("--beta", type=float, default=None, help="DPO beta: how far from the reference (default 0.1).")
@click.option("--loss-type", default=None, help="DPO loss, e.g. sigmoid (default), ipo, hinge, robust.")
@_min_preference
def dpo(**options) -> None:
    """Direct preference optimisation on prefs/ (reference = the start model)."""
    _run("dpo", **options)


@train.command()
@_common_options
@_min_preference
def rm(**options) -> None:
    """Reward model on prefs/: soft labels from `preference`, a prompt's pairs batched together.

    A sequence classifier with one output, trained one epoch by default. Each batch element is one
    prompt with all its pairs, each pair weighted 1/(its prompt's pairs); --batch-size counts
    prompts. Pairs longer than --max-length tokens are left out (counted in
    selfalign-train.json). Accuracy is the share of pairs with r(chosen) > r(rejected).
    """
    _run("rm", **options)


def _weights(ctx, param, value):
    if value is None:
        return None
    try:
        return [float(w) for w in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, e.g. 1,0.5; got {value!r}")


@train.command()
@click.option("--model", default=None,
              help="The SFT model: where the policy starts and the KL reference (default: the "
                   "embedded SmolLM2-135M).")
@click.option("--prompts", multiple=True, required=True, metavar="PATH",
              help="Prompts, any source `generate` reads. A prepared folder gives its train split "
                   "to train on and its validation split to the reward-hacking watch.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for the policy, tokenizer, selfalign-train.json, metrics.jsonl, "
                   "report.md, reward_kl.png and samples/.")
@click.option("--reward-model", default=None, metavar="DIR",
              help="The --out folder of `selfalign train rm` (needed by --reward rm, rm+judge and "
                   "rm+checks).")
@click.option("--algo", type=click.Choice(["rloo", "grpo"]), default="rloo", show_default=True,
              help="TRL's RLOOTrainer (PPO's documented successor) or GRPOTrainer.")
@click.option("--reward", type=click.Choice(["rm", "judge", "rm+judge", "checks", "rm+checks"]),
              default="rm", show_default=True,
              help="Reward source(s): the reward model, the live judge (P(completion ≻ the SFT "
                   "model's answer)), the checks (the share of its prompt's checks a completion "
                   "passes: the --principles' `checks:`, or an IFEval-format row's own "
                   "instructions), or a sum of two.")
@click.option("--checks-weight", type=float, default=None, metavar="W",
              help="With --reward rm+checks: the checks' weight beside the reward model's 1.")
@click.option("--reward-weights", callback=_weights, default=None, metavar="W1,W2",
              help="Weight of each source of --reward, in its order (default: 1 each).")
@click.option("--beta", type=float, default=0.05, show_default=True,
              help="KL penalty towards the SFT model, for RLOO and GRPO alike; 0 turns it off.")
@click.option("--samples", type=int, default=4, show_default=True,
              help="Completions per prompt (TRL's num_generations).")
@click.option("--max-completion-length", type=int, default=64, show_default=True,
              help="Tokens per completion.")
@click.option("--temperature", type=float, default=None,
              help="Sampling temperature of the completions [default: TRL's 1.0]; the watch "
                   "answers greedily, and a small model's samples at 1.0 are far from that.")
@click.option("--max-steps", type=int, default=None, help="Stop after this many optimiser steps.")
@click.option("--epochs", type=float, default=None, help="Passes over the train prompts.")
@click.option("--learning-rate", type=float, default=None, help="Default: TRL's 1e-6.")
@click.option("--batch-size", type=int, default=None,
              help="Completions per device per step, a multiple of --samples (default 8).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of sampling, training and the judge's principle draws.")
@click.option("--lora", is_flag=True,
              help="Train LoRA adapters; OUT gets merged weights, OUT/adapter the adapter.")
@click.option("--use-vllm", is_flag=True,
              help="Generate completions with vLLM on the training GPU (TRL's colocate mode; "
                   "needs a GPU and the `vllm` package).")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="YAML of any TRL RLOOConfig/GRPOConfig field (plus `lora:`); options win.")
@click.option("--principles", multiple=True, metavar="PATH",
              help="The judge's comparison principles (file, folder or constitution); with "
                   "--reward checks, whose `checks:` score every prompt without its own.")
@click.option("--judge-model", default=None, help="The judge [default: the SFT model].")
@click.option("--judge-base-url", multiple=True, metavar="URL",
              help="OpenAI-compatible servers of --judge-model (repeat for several).")
@click.option("--judge-principles", type=int, default=1, show_default=True,
              help="Comparison principles drawn per judged completion, labels averaged.")
@click.option("--reference-run", type=click.Path(path_type=Path), default=None, metavar="RUN_DIR",
              help="A generate run of the SFT model whose sft/ answers are the judge's reference; "
                   "prompts it lacks are answered by the SFT model before training.")
@click.option("--backend", type=click.Choice(["vllm", "transformers"]), default="vllm",
              show_default=True, help="In-process engine for reference answers and a local judge.")
@click.option("--sample-every", type=int, default=10, show_default=True,
              help="Save the generation batch's completions every this many steps (samples/).")
@click.option("--held-out", type=int, default=32, show_default=True,
              help="Validation prompts answered and scored at the start and the end.")
def rl(**options) -> None:
    """RL on the reward model, the live judge or the checks: RLOO or GRPO from the SFT model, on
    a KL leash.

    The reward model scores each conversation exactly as `train rm` saw it in training; the
    checks reward a completion with the share of its prompt's checks it passes. Before and after
    training the policy answers held-out prompts; report.md says plainly when the RM reward rose
    while the judge's win rate or the answers' length tell another story, and gives the share of
    answers that pass their checks.
    """
    from selfalign.train.rl.run import train_rl
    from selfalign.train.rl.settings import RLSettings

    options["prompts"] = list(options["prompts"])
    options["principles"] = list(options["principles"])
    options["judge_base_url"] = list(options["judge_base_url"])
    record = train_rl(RLSettings(**options))
    curve, watch = record["curve"], record["watch"]
    click.echo(f"trained rl ({record['algo']}, reward {record['reward']}) for "
               f"{record['metrics']['global_step']} steps in {record['wall_time_s']:.0f} s: reward "
               f"{_number(curve['first_reward'])} → {_number(curve['last_reward'])}, KL "
               f"{_number(curve['last_kl'])}; model in {options['out']}")
    for note in watch["findings"]:
        click.echo(f"  {note}")


def _number(value) -> str:
    return "—" if value is None else f"{value:.4g}"
