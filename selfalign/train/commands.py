"""Placeholder: being written."""
import click


@click.group()
def train() -> None:
    """Train on a generated folder (SFT or DPO through TRL)."""
