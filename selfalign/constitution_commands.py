"""Placeholder: being written."""
import click


@click.command()
def validate() -> None:
    """(not yet implemented)"""
    raise click.ClickException("not implemented yet")
