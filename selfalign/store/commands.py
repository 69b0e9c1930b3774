"""`selfalign verify OUT`: thin click command over selfalign.store.verify (kept apart so
`selfalign --help` does not import pyarrow)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
def verify(out: Path) -> None:
    """Check an output folder against its manifest and ledger.

    Exit status: 0 the run is complete and everything checked holds; 1 something is damaged or
    missing; 3 nothing is damaged but the run is not finished (still running, or interrupted:
    resume it), so there is no data to use yet. `verify OUT && selfalign train ...` trains only
    on a finished, intact run.
    """
    from selfalign.store.verify import verify_folder

    verdict = verify_folder(out)
    click.echo(verdict.report(out))
    raise SystemExit(verdict.exit_status)
