"""`selfalign verify OUT`: thin click command over selfalign.store.verify (kept apart so
`selfalign --help` does not import pyarrow)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
def verify(out: Path) -> None:
    """Check an output folder against its manifest and ledger; exit 0 only if all holds."""
    from selfalign.store.verify import verify_folder

    verdict = verify_folder(out)
    click.echo(verdict.report(out))
    if not verdict.ok:
        raise SystemExit(1)
