"""Placeholder: being written."""
import click


@click.group()
def prompts() -> None:
    """Read and prepare prompt streams."""
