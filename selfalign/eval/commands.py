"""`selfalign eval`: parse flags into EvalSettings, check, run, print what was written."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import click

from selfalign.eval.engine_options import local_engine_options, server_options
from selfalign.eval.refusal import HARMFUL_CATEGORIES
from selfalign.eval.settings import BACKENDS, EvalSettings

_D = {f.name: f.default for f in fields(EvalSettings)}  # the defaults, for --help


@click.group("eval", invoke_without_command=True)
@click.option("--model", help="The candidate: checkpoint folder or model id (for "
              "--backend openai, the name its server gives it).")
@click.option("--baseline", default=None, help="What the candidate is compared with [default: "
              "the embedded SmolLM2-135M-Instruct]. The same as --model makes a null test.")
@click.option("--judge-model", default=None, help="The model that judges [default: the baseline].")
@click.option("--prompts", multiple=True, metavar="PATH",
              help="JSONL, parquet, CSV, prepared folder, or - for JSONL on stdin (repeatable).")
@click.option("--principles", multiple=True, metavar="PATH",
              help="Principle file, folder or constitution manifest; each principle needs a "
                   "`comparison` question (repeatable).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder for eval.json, answers.parquet, report.md and the plots.")
@click.option("--split", default=None, help="Rows of this split only [default: `test` for a "
              "prepared folder, every row of other inputs].")
@click.option("--limit", type=int, default=None, help="Use at most this many prompts.")
@click.option("--tie-band", type=float, default=_D["tie_band"], show_default=True,
              help="A preference within this distance of 0.5 is a tie.")
@click.option("--judge-principles", type=int, default=_D["judge_principles"], show_default=True,
              help="Principles drawn per comparison (each asked in both orders).")
@click.option("--judge-cot", is_flag=True, help="Let the judge reason before it answers.")
@click.option("--reward-model", type=click.Path(), default=None, metavar="DIR",
              help="A reward model (sequence classifier, one label) that also scores every answer.")
@click.option("--checks-only", is_flag=True,
              help="Score both models' answers with the principles' `checks:` only (and the "
                   "--ifeval file's instructions); no judge model is loaded or asked.")
@click.option("--ifeval", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Also have both models answer this prompt file in IFEval's format (key, "
                   "prompt, instruction_id_list, kwargs; IFEval's own is "
                   "selfalign/data/ifeval/input_data.jsonl) and report IFEval's four figures "
                   "for each, prompt and instruction level, strict and loose.")
@click.option("--xstest", is_flag=True,
              help="Also have both models answer XSTest's 450 prompts (bundled; 250 safe ones to "
                   "answer, 200 unsafe ones to decline) and report the safety figures by prompt "
                   "type. With --checks-only, or without --prompts, no judge is needed.")
@click.option("--harmful-categories", default=",".join(HARMFUL_CATEGORIES), show_default=True,
              help="`category` values of harmful prompts; any other category is benign, so a "
                   "refusal there is an over-refusal.")
@click.option("--text-field", default=_D["text_field"], show_default=True,
              help="Column holding the prompt text (or a message list).")
@click.option("--id-field", default=_D["id_field"], show_default=True,
              help="Column holding the prompt id.")
@click.option("--user-field", default=_D["user_field"], show_default=True,
              help="Column naming the user, kept with each answer.")
@click.option("--backend", type=click.Choice(BACKENDS), default=_D["backend"], show_default=True,
              help="Engine that answers and judges.")
@click.option("--max-tokens", type=int, default=_D["max_tokens"], show_default=True,
              help="Longest answer in tokens.")
@click.option("--temperature", type=float, default=_D["temperature"], show_default=True,
              help="Sampling temperature of both answers.")
@click.option("--top-p", type=float, default=_D["top_p"], show_default=True,
              help="Nucleus sampling: the smallest set of tokens with this much probability.")
@click.option("--seed", type=int, default=_D["seed"], show_default=True,
              help="Seed of the per-request sampling seeds.")
@local_engine_options
@click.option("--base-url", multiple=True, metavar="URL",
              help="OpenAI-compatible server of every model, for --backend openai (repeatable).")
@click.option("--candidate-base-url", multiple=True, metavar="URL",
              help="Server of the candidate only (repeatable).")
@click.option("--baseline-base-url", multiple=True, metavar="URL",
              help="Server of the baseline only (repeatable).")
@click.option("--judge-base-url", multiple=True, metavar="URL",
              help="Server of the judge only [default: those of the model it is].")
@server_options
@click.pass_context
def eval_command(ctx: click.Context, harmful_categories: str, **flags) -> None:
    """Compare a trained model with its base: both answer, a judge compares under the
    constitution in both orders; write the win rate with its interval and a report. Both
    answers are also scored with the principles' checks (pass rates, McNemar's test), with no
    judge at all under --checks-only.

    `selfalign eval judge` measures the judge itself against human-labelled pairs."""
    if ctx.invoked_subcommand is not None:
        return
    # Required only without a subcommand, so they are checked here rather than by click.
    # --xstest and --ifeval bring their own prompts: alone they need no --prompts nor principles.
    alone = not flags["prompts"] and (flags["xstest"] or flags["ifeval"])
    missing = [f"'--{name}'" for name in ("model", "prompts", "principles", "out")
               if not flags[name] and not (alone and name in ("prompts", "principles"))]
    if missing:
        raise click.UsageError(f"Missing option {', '.join(missing)}.", ctx)
    from selfalign.engine import judge_checker, make_engine, resolve_model
    from selfalign.eval.run import constitution_judge, plan_eval, run_eval
    from selfalign.stages.judge import OPTIONS

    categories = tuple(c.strip() for c in harmful_categories.split(",") if c.strip())
    settings = EvalSettings(harmful_categories=categories, **flags)
    judge = constitution_judge(cot=settings.judge_cot, max_tokens=settings.max_tokens)
    check_judge = (judge_checker(settings.for_role("judge"), OPTIONS) if settings.needs_judge
                   else None)
    plan = plan_eval(settings, resolve_model, judge, check_judge=check_judge)
    log = lambda message: click.echo(message, err=True)  # noqa: E731
    log(f"eval: {len(plan.records)} prompts"
        + (f", {len(plan.xstest)} XSTest prompts" if plan.xstest else "")
        + f"; candidate {plan.models['candidate']}, baseline {plan.models['baseline']}, "
        + (f"judge {plan.models['judge']}" if settings.needs_judge else
           "no judge (--checks-only)" if settings.checks_only else "no judge (no --prompts)")
        + (" (same model: a null test)" if plan.same_model else ""))
    evaluation = run_eval(plan, make_engine, judge, log=log)
    click.echo(summary(evaluation, plan.out))


def summary(evaluation: dict, out: Path) -> str:
    from selfalign.eval.checks_report import checks_lines
    from selfalign.eval.report import counts_text
    from selfalign.eval.safety_report import safety_lines

    if evaluation.get("checks_only"):
        headline = ("no judge (--checks-only)" if evaluation["settings"]["checks_only"]
                    else "no judge (no --prompts)")
    elif evaluation["judged"]:
        low, high = evaluation["win_rate_ci"]
        soft = evaluation["preference_win_rate"]
        headline = (f"win rate {evaluation['win_rate']:.3f} (95% CI {low:.3f}-{high:.3f}) over "
                    f"{evaluation['judged']} prompts: {counts_text(evaluation)}\n"
                    f"preference-weighted win rate {soft['rate']:.3f} (95% bootstrap CI "
                    f"{soft['ci'][0]:.3f}-{soft['ci'][1]:.3f}): mean P(candidate better)")
    else:
        headline = f"no prompt could be judged ({evaluation['skipped']})"
    headline += "".join(f"\n{line}" for line in checks_lines(evaluation)
                        + safety_lines(evaluation))
    plots = sorted(p.name for p in out.glob("*.png"))
    return (f"{headline}\nwritten to {out}/: eval.json, answers.parquet, report.md, "
            f"{', '.join(plots) or 'no plots'}")


def _add_subcommands() -> None:
    from selfalign.eval.judge.commands import judge_command
    from selfalign.eval.summary import summary_command

    eval_command.add_command(judge_command)
    eval_command.add_command(summary_command)


_add_subcommands()
