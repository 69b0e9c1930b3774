"""`selfalign generate`: parse flags, merge them with run.yaml (and the manifest on resume)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click
from click.core import ParameterSource

from selfalign.errors import UserError
from selfalign.generate.options import check_retries_option, engine_options, model_options
from selfalign.generate.settings import (LOCAL_RAY, RAY_FIELDS, GenerateSettings,
                                        load_run_config, merge_settings)
from selfalign.prompts.commands import (
    BEHAVIOR_HELP, BEHAVIORS, CONVERSATION_HELP, CONVERSATION_MODES, HARMFUL_CATEGORIES_HELP,
    PROMPT_FORMAT_HELP, PROMPT_FORMATS, PROMPT_TEMPLATE_HELP)

_D = GenerateSettings()


@click.command()
@click.option("--principles", multiple=True, metavar="PATH",
              help="Principle file, folder of them, or constitution manifest (repeatable).")
@click.option("--prompts", multiple=True, metavar="PATH",
              help="JSONL, parquet, CSV, prepared folder, or - for JSONL on stdin (repeatable).")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder for the run.")
@click.option("--config", "config_path", metavar="RUN.YAML",
              help="Settings file with the same names as these flags; flags win.")
@model_options
@click.option("--limit", type=int, default=None, help="Use at most this many prompts.")
@click.option("--shard-size", type=int, default=_D.shard_size, show_default=True,
              help="Prompts per checkpointed shard (the unit of resume; shards overlap in "
                   "the engine).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@click.option("--text-field", default=_D.text_field, show_default=True,
              help="The column or key that holds the prompt text.")
@click.option("--id-field", default=_D.id_field, show_default=True,
              help="The column or key that holds a prompt's id (a stable hash of the text where "
                   "absent).")
@click.option("--user-field", default=_D.user_field, show_default=True,
              help="The column or key that holds the user id, kept as provenance.")
@engine_options
@click.option("--prompt-format", type=click.Choice(PROMPT_FORMATS), default=_D.prompt_format,
              show_default=True, help=PROMPT_FORMAT_HELP)
@click.option("--prompt-template", default=None, help=PROMPT_TEMPLATE_HELP)
@click.option("--conversation", type=click.Choice(CONVERSATION_MODES), default=_D.conversation,
              show_default=True, help=CONVERSATION_HELP)
@click.option("--behavior", type=click.Choice(BEHAVIORS), default=None, help=BEHAVIOR_HELP)
@click.option("--harmful-categories", default=None, metavar="A,B", help=HARMFUL_CATEGORIES_HELP)
@click.option("--feedback", type=click.Choice(["verify", "rank"]), default=None,
              help="AI feedback: verify (judge each revision against its first answer) or "
                   "rank (judge all pairs of a prompt's --samples answers) [default: off].")
@click.option("--judge-principles", type=int, default=_D.judge_principles, show_default=True,
              help="Comparison principles drawn per pair; their labels are averaged.")
@click.option("--judge-cot", is_flag=True,
              help="The judge reasons before answering; labels are clamped to [0.4, 0.6].")
@click.option("--min-preference", type=float, default=_D.min_preference, show_default=True,
              help="verify: pairs the judge prefers less than this go to rejects.")
@click.option("--judge-model", default=None,
              help="Another checkpoint (or served model) as judge [default: the run's model].")
@click.option("--judge-base-url", multiple=True, metavar="URL",
              help="The judge's OpenAI-compatible servers [default: --base-url].")
@check_retries_option
@click.option("--ray", "ray", is_flag=False, flag_value=LOCAL_RAY, default=None,
              metavar="[ADDRESS]",
              help="Run on a Ray cluster, one engine per worker: ADDRESS as ray.init takes it "
                   "(auto, ray://host:10001); without one, a cluster on this machine for the "
                   "run. --out must be a folder every node sees.")
@click.option("--ray-workers", type=int, default=None,
              help="Ray workers, each with its own engine [default: as many as the cluster "
                   "holds].")
@click.option("--ray-cpus-per-worker", type=float, default=None,
              help="CPUs Ray reserves for each worker [default: without GPUs, one worker per "
                   "node with all that node's free CPUs (a vLLM CPU engine wants a node's cores "
                   "to itself); with GPUs, 1].")
@click.option("--ray-gpus-per-worker", type=float, default=None,
              help="GPUs Ray reserves for each worker [default: tensor × data parallel size "
                   "on a cluster with GPUs, else 0].")
@click.option("--shard-timeout", type=float, default=None, metavar="SECONDS",
              help="With --ray: a shard not back by then is sent again and its worker "
                   "restarted [default: 5 × the slowest shard so far, at least 300 s].")
@click.option("--shard-attempts", type=int, default=_D.shard_attempts, show_default=True,
              help="With --ray: attempts at one shard before its prompts go to rejects.parquet "
                   "as shard_failed (with the cause) and the run goes on.")
@click.option("--ray-start-timeout", type=float, default=_D.ray_start_timeout,
              show_default=True, metavar="SECONDS",
              help="With --ray: workers not placed on a node by then stop the run, naming what "
                   "each node has free.")
@click.option("--license", default=_D.license, show_default=True, metavar="ID",
              help="The dataset card's license (a Hub id: apache-2.0, cc-by-4.0, ...); other "
                   "leaves the choice to whoever publishes the data.")
@click.pass_context
def generate(ctx: click.Context, config_path: str | None, **flags) -> None:
    """Answer, critique and revise prompts under principles; write TRL-ready parquet."""
    from selfalign.engine import judge_checker, make_engine, model_resolver
    from selfalign.generate.plan import plan_run
    from selfalign.generate.run import run_generate
    from selfalign.stages.judge import OPTIONS

    settings = settings_from_cli(ctx, config_path, flags)
    log = lambda message: click.echo(message, err=True)  # noqa: E731
    cluster = None
    if settings.ray is not None:  # before anything is read or written: a bad address costs seconds
        from selfalign.generate.ray.cluster import connect

        cluster = connect(settings, log=log)
    try:
        judge_servers = replace(settings, base_url=settings.judge_base_url or settings.base_url)
        plan = plan_run(settings, model_resolver(settings),
                        resolve_judge=model_resolver(judge_servers),
                        check_judge=judge_checker(settings, OPTIONS))
        manifest = run_generate(plan, make_engine, log=log, cluster=cluster)
    finally:
        if cluster is not None:
            cluster.disconnect()
    click.echo(summary(manifest))


def settings_from_cli(ctx: click.Context, config_path: str | None, flags: dict) -> GenerateSettings:
    explicit = {k: v for k, v in flags.items()
                if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
    for name in ("principles", "prompts", "base_url", "judge_base_url"):
        if name in explicit:
            explicit[name] = list(explicit[name])
    from_file = load_run_config(config_path) if config_path else {}
    out = explicit.get("out") or from_file.get("out")
    if not out:
        raise UserError("no output folder: pass --out DIR (or set `out` in --config)")
    from_manifest = {}
    if explicit.get("resume") or from_file.get("resume"):
        from_manifest = _manifest_settings(Path(out))
    return merge_settings(from_file, from_manifest, explicit)


def _manifest_settings(out: Path) -> dict:
    """On --resume the run's own settings are the base, so `--out DIR --resume` is enough."""
    path = out / "manifest.json"
    if not path.exists():
        return {}  # plan_run explains that there is nothing to resume
    settings = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
    for where_it_ran in ("resume", *RAY_FIELDS):  # a resumed run runs where it is started
        settings.pop(where_it_ran, None)
    return settings


