"""Size and sha256 of written files, and the sentence that says how a file no longer matches.

A shard file or a final file is recorded as `{"bytes": N, "sha256": "..."}` when it is written;
before it is trusted again (resume, assembly, `selfalign verify`) it is compared with the record.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: Path) -> dict:
    """What is recorded of a file just written: its size and sha256."""
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


def mismatch(path: Path, record: dict) -> str | None:
    """None if `path` still is the file `record` describes, else why not (one short phrase)."""
    if not path.is_file():
        return "missing"
    return _compare(path.stat().st_size, lambda: sha256_file(path), record)


def bytes_mismatch(data: bytes, record: dict) -> str | None:
    """`mismatch` for a file already read into memory (assembly reads each shard file once)."""
    return _compare(len(data), lambda: hashlib.sha256(data).hexdigest(), record)


def _compare(size: int, sha256: Callable[[], str], record: dict) -> str | None:
    if size < record["bytes"]:
        return f"truncated ({size} of {record['bytes']} bytes)"
    if size != record["bytes"]:
        return f"size changed ({size} bytes, {record['bytes']} recorded)"
    if sha256() != record["sha256"]:  # only hashed when the size matches
        return "content changed (same size, sha256 differs)"
    return None
