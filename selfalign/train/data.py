"""Reading generated run folders for training: find shards, check rows, mix folders by weight.

Everything here runs before any model loads, so bad input fails fast with a UserError.

`--data` syntax: `PATH` or `PATH:WEIGHT` (e.g. `--data runA --data runB:0.5`). The weight scales
that folder's *train* rows: 0.5 keeps a seeded half, 2 repeats every row twice, 1.5 keeps all
rows once plus a seeded half again. Validation and test rows of every folder are used as they are.

Reward-model data is weighted and batched by prompt, not by pair: all comparisons of one prompt
(`prompt_id`) form one group, so a weight samples whole prompts and a batch never splits one.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from selfalign.errors import UserError
from selfalign.store.reader import read_manifest, split_files

ROLES = {"system", "user", "assistant"}
# Which sub-folder each kind trains on, and the columns its rows must hold.
KINDS = {
    "sft": ("sft", ("messages",)),
    "dpo": ("prefs", ("prompt", "chosen", "rejected")),
    "rm": ("prefs", ("prompt", "chosen", "rejected", "prompt_id")),
}
PAIR_COLUMNS = ("prompt", "chosen", "rejected")
PREFERENCE = "preference"  # P(chosen ≻ rejected) from the judge; written only when a judge ran
# Said after "missing column(s)" when one of these is the missing one.
COLUMN_HINTS = {
    PREFERENCE: "--min-preference filters on the judge's preference, which `selfalign generate` "
                "writes only when a judge ran; drop --min-preference or judge the run",
    "prompt_id": "the reward model groups every comparison of a prompt by its prompt_id",
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
    below_min_preference: dict[str, int] = field(default_factory=dict)  # pairs left out, per split

    def provenance(self, used_train_rows: int) -> dict:
        record = {
            "path": str(self.source.path.resolve()),
            "weight": self.source.weight,
            "manifest_sha256": self.manifest_sha256,
            "generator_model": self.manifest.get("model"),
            "rows": {split: len(rows) for split, rows in self.splits.items()},
            "train_rows_used": used_train_rows,
            "files": self.files,
        }
        if self.below_min_preference:
            record["below_min_preference"] = self.below_min_preference
        return record


@dataclass
class TrainingData:
    """Mixed rows ready for a TRL trainer, plus provenance of every folder."""

    train: list[dict]
    validation: list[dict]
    folders: list[dict]


# ---------------------------------------------------------------- folders and shards

def read_rows(files: list[Path], columns: tuple[str, ...],
              optional: tuple[str, ...] = ()) -> list[dict]:
    """The rows of `files` with `columns`, and `optional` ones where a file has them (else None)."""
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for f in files:
        try:
            names = pq.read_schema(f).names
        except Exception as err:  # pyarrow raises several types for a broken file
            raise UserError(f"{f}: cannot read parquet ({err})") from None
        missing = [c for c in columns if c not in names]
        if missing:
            hints = "".join(f"; {COLUMN_HINTS[c]}" for c in missing if c in COLUMN_HINTS)
            raise UserError(f"{f}: missing column(s) {missing}; expected {list(columns)} "
                            f"(found {names}){hints}")
        present = list(columns) + [c for c in optional if c in names]
        table = pq.read_table(f, columns=present).to_pylist()
        rows.extend({**dict.fromkeys(optional), **row} for row in table)
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
    if kind == "rm" and row["prompt_id"] in (None, ""):
        return "`prompt_id` is empty; the reward model groups comparisons by prompt"
    preference = row.get(PREFERENCE)
    if preference is not None and not (isinstance(preference, (int, float))
                                       and 0.0 <= preference <= 1.0):
        return f"`preference` must be a probability in [0, 1], got {preference!r}"
    return None


def check_rows(kind: str, rows: list[dict], where: str) -> None:
    for i, row in enumerate(rows):
        problem = row_problem(kind, row)
        if problem:
            raise UserError(f"{where} row {i}: {problem}")


def load_folder(kind: str, source: DataSource, min_preference: float | None = None) -> FolderData:
    """Read and check one run folder's rows for `kind` ('sft', 'dpo' or 'rm').

    With `min_preference`, only pairs the judge preferred at least that much are kept (in every
    split); the `preference` column must then be there.
    """
    folder = source.path
    if not folder.is_dir():
        raise UserError(f"--data {folder}: folder does not exist")
    manifest, digest = read_manifest(folder)
    sub, columns = KINDS[kind]
    optional = (PREFERENCE,) if sub == "prefs" else ()
    if min_preference is not None:
        columns, optional = columns + optional, ()
    data = FolderData(source, digest, manifest)
    for split, files in sorted(split_files(folder, sub).items()):
        rows = read_rows(files, columns, optional)
        check_rows(kind, rows, f"{folder / sub} split '{split}'")
        if min_preference is not None:
            kept = [r for r in rows if r[PREFERENCE] is not None and r[PREFERENCE] >= min_preference]
            data.below_min_preference[split] = len(rows) - len(kept)
            rows = kept
        data.splits[split] = rows
        data.files[split] = [f.name for f in files]
    if not data.splits["train"]:
        dropped = data.below_min_preference.get("train")
        why = f" ({dropped} below --min-preference {min_preference})" if dropped else ""
        raise UserError(f"{folder / sub}: the train split has no rows{why}")
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


def units_of(kind: str, rows: list[dict]) -> list[list[dict]]:
    """What a weight samples and a batch holds whole: a prompt's pairs for `rm`, else one row."""
    if kind != "rm":
        return [[row] for row in rows]
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(str(row["prompt_id"]), []).append(row)
    return list(groups.values())


def trainer_rows(kind: str, units: list[list[dict]]) -> list[dict]:
    """Rows in the format TRL's trainer for `kind` reads.

    `rm` rows keep their group's number (`group`) and a float `preference`; a pair without a
    judged preference counts as preferred for sure (1.0), as an unjudged revision pair is.
    """
    if kind == "sft":
        return [sft_as_prompt_completion(row) for unit in units for row in unit]
    if kind == "dpo":
        return [{c: row[c] for c in PAIR_COLUMNS} for unit in units for row in unit]
    return [{**{c: row[c] for c in PAIR_COLUMNS},
             PREFERENCE: 1.0 if row[PREFERENCE] is None else float(row[PREFERENCE]),
             "group": number}
            for number, unit in enumerate(units) for row in unit]


def mix_folders(kind: str, folders: list[FolderData], seed: int) -> TrainingData:
    """Train rows (or, for `rm`, prompts) of every folder scaled by its weight; validation as is."""
    train, validation, provenance = [], [], []
    for index, data in enumerate(folders):
        source = data.source
        units = weighted(units_of(kind, data.splits["train"]), source.weight, seed + index)
        if not units:
            raise UserError(f"--data {source.path}:{source.weight}: the weight leaves no train rows "
                            f"(the folder has {len(data.splits['train'])})")
        train.extend(units)
        validation.extend(units_of(kind, data.splits.get("validation", [])))
        provenance.append(data.provenance(sum(len(unit) for unit in units)))
    return TrainingData(trainer_rows(kind, train), trainer_rows(kind, validation), provenance)


def load_training_data(kind: str, sources: list[DataSource], seed: int = 42) -> TrainingData:
    """All `--data` folders read, checked and mixed; SFT rows converted to prompt/completion."""
    if not sources:
        raise UserError("no --data folder given")
    return mix_folders(kind, [load_folder(kind, s) for s in sources], seed)
