"""Where each file of a run folder lives. Every other module asks here instead of spelling paths.

```
OUT/
  manifest.json  README.md  rejects.parquet  preference_histogram.png (when a judge ran)
  prefs/<split>-NNNNN-of-NNNNN.parquet   sft/<split>-...   traces/traces-...
  .selfalign/    ledger.jsonl, lock, shards/NNNNN-<attempt>-<kind>.parquet (until assembly)
  labels/        what people labelled (the labelling app; never written by a run)
```
"""

from __future__ import annotations

import re
from pathlib import Path

MANIFEST = "manifest.json"
CARD = "README.md"
REJECTS = "rejects.parquet"
HISTOGRAM = "preference_histogram.png"
STATE_DIR = ".selfalign"  # inside the output folder: shards and ledger, hidden from readers
LEDGER = "ledger.jsonl"
LOCK = "lock"
LABELS_DIR = "labels"
LABEL_EXPORT_FORMAT = "selfalign.labels/1"  # the `format` of a `label export` folder's manifest

FINAL_FOLDERS = ("prefs", "sft", "traces")
FINAL_FILES = (REJECTS, CARD, HISTOGRAM)
SHARD_KINDS = ("traces", "prefs", "sft", "rejects")  # the files each shard writes
SPLIT_FILE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.parquet$")


def state_dir(out: Path) -> Path:
    return out / STATE_DIR


def shard_dir(out: Path) -> Path:
    return state_dir(out) / "shards"


def ledger_path(out: Path) -> Path:
    return state_dir(out) / LEDGER


def lock_path(out: Path) -> Path:
    return state_dir(out) / LOCK


def shard_path(folder: Path, index: int, kind: str, attempt: str | None = None) -> Path:
    """A shard file. Each attempt at a shard writes under its own name, so two attempts running
    at once (a call Ray could not account for, resent elsewhere) never write the same file;
    runs from before attempts were named have none."""
    if attempt is None:
        return folder / f"{index:05d}-{kind}.parquet"
    return folder / f"{index:05d}-{attempt}-{kind}.parquet"


def split_file_name(split: str, index: int, total: int) -> str:
    return f"{split}-{index:05d}-of-{total:05d}.parquet"


def written_splits(folder: Path) -> list[str]:
    """The splits whose files are in `folder`, in the order train, validation, test, others."""
    found = {m["split"] for f in folder.glob("*.parquet") if (m := SPLIT_FILE.match(f.name))}
    order = {name: index for index, name in enumerate(("train", "validation", "test"))}
    return sorted(found, key=lambda split: (order.get(split, len(order)), split))
