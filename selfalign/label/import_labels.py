"""`label import`: labels made elsewhere (a spreadsheet, another tool) read into the database.

One row per label, CSV with a header or JSON Lines: `item` (the item id the app and the export
use, or the item's key with a `task` column), `labeller` (a name; created without a token if
new), `answer`, optional `note`. Answers are in the run's terms, since no display order was
shown: for `compare` `chosen` (the run's revision), `rejected`, `tie` or `skip`; for `rank` a
list of reply indices (0-based, the run's sample order) best first; for `rate` a score 1 to 7;
for `flags` a list of flag names.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from selfalign.errors import UserError
from selfalign.label.answers import BadAnswer, stored_answer
from selfalign.label.project import Project

COMPARE_IMPORT = {"chosen": "a", "rejected": "b", "tie": "tie", "skip": "skip"}


def import_labels(project: Project, path: Path, source: str | None = None) -> dict:
    """Read every row first (one bad row stops the import before anything is written)."""
    rows = list(_rows(Path(path)))
    labels = [_label(project, row, f"{path}:{line}") for line, row in rows]
    added = skipped = 0
    for labeller_name, item_id, answer, note in labels:
        labeller = project.db.labeller_named(labeller_name, create=True)
        if project.db.import_label(labeller, item_id, answer, note, source or f"import:{path}"):
            added += 1
        else:
            skipped += 1
    return {"rows": len(rows), "added": added, "already_there": skipped}


def _rows(path: Path):
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        for row in reader:
            yield reader.line_num, row
        return
    for line, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{line}: not JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{line}: expected a JSON object")
            yield line, row


def _label(project: Project, row: dict, where: str):
    for field in ("item", "labeller", "answer"):
        if row.get(field) in (None, ""):
            raise UserError(f"{where}: missing `{field}` (columns: item, labeller, answer, "
                            "optional task and note)")
    item = _item(project, row, where)
    if item.task not in {t.name for t in project.tasks.tasks}:
        raise UserError(f"{where}: task {item.task!r} is no longer in the task file")
    task = project.tasks.task(item.task)
    answer = row["answer"]
    if isinstance(answer, str) and answer.strip()[:1] == "[":
        answer = json.loads(answer)
    elif isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer)
    try:
        if task.kind == "compare":
            if answer not in COMPARE_IMPORT:
                raise BadAnswer(f"answer must be one of {', '.join(COMPARE_IMPORT)}; "
                                f"got {answer!r}")
            stored = stored_answer("compare", COMPARE_IMPORT[answer], [0, 1])
        elif task.kind == "rank":
            replies = len(item.payload["replies"])
            positions = [i + 1 for i in answer] if isinstance(answer, list) else answer
            stored = stored_answer("rank", positions, list(range(replies)))
        else:
            stored = stored_answer(task.kind, answer, [0], task.flags, row.get("rewrite"))
    except BadAnswer as err:
        raise UserError(f"{where}: answer: {err}") from None
    return str(row["labeller"]), item.id, stored, row.get("note") or None


def _item(project: Project, row: dict, where: str):
    value = row["item"]
    item_id = None
    if row.get("task"):
        item_id = project.db.item_by_key(str(row["task"]), str(value))
    elif isinstance(value, int) or str(value).isdigit():
        item_id = int(value)
    item = project.db.item(item_id) if item_id is not None else None
    if item is None:
        raise UserError(f"{where}: item {value!r} is not in the labels database (serve or "
                        "`label init` the task first; give `task` when `item` is a key)")
    return item
