"""Placeholder: being written."""
import click


@click.command()
def generate() -> None:
    """(not yet implemented)"""
    raise click.ClickException("not implemented yet")
