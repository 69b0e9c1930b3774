"""`selfalign validate` (the constitution loader over files, folders and manifests) and `selfalign
principles import` (published constitutions into YAML)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check principle files, folders and constitution manifests; print every problem.

    Prints one problem per line as `file:line: field: message` and exits 1 if there are any;
    otherwise prints a one-line summary and exits 0.
    """
    from selfalign.constitution import check_paths, summarize

    constitution, problems = check_paths(paths)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        files = len({p.file for p in problems})
        click.echo(f"{len(problems)} problem{'s' * (len(problems) != 1)} in "
                   f"{files} file{'s' * (files != 1)}", err=True)
        sys.exit(1)
    click.echo(f"ok: {summarize(constitution)}")


@click.group()
def principles() -> None:
    """Work with principle libraries."""


@principles.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write constitution.yaml, principles/ and exemplars/ into.")
@click.option("--force", is_flag=True, help="Replace files that exist already.")
def import_(files: tuple[Path, ...], out: Path, force: bool) -> None:
    """Convert published constitutions (JSON) into principle, exemplar and manifest YAML.

    Reads the Constitutional AI paper's critique/revision instructions, few-shot transcripts and
    comparison questions, and the Hugging Face recipe's {"constitutions", "system_chat"} file;
    several FILES may be given together. Run `selfalign validate OUT/constitution.yaml` to check
    the result and pass it to `generate --principles`.
    """
    from selfalign.constitution.importer import import_constitution

    result = import_constitution(files, out, force=force)
    click.echo(f"imported {result.summary()}")
    for note in result.notes:
        click.echo(f"  note: {note}")
