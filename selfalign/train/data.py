"""Reading generated run folders for training: find shards, check rows, mix folders by weight.

Everything here runs before any model loads, so bad input fails fast with a UserError.

`--data` syntax: `PATH` or `PATH:WEIGHT` (e.g. `--data runA --data runB:0.5`). The weight scales
that folder's *train* rows: 0.5 keeps a seeded half, 2 repeats every row twice, 1.5 keeps all
rows once plus a seeded half again. Validation and test rows of every folder are used as they are.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from selfalign.errors import UserError

SHARD_NAME = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.parquet$")
ROLES = {"system", "user", "assistant"}
# Which sub-folder each kind trains on, and the columns its rows must hold.
KINDS = {
    "sft": ("sft", ("messages",)),
    "dpo": ("prefs", ("prompt", "chosen", "rejected")),
}


@dataclass(frozen=True)
class DataSource:
    """One `--data` argument: a run folder and the weight of its train rows."""

    path: Path
    weight: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "DataSource":
        path, weight = text, 1.0
        head, sep, tail = text.rpartition(":")
        if sep and head and re.fullmatch(r"[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?", tail):
            path, weight = head, float(tail)
        if weight <= 0:
            raise UserError(f"--data {text}: the weight must be > 0 (syntax: PATH or PATH:WEIGHT)")
        return cls(Path(path).expanduser(), weight)


@dataclass
class FolderData:
    """Rows of one run folder, per split, with what is needed to trace them."""

    source: DataSource
    manifest_sha256: str
    manifest: dict
    splits: dict[str, list[dict]] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)

    def provenance(self, used_train_rows: int) -> dict:
        return {
            "path": str(self.source.path.resolve()),
            "weight": self.source.weight,
            "manifest_sha256": self.manifest_sha256,
            "generator_model": self.manifest.get("model"),
            "rows": {split: len(rows) for split, rows in self.splits.items()},
            "train_rows_used": used_train_rows,
            "files": self.files,
        }


@dataclass
class TrainingData:
    """Mixed rows ready for a TRL trainer, plus provenance of every folder."""

    train: list[dict]
    validation: list[dict]
    folders: list[dict]


# ---------------------------------------------------------------- folders and shards

def read_manifest(folder: Path) -> tuple[dict, str]:
    path = folder / "manifest.json"
    if not path.is_file():
        raise UserError(f"{folder}: no manifest.json; --data must name a folder written by "
                        "`selfalign generate`")
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    return manifest, hashlib.sha256(raw).hexdigest()


def find_shards(folder: Path, sub: str) -> dict[str, list[Path]]:
    """Shard files of `folder/sub` grouped by split, checked complete (all N of N present)."""
    where = folder / sub
    files = sorted(where.glob("*.parquet")) if where.is_dir() else []
    if not files:
        raise UserError(f"{where}: no parquet shards found; expected "
                        f"{sub}/<split>-00000-of-0000N.parquet as written by `selfalign generate`")
    by_split: dict[str, list[Path]] = {}
    totals: dict[str, set[int]] = {}
    for f in files:
        m = SHARD_NAME.match(f.name)
        if not m:
            raise UserError(f"{f}: unexpected file name; shards are named "
                            "<split>-NNNNN-of-NNNNN.parquet")
        by_split.setdefault(m["split"], []).append(f)
        totals.setdefault(m["split"], set()).add(int(m["total"]))
    for split, shard_files in by_split.items():
        expected = totals[split]
        if len(expected) != 1 or len(shard_files) != next(iter(expected)):
            raise UserError(f"{where}: split '{split}' has {len(shard_files)} shard(s) but the names "
                            f"say {sorted(expected)}; the run folder is incomplete")
    if "train" not in by_split:
        raise UserError(f"{where}: no train split (found: {', '.join(sorted(by_split))})")
    return by_split


def read_rows(files: list[Path], columns: tuple[str, ...]) -> list[dict]:
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for f in files:
        try:
            names = pq.read_schema(f).names
        except Exception as err:  # pyarrow raises several types for a broken file
            raise UserError(f"{f}: cannot read parquet ({err})") from None
        missing = [c for c in columns if c not in names]
        if missing:
            raise UserError(f"{f}: missing column(s) {missing}; expected {list(columns)} "
                            f"(found {names})")
        rows.extend(pq.read_table(f, columns=list(columns)).to_pylist())
    return rows


# ---------------------------------------------------------------- row format

def _message_problem(messages, roles: set[str] | None) -> str | None:
    """Why `messages` is not a list of {"role", "content"} messages, or None when it is."""
    if isinstance(messages, str):
        return "is a string; expected a list of messages (conversational format)"
    if not isinstance(messages, list) or not messages:
        return f"must be a non-empty list of messages, got {type(messages).__name__}"
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not {"role", "content"} <= set(msg):
            return f"message {i} must be a dict with keys 'role' and 'content', got {msg!r:.80}"
        if msg["role"] not in (roles or ROLES):
            return f"message {i} has role {msg['role']!r}; expected one of {sorted(roles or ROLES)}"
        if not isinstance(msg["content"], str):
            return f"message {i} content must be a string, got {type(msg['content']).__name__}"
    return None


def row_problem(kind: str, row: dict) -> str | None:
    """Why a row is not in the TRL format `kind` trains on, or None when it is."""
    if kind == "sft":
        messages = row["messages"]
        problem = _message_problem(messages, None)
        if problem:
            return f"`messages` {problem}"
        if messages[-1]["role"] != "assistant" or len(messages) < 2:
            return "`messages` must end with an assistant message after at least one user message"
        return None
    for column, roles in (("prompt", {"system", "user", "assistant"}),
                          ("chosen", {"assistant"}), ("rejected", {"assistant"})):
        problem = _message_problem(row[column], roles)
        if problem:
            return f"`{column}` {problem}"
    if row["prompt"][-1]["role"] != "user":
        return "`prompt` must end with a user message"
    return None


def check_rows(kind: str, rows: list[dict], where: str) -> None:
    for i, row in enumerate(rows):
        problem = row_problem(kind, row)
        if problem:
            raise UserError(f"{where} row {i}: {problem}")


def load_folder(kind: str, source: DataSource) -> FolderData:
    """Read and check one run folder's rows for `kind` ('sft' or 'dpo')."""
    folder = source.path
    if not folder.is_dir():
        raise UserError(f"--data {folder}: folder does not exist")
    manifest, digest = read_manifest(folder)
    sub, columns = KINDS[kind]
    data = FolderData(source, digest, manifest)
    for split, files in sorted(find_shards(folder, sub).items()):
        rows = read_rows(files, columns)
        check_rows(kind, rows, f"{folder / sub} split '{split}'")
        data.splits[split] = rows
        data.files[split] = [f.name for f in files]
    if not data.splits["train"]:
        raise UserError(f"{folder / sub}: the train split has no rows")
    return data


