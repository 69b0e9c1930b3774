"""Writes a prepared folder: one parquet file per split, rejects.parquet and report.json.

Files are written under temporary names in the folder, fsynced, and renamed into place only
when the whole run succeeded; report.json goes last, so a reader never sees a half-written run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from selfalign.atomic import PARQUET_OPTIONS, fsync_dir, write_json
from selfalign.prompts.behavior import BEHAVIOR
from selfalign.prompts.sources import PREPARED_REPORT
from selfalign.records import PromptRecord, Reject

WRITE_BATCH_ROWS = 8192
REJECTS_FILE = "rejects.parquet"

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
# `context`: the turns before `prompt` in a multi-turn prompt (empty for a single-turn one).
# `behavior`: comply, refuse, or null where the input did not say (selfalign.prompts.behavior).
PROMPT_SCHEMA = pa.schema([
    ("id", pa.string()), ("prompt", pa.string()), ("context", MESSAGES), ("user_id", pa.string()),
    ("split", pa.string()), ("language", pa.string()), ("source", pa.string()), ("line", pa.int64()),
    ("behavior", pa.string()), ("metadata", pa.string()),
])
REJECT_SCHEMA = pa.schema([
    ("reason", pa.string()), ("detail", pa.string()), ("source", pa.string()), ("line", pa.int64()),
    ("id", pa.string()), ("stage", pa.string()),
])


def _metadata_text(record: PromptRecord) -> str:
    text = record.metadata_json()
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in some column: escape it instead of failing
        text = json.dumps(record.metadata, ensure_ascii=True, sort_keys=True, default=str)
    return text


def prompt_row(record: PromptRecord) -> dict[str, Any]:
    return {
        "id": record.id, "prompt": record.prompt, "context": record.context,
        "user_id": record.user_id, "split": record.split,
        "language": record.language, "source": record.source, "line": record.line,
        "behavior": record.metadata.get(BEHAVIOR), "metadata": _metadata_text(record),
    }


def reject_row(reject: Reject) -> dict[str, Any]:
    return {
        "reason": reject.reason, "detail": reject.detail, "source": reject.source,
        "line": reject.line, "id": reject.id, "stage": reject.stage,
    }


class _BatchedParquet:
    """A parquet file written in row batches under a temporary name."""

    def __init__(self, final: Path, schema: pa.Schema) -> None:
        self.final = final
        self.temp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        self.schema = schema
        self.rows: list[dict[str, Any]] = []
        self.writer = pq.ParquetWriter(self.temp, schema, **PARQUET_OPTIONS)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= WRITE_BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.writer.close()
        _fsync(self.temp)

    def discard(self) -> None:
        self.writer.close()
        self.temp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


class PreparedWriter:
    """Collects kept rows by split and rejected rows; `commit` moves everything into place."""

    def __init__(self, out: Path, splits: tuple[str, ...]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.splits = {name: _BatchedParquet(out / f"{name}.parquet", PROMPT_SCHEMA) for name in splits}
        self.rejects = _BatchedParquet(out / REJECTS_FILE, REJECT_SCHEMA)

    def keep(self, record: PromptRecord) -> None:
        self.splits[record.split].add(prompt_row(record))

    def reject(self, reject: Reject) -> None:
        self.rejects.add(reject_row(reject))

    def commit(self, report: dict[str, Any]) -> None:
        files = [*self.splits.values(), self.rejects]
        for f in files:
            f.close()
        for f in files:
            os.replace(f.temp, f.final)
        fsync_dir(self.out)
        write_json(self.out / PREPARED_REPORT, report)

    def abort(self) -> None:
        for f in [*self.splits.values(), self.rejects]:
            f.discard()
