"""The one reader of a finished run: its manifest, its final files by split, and their rows.

Training (`--data`), evaluation, `verify` and the labelling app read runs through here, so a run
folder is recognised, and refused, the same way everywhere.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from selfalign.errors import UserError
from selfalign.store.layout import FINAL_FILES, FINAL_FOLDERS, MANIFEST, REJECTS, SPLIT_FILE


def read_manifest(folder: Path) -> tuple[dict, str]:
    """The run's manifest and the sha256 of its bytes (provenance for what is made from it)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise UserError(f"{folder}: no manifest.json; expected a folder written by "
                        "`selfalign generate`")
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path}: not a run manifest (a JSON object was expected)")
    return manifest, hashlib.sha256(raw).hexdigest()


def final_files(out: Path) -> list[Path]:
    """Every file the run delivers (manifest.json aside), as `selfalign verify` expects them."""
    files = [f for folder in FINAL_FOLDERS for f in sorted((out / folder).glob("*.parquet"))]
    return files + [out / name for name in FINAL_FILES if (out / name).is_file()]


def split_files(folder: Path, sub: str, need_train: bool = True) -> dict[str, list[Path]]:
    """The files of `folder/sub` grouped by split, checked complete (all N of N present)."""
    where = folder / sub
    files = sorted(where.glob("*.parquet")) if where.is_dir() else []
    if not files:
        raise UserError(f"{where}: no parquet shards found; expected "
                        f"{sub}/<split>-00000-of-0000N.parquet as written by `selfalign generate`")
    by_split: dict[str, list[Path]] = {}
    totals: dict[str, set[int]] = {}
    for f in files:
        m = SPLIT_FILE.match(f.name)
        if not m:
            raise UserError(f"{f}: unexpected file name; shards are named "
                            "<split>-NNNNN-of-NNNNN.parquet")
        by_split.setdefault(m["split"], []).append(f)
        totals.setdefault(m["split"], set()).add(int(m["total"]))
    for split, found in by_split.items():
        expected = totals[split]
        if len(expected) != 1 or len(found) != next(iter(expected)):
            raise UserError(f"{where}: split '{split}' has {len(found)} shard(s) but the names "
                            f"say {sorted(expected)}; the run folder is incomplete")
    if need_train and "train" not in by_split:
        raise UserError(f"{where}: no train split (found: {', '.join(sorted(by_split))})")
    return by_split


@dataclass(frozen=True)
class FinishedRun:
    """A run folder whose manifest says complete."""

    out: Path
    manifest: dict
    manifest_sha256: str

    def files(self, sub: str) -> dict[str, list[Path]]:
        """`prefs`, `sft` or `traces` files by split (traces are one group, named `traces`)."""
        return split_files(self.out, sub, need_train=sub != "traces")

    def rows(self, sub: str, columns: list[str] | None = None,
             batch_rows: int = 4096) -> Iterator[dict]:
        """Every row of `sub`, split by split in file order, read a batch at a time."""
        import pyarrow.parquet as pq

        for split, files in sorted(self.files(sub).items()):
            for f in files:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows,
                                                            columns=columns):
                    yield from batch.to_pylist()

    @property
    def rejects(self) -> Path:
        return self.out / REJECTS


def open_finished_run(folder: Path) -> FinishedRun:
    """The run in `folder`, refused with one clear line if it is not a finished run."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    manifest, digest = read_manifest(folder)
    status = manifest.get("status")
    if status == "running":
        raise UserError(f"{folder}: the run is still being written (or was interrupted: resume "
                        f"it with `selfalign generate --out {folder} --resume`); use it once "
                        f"its manifest says complete")
    if status != "complete":
        raise UserError(f"{folder}: the run's status is {status!r}, not complete; it has no "
                        f"data to use")
    return FinishedRun(folder, manifest, digest)
