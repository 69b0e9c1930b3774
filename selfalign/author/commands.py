"""`selfalign principles try` and `principles new`: thin click commands over selfalign.author."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from selfalign.generate.options import check_retries_option, engine_options, model_options


@click.command("try")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path),
                metavar="PRINCIPLE...")
@click.option("--prompt", "texts", multiple=True, metavar="TEXT",
              help="A prompt to try (repeatable) [default: the built-in sample].")
@click.option("--prompts", "prompt_files", multiple=True, metavar="PATH",
              help="Prompts from a file, as generate reads them (repeatable).")
@click.option("--limit", type=int, default=None,
              help="Prompts to try from --prompts or the sample [default: 4].")
@click.option("--watch", is_flag=True,
              help="Keep the model loaded and try again on every save of a principle, "
                   "exemplar or constitution file; Ctrl-C stops.")
@click.option("--against", metavar="FILE|REV",
              help="Also try another version of the first file (an old copy, or a git "
                   "revision such as HEAD) on the same prompts and seeds, and show where they "
                   "differ.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per trial on stdout, for tools.")
@model_options
@engine_options
@check_retries_option
def try_command(paths: tuple[Path, ...], texts: tuple[str, ...],
                prompt_files: tuple[str, ...], limit: int | None, watch: bool,
                against: str | None, as_json: bool, **flags) -> None:
    """Answer, critique and revise a few prompts under principles, the way generate does, and
    show each answer, critique, revision (as a word diff), check verdict and per-principle
    figures.

    PRINCIPLE is a principle file, a folder of them or a constitution manifest, as generate's
    --principles takes. Nothing is written. Colour only on a terminal (NO_COLOR turns it off).
    """
    from selfalign.author.prompts import trial_prompts
    from selfalign.author.render import Page, wants_colour
    from selfalign.author.session import Session, load_or_none, run_session
    from selfalign.author.versions import load_other_version
    from selfalign.constitution import load_constitution
    from selfalign.constitution.loader import display
    from selfalign.engine import make_engine, model_resolver
    from selfalign.generate.settings import GenerateSettings
    from selfalign.prompts.sources import FieldMap

    flags["base_url"] = list(flags["base_url"])
    settings = GenerateSettings(principles=[str(p) for p in paths],
                                prompts=list(prompt_files), limit=limit, **flags)
    records = trial_prompts(texts, prompt_files, limit, FieldMap.from_settings(settings))
    session = Session(list(paths), settings, records, Page(wants_colour(sys.stdout)), sys.stdout,
                      sys.stderr, as_json=as_json, label=", ".join(display(p) for p in paths))
    # Bad files stop a single trial before the model loads; --watch waits for a good save.
    constitution = load_or_none(session) if watch else load_constitution(paths)
    if against:
        session.old = load_other_version(paths, against)
    model = model_resolver(settings)(settings.model)
    status = asyncio.run(run_session(session, constitution, lambda: make_engine(settings, model),
                                     watch))
    sys.exit(status)


@click.command("new")
@click.argument("name")
@click.option("--checks", "kinds", multiple=True, metavar="KIND",
              help="A check to start from, with example arguments (repeatable; `selfalign "
                   "checks list` lists the kinds).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write it [default: NAME.yaml here].")
@click.option("--force", is_flag=True, help="Replace a file that exists already.")
@click.option("--try/--no-try", "then_try", default=True, show_default=True,
              help="Then try it on the built-in sample prompts with the embedded model, as "
                   "`principles try` does (--no-try: only write and check the file).")
@click.option("--watch", is_flag=True,
              help="Keep trying it on every save of the file (`principles try --watch`).")
@click.pass_context
def new_command(ctx: click.Context, name: str, kinds: tuple[str, ...], out: Path | None,
                force: bool, then_try: bool, watch: bool) -> None:
    """Write a commented principle file to start from, check it, and try it."""
    from selfalign.author.starter import write_starter
    from selfalign.constitution import load_constitution

    path = write_starter(name, kinds, out or Path(f"{name}.yaml"), force=force)
    load_constitution([path])  # what validate runs: the starting file must pass it
    click.echo(f"wrote {path}: a valid principle to edit. Try it on sample prompts, again on "
               f"every save:\n  selfalign principles try {path} --watch")
    if then_try or watch:
        ctx.invoke(try_command, paths=(path,), watch=watch)
