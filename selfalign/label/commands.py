"""`selfalign label ...`: thin click commands over the label package."""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_PORT = 8800
_db = click.option("--db", "db_path", type=click.Path(path_type=Path), default=None,
                   help="The labels database (default: OUT/labels/labels.sqlite).")
_tasks = click.option("--tasks", "tasks_path", type=click.Path(path_type=Path), default=None,
                      help="The task file (default: OUT/labels/tasks.yaml).")
_out = click.argument("out", type=click.Path(path_type=Path))


@click.group("label")
def label() -> None:
    """People compare, rank, rate and flag a run's outputs in a browser; their agreement is
    measured; their labels train the reward model and grade the judge."""


@label.command("init")
@_out
def init(out: Path) -> None:
    """Write OUT/labels/tasks.yaml (one `compare` task over the run's pairs; a `rank` task too
    for a --feedback rank run) and instructions.md, with comments."""
    from selfalign.label.tasks import write_task_files
    from selfalign.store.reader import open_finished_run

    run = open_finished_run(out)
    counts = (run.manifest.get("counts") or {}).get("pairs")  # pairs per split
    pairs = sum(counts.values()) if isinstance(counts, dict) else 200
    ranked = (run.manifest.get("settings") or {}).get("feedback") == "rank"
    path = write_task_files(out, ranked, pairs)
    click.echo(f"wrote {path} and {path.parent / 'instructions.md'}; next: "
               f"`selfalign label add {out} NAME --owner`, then `selfalign label serve {out}`")


@label.command("serve")
@_out
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Beyond loopback every request needs a labeller's token.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int,
              help="The port to listen on.")
@_db
@_tasks
def serve(out: Path, host: str, port: int, db_path: Path | None,
          tasks_path: Path | None) -> None:
    """Serve the labelling app over a finished run (one process, SQLite, works offline)."""
    from selfalign.label.server import serve_project

    serve_project(out, host, port, db_path, tasks_path, log=click.echo)


@label.command("add")
@_out
@click.argument("name")
@click.option("--owner", is_flag=True,
              help="The task's owner: labels gold items first, sees the report and browse pages.")
@click.option("--url", "base_url", default=f"http://127.0.0.1:{DEFAULT_PORT}", show_default=True,
              help="Where the app is served, for the printed link.")
@_db
@_tasks
def add(out: Path, name: str, owner: bool, base_url: str, db_path: Path | None,
        tasks_path: Path | None) -> None:
    """Add a labeller and print their URL, which carries their token (shown once)."""
    from selfalign.label.project import open_project

    project = open_project(out, db_path, tasks_path, sync=False)
    token = project.db.add_labeller(name, owner=owner)
    click.echo(f"{base_url.rstrip('/')}/start?token={token}")


@label.command("revoke")
@_out
@click.argument("name")
@_db
@_tasks
def revoke(out: Path, name: str, db_path: Path | None, tasks_path: Path | None) -> None:
    """End a labeller's access: their token and sessions stop working; their labels stay."""
    from selfalign.label.project import open_project

    open_project(out, db_path, tasks_path, sync=False).db.revoke(name)
    click.echo(f"revoked {name}")


@label.command("report")
@_out
@click.option("--reward-model", default=None,
              help="A reward model folder (`train rm --out`) to score against people too.")
@_db
@_tasks
def report(out: Path, reward_model: str | None, db_path: Path | None,
           tasks_path: Path | None) -> None:
    """Agreement and screening: OUT/labels/report.md, report.json and plots."""
    from selfalign.label.project import open_project
    from selfalign.label.report_files import write_report

    path, figures = write_report(open_project(out, db_path, tasks_path, sync=False),
                                 reward_model)
    between = figures["between_labellers"]["with_ties"]["rate"]
    click.echo(f"wrote {path} ({figures['labels']} labels; between labellers: "
               + ("n/a" if between is None else f"{between:.1%}") + ")")


@label.command("export")
@_out
@click.option("--out", "folder", required=True, type=click.Path(path_type=Path),
              help="A new folder: `train rm --data` and `eval judge --pairs` read it as is.")
@click.option("--drop-ties", is_flag=True,
              help="Leave ties out instead of counting them half for each reply.")
@_db
@_tasks
def export(out: Path, folder: Path, drop_ties: bool, db_path: Path | None,
           tasks_path: Path | None) -> None:
    """People's labels as TRL preference pairs (and rewritten replies as SFT rows)."""
    from selfalign.label.export import export_labels
    from selfalign.label.project import open_project

    manifest = export_labels(open_project(out, db_path, tasks_path, sync=False), folder,
                             drop_ties)
    click.echo(f"wrote {folder}: pairs {manifest['counts']['prefs']}, "
               f"demonstrations {manifest['counts']['sft']}")


@label.command("import")
@_out
@click.argument("file", type=click.Path(path_type=Path))
@_db
@_tasks
def import_command(out: Path, file: Path, db_path: Path | None, tasks_path: Path | None) -> None:
    """Read labels made elsewhere (CSV or JSON Lines: item, labeller, answer) into the database."""
    from selfalign.label.import_labels import import_labels
    from selfalign.label.project import open_project

    counts = import_labels(open_project(out, db_path, tasks_path), file)
    click.echo(f"imported {counts['added']} labels ({counts['already_there']} already there)")
