"""Starting the app: checks that refuse an unsafe bind, then uvicorn in this process."""

from __future__ import annotations

from pathlib import Path

from selfalign.errors import UserError
from selfalign.label.auth import is_loopback
from selfalign.label.project import open_project


def serve_project(out: Path, host: str, port: int, db_path: Path | None = None,
                  tasks_path: Path | None = None, log=print) -> None:
    import uvicorn

    from selfalign.label.app import create_app

    project = open_project(out, db_path, tasks_path, log=log)
    if not is_loopback(host) and project.db.active_tokens() == 0:
        raise UserError(f"--host {host}: refusing to serve beyond this machine with no labeller "
                        f"tokens; add one first with `selfalign label add {out} NAME`")
    log(f"serving {project.run.out} on http://{host}:{port}/ (labels: {project.db.path})")
    uvicorn.run(create_app(project), host=host, port=port, log_level="warning",
                access_log=False)
