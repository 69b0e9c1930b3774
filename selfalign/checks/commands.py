"""`selfalign checks` and `checks list`. `checks score` reads constitutions and finished runs,
which sit above the checks, so it lives in `selfalign/eval/checks_commands.py` and `cli.py`
adds it to this group."""

from __future__ import annotations

import click


@click.group("checks")
def checks() -> None:
    """Rules a reply is verified against by code, with no judge: IFEval's and selfalign's own."""


@checks.command("list")
def list_kinds() -> None:
    """Print every kind of check with its arguments (type, choices) and an example."""
    from selfalign.checks.listing import describe_kinds

    click.echo(describe_kinds())
