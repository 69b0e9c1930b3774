"""`selfalign validate`: run the constitution loader over files, folders and manifests."""

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
