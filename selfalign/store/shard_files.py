"""One shard's files: its rows of each kind written atomically under the attempt's own names,
with the size and sha256 of the bytes written, which the ledger keeps."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from selfalign.atomic import PARQUET_OPTIONS, atomic_path
from selfalign.store.columns import SHARD_SCHEMAS
from selfalign.store.layout import SHARD_KINDS, shard_dir, shard_path


def new_attempt() -> str:
    """A name for one attempt at a shard, unique across workers and hosts."""
    return secrets.token_hex(4)


def write_shard_files(folder: Path, index: int, rows: dict[str, list[dict]],
                      attempt: str) -> dict[str, dict]:
    """Write shard `index`'s traces, prefs, sft and rejects files for this attempt; return each
    file's record (name, size, sha256). The hash is of the bytes handed to the file system, not
    of a later read of the path: what is recorded is what this attempt wrote."""
    files = {}
    for kind, schema in SHARD_SCHEMAS.items():
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows[kind], schema=schema), sink, **PARQUET_OPTIONS)
        data = sink.getvalue().to_pybytes()
        path = shard_path(folder, index, kind, attempt)
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        files[kind] = {"name": path.name, "bytes": len(data),
                       "sha256": hashlib.sha256(data).hexdigest()}
    return files


def recorded_file(out: Path, entry: dict, kind: str) -> Path:
    """Where the ledger entry says its shard's `kind` file is (older entries name none)."""
    record = (entry.get("files") or {}).get(kind) or {}
    if "name" in record:
        return shard_dir(out) / record["name"]
    return shard_path(shard_dir(out), entry["shard"], kind)


def unrecorded_files(out: Path, entry: dict) -> list[Path]:
    """The files of an attempt whose entry was not recorded (its shard already was)."""
    return [recorded_file(out, entry, kind) for kind in SHARD_KINDS]


def drop_shard_files(out: Path) -> None:
    """Once the manifest says complete, the shards live on inside the outputs; the ledger stays.
    Every attempt's files go, recorded or not."""
    for path in shard_dir(out).glob("*.parquet"):
        path.unlink(missing_ok=True)