# ---------------------------------------------------------------- mixing

def weighted(rows: list[dict], weight: float, seed: int) -> list[dict]:
    """`rows` scaled by `weight`: whole copies, then a seeded sample for the fraction."""
    whole, fraction = divmod(weight, 1.0)
    extra = round(fraction * len(rows))
    return rows * int(whole) + random.Random(seed).sample(rows, extra)


def sft_as_prompt_completion(row: dict) -> dict:
    """[..., user, assistant] → prompt/completion, so TRL puts the loss on the completion only."""
    return {"prompt": row["messages"][:-1], "completion": row["messages"][-1:]}


def mix_folders(kind: str, folders: list[FolderData], seed: int) -> TrainingData:
    """Train rows of every folder scaled by its weight; validation rows as they are."""
    train, validation, provenance = [], [], []
    for index, data in enumerate(folders):
        source = data.source
        rows = weighted(data.splits["train"], source.weight, seed + index)
        if not rows:
            raise UserError(f"--data {source.path}:{source.weight}: the weight leaves no train rows "
                            f"(the folder has {len(data.splits['train'])})")
        train.extend(rows)
        validation.extend(data.splits.get("validation", []))
        provenance.append(data.provenance(len(rows)))
    if kind == "sft":
        train = [sft_as_prompt_completion(r) for r in train]
        validation = [sft_as_prompt_completion(r) for r in validation]
    return TrainingData(train, validation, provenance)


def load_training_data(kind: str, sources: list[DataSource], seed: int = 42) -> TrainingData:
    """All `--data` folders read, checked and mixed; SFT rows converted to prompt/completion."""
    if not sources:
        raise UserError("no --data folder given")
    return mix_folders(kind, [load_folder(kind, s) for s in sources], seed)
