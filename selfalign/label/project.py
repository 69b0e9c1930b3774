"""A labelling project: a finished run, its task file and its labels database, opened together
and checked, with each task's items drawn into the database the first time it is served."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfalign.errors import UserError
from selfalign.label.db import LabelDB
from selfalign.label.items import draw_items
from selfalign.label.tasks import TASKS_FILE, TaskFile, labels_dir, load_tasks
from selfalign.store.reader import FinishedRun, open_finished_run

DB_FILE = "labels.sqlite"


@dataclass
class Project:
    run: FinishedRun
    tasks: TaskFile
    db: LabelDB

    @property
    def labels_dir(self) -> Path:
        return labels_dir(self.run.out)


def open_project(out: Path, db_path: Path | None = None, tasks_path: Path | None = None,
                 sync: bool = True, log=print) -> Project:
    """The run, its tasks and its database; with `sync`, each task's items drawn if new."""
    run = open_finished_run(Path(out))
    tasks_path = tasks_path or labels_dir(run.out) / TASKS_FILE
    if not Path(tasks_path).is_file():
        raise UserError(f"{tasks_path}: no task file; write one with "
                        f"`selfalign label init {run.out}`")
    tasks = load_tasks(tasks_path)
    db = LabelDB(db_path or labels_dir(run.out) / DB_FILE)
    project = Project(run, tasks, db)
    if sync:
        sync_items(project, log)
    return project


def sync_items(project: Project, log=print) -> None:
    """Draw the items of every task whose selection changed (or that is new). A task that
    already has labels keeps its items: changing which items it holds would orphan them."""
    project.db.retire_tasks_except([task.name for task in project.tasks.tasks])
    for position, task in enumerate(project.tasks.tasks):
        sha = task.selection_sha(project.tasks.seed, project.run.manifest_sha256)
        state = project.db.task_state(task.name)
        if state is not None and state[0] == sha:
            project.db.set_task_position(task.name, position)
            continue
        if state is not None and project.db.labels_of_task(task.name):
            raise UserError(f"{project.tasks.path}: task {task.name!r} has labels, and its item "
                            "selection (limit, splits, overlap, gold, seed) changed; give the "
                            "changed task a new name, or put the old values back")
        counts = project.db.replace_items(task, position, sha,
                                          draw_items(project.run, task, project.tasks.seed))
        log(f"task {task.name}: {counts['items']} items drawn "
            f"({counts['overlap']} overlap, {counts['gold']} gold)")
