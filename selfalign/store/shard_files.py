"""One shard's files: its rows of each kind written atomically, with the checksums the ledger keeps."""

from __future__ import annotations

from pathlib import Path

from selfalign.atomic import write_parquet
from selfalign.store.checksums import file_record
from selfalign.store.columns import SHARD_SCHEMAS
from selfalign.store.layout import shard_path


def write_shard_files(folder: Path, index: int, rows: dict[str, list[dict]]) -> dict[str, dict]:
    """Write shard `index`'s traces, prefs, sft and rejects files; return each file's record
    (size and sha256), which is checked before the file is trusted again."""
    files = {}
    for kind, schema in SHARD_SCHEMAS.items():
        path = shard_path(folder, index, kind)
        write_parquet(path, rows[kind], schema)
        files[kind] = file_record(path)
    return files