def summary(manifest: dict) -> str:
    counts = manifest["counts"]
    seconds = manifest["finished"] - manifest["started"]
    engine_s = counts["engine_seconds"] or 1e-9
    rejects = ", ".join(f"{k}: {v}" for k, v in sorted(counts["rejects"].items())) or "none"
    out = manifest["settings"]["out"]
    judged = counts.get("feedback")
    feedback = "" if not judged else (
        f"AI feedback ({judged['mode']}): {judged['pairs_judged']} pairs judged, mean preference "
        f"{_figure(judged['mean_preference'])}, confirmed {_figure(judged['confirmed_share'])}, "
        f"orders disagreed {_figure(judged['order_disagreement_rate'])}, first position won "
        f"{_figure(judged['first_position_win_rate'])} before averaging\n"
        + (f"warning: {judged['warning']}\n" if judged.get("warning") else ""))
    checked = counts.get("checks")
    feedback += "" if not checked else (
        f"checks: {checked['retries']} retries ({checked['retry_output_tokens']} output tokens), "
        f"{checked['check_failed']} check_failed, "
        f"{checked.get('echoes_instruction', 0)} echoes_instruction; "
        f"{_figure(checked['pairs_per_prompt'])} pairs per prompt\n")
    behaviors = counts.get("behaviors")
    feedback += "" if not behaviors else "kept by expected behaviour: " + ", ".join(
        f"{name} {line['kept']}/{line['samples']}" for name, line in behaviors.items()) + "\n"
    return (f"done: {counts['prompts']} prompts, {counts['samples']} samples → "
            f"{sum(counts['pairs'].values())} preference pairs {counts['pairs']}, "
            f"{sum(counts['sft'].values())} SFT rows\n"
            f"rejects by reason: {rejects}\n{feedback}"
            f"tokens: {counts['output_tokens']} out, {counts['prompt_tokens']} in "
            f"({counts['cached_prompt_tokens']} from prefix cache); "
            f"{counts['output_tokens'] / engine_s:.0f} output tok/s over {engine_s:.1f}s of "
            f"generation; wall time {seconds:.1f}s\n"
            f"written to {out}/ (prefs/, sft/, traces/, rejects.parquet, manifest.json, README.md)")


def _figure(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
