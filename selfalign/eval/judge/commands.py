"""`selfalign eval judge`: parse flags into JudgeEvalSettings, check, run, print the headline."""

from __future__ import annotations

from dataclasses import fields
from functools import partial

import click

from selfalign.eval.engine_options import local_engine_options, server_options
from selfalign.eval.judge.run import BACKENDS, JudgeEvalSettings

_D = {f.name: f.default for f in fields(JudgeEvalSettings)}  # the defaults, for --help


@click.command("judge")
@click.option("--pairs", multiple=True, required=True, metavar="PATH",
              help="Human-labelled pairs: TRL preference rows (prompt/chosen/rejected, or "
                   "chosen/rejected conversations) or HH-RLHF transcripts; JSONL, JSON, parquet, "
                   "CSV, gzipped, or a folder of them (repeatable).")
@click.option("--principles", multiple=True, required=True, metavar="PATH",
              help="Principle file, folder or constitution manifest; each principle needs a "
                   "`comparison` question (repeatable).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder for judge.json, pairs.parquet, rejects.parquet, report.md and plots.")
@click.option("--judge-model", default=None, help="The judge: a checkpoint folder or model id "
              "[default: the embedded SmolLM2-135M-Instruct, as in generate].")
@click.option("--judge-base-url", multiple=True, metavar="URL",
              help="An OpenAI-compatible server that judges (repeatable); name its model with "
                   "--model.")
@click.option("--model", default=None, help="With --judge-base-url: the name the server gives "
              "the judge model.")
@click.option("--reward-model", type=click.Path(), default=None, metavar="DIR",
              help="A reward model (sequence classifier, one label) that also scores both answers.")
@click.option("--limit", type=int, default=None, help="Judge at most this many pairs, a sample "
              "drawn with --seed (the same pairs on every re-run).")
@click.option("--seed", type=int, default=_D["seed"], show_default=True,
              help="Seeds the --limit sample, the principle draws and the judge's requests.")
@click.option("--subset-field", default=None, metavar="FIELD",
              help="A column that groups pairs (RewardBench's `subset`, a `category`): figures "
                   "per group.")
@click.option("--judge-principles", type=int, default=_D["judge_principles"], show_default=True,
              help="Principles drawn per pair (each asked in both orders), as in generate.")
@click.option("--judge-cot", is_flag=True, help="Let the judge reason before it answers, as "
              "generate --judge-cot does (labels clamped to 0.4-0.6).")
@click.option("--max-tokens", type=int, default=_D["max_tokens"], show_default=True,
              help="Tokens of the judge's reasoning with --judge-cot.")
@click.option("--backend", type=click.Choice(BACKENDS), default=_D["backend"], show_default=True,
              help="Engine of a local judge (a --judge-base-url server uses the openai backend).")
@local_engine_options
@server_options
def judge_command(**flags) -> None:
    """Measure a judge (and a reward model) against human-labelled pairs: accuracy with its
    interval, position bias, calibration; write judge.json, pairs.parquet and a report."""
    from selfalign.engine import judge_checker, make_engine, model_resolver
    from selfalign.eval.judge.run import plan_judge_eval, run_judge_eval
    from selfalign.eval.run import _resolved, constitution_judge
    from selfalign.stages.judge import OPTIONS

    settings = JudgeEvalSettings(**flags)
    judge = constitution_judge(cot=settings.judge_cot, max_tokens=settings.max_tokens)
    resolve = model_resolver(settings)
    if settings.backend != "openai":  # messages name the flag a local judge came from
        resolve = partial(_resolved, resolve, "--judge-model")
    plan = plan_judge_eval(settings, judge, resolve, judge_checker(settings, OPTIONS))
    log = lambda message: click.echo(message, err=True)  # noqa: E731
    log(f"eval judge: {len(plan.pairs)} pairs ({plan.read} usable, {len(plan.rejects)} rows "
        f"rejected); judge {plan.judge_model}")
    evaluation = run_judge_eval(plan, make_engine, judge, log=log)
    click.echo(summary(evaluation, plan))


def summary(evaluation: dict, plan) -> str:
    overall = evaluation["overall"]
    lines = []
    if overall["pairs"]:
        accuracy = overall["accuracy"]
        lines.append(f"accuracy {accuracy['rate']:.3f} (95% CI {accuracy['ci'][0]:.3f}-"
                     f"{accuracy['ci'][1]:.3f}) over {overall['pairs']} pairs; first-position "
                     f"rate {overall['first_position_rate']:.3f}; orders disagreed on "
                     f"{overall['order_disagreement_rate']:.3f}")
    else:
        lines.append("no pair could be judged")
    reward = overall["reward"]
    if reward:
        lines.append(f"reward model accuracy {reward['accuracy']['rate']:.3f} (95% CI "
                     f"{reward['accuracy']['ci'][0]:.3f}-{reward['accuracy']['ci'][1]:.3f})")
    lines += [f"warning: {w}" for w in evaluation["warnings"]]
    plots = sorted(p.name for p in plan.out.glob("*.png"))
    lines.append(f"written to {plan.out}/: judge.json, pairs.parquet, rejects.parquet, "
                 f"report.md{''.join(', ' + p for p in plots)}")
    return "\n".join(lines)
