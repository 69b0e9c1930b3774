"""`selfalign train sft|dpo|rm`: parse options, call selfalign.train.run.train, print a summary."""

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
        click.option("--learning-rate", type=float, default=None),
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
    """Train on generated folders (SFT, DPO or a reward model through TRL)."""


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
