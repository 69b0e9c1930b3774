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
from typing import Any

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
    """Rows of one run folder, per split, as memory-mapped `datasets.Dataset`s (the parquet files
    converted once into Arrow files in the `datasets` cache), with what is needed to trace them."""

    source: DataSource
    manifest_sha256: str
    manifest: dict
    splits: dict[str, Any] = field(default_factory=dict)  # split → datasets.Dataset
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
    """Mixed rows ready for a TRL trainer (`datasets.Dataset`s over memory-mapped Arrow files,
    the validation one empty as []), the number of prompt groups (rm), and every folder's
    provenance."""

    train: Any
    validation: Any
    folders: list[dict]
    groups: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- folders and shards

def read_rows(files: list[Path], columns: tuple[str, ...],
              optional: tuple[str, ...] = ()) -> list[dict]:
    """The rows of `files` with `columns`, and `optional` ones where a file has them (else None).
    For small files (reference answers); training data is read by `read_split`."""
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for f in files:
        present = _present_columns(f, columns, optional)
        table = pq.read_table(f, columns=present).to_pylist()
        rows.extend({**dict.fromkeys(optional), **row} for row in table)
    return rows


def _present_columns(f: Path, columns: tuple[str, ...], optional: tuple[str, ...]) -> list[str]:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(f).names
    except Exception as err:  # pyarrow raises several types for a broken file
        raise UserError(f"{f}: cannot read parquet ({err})") from None
    missing = [c for c in columns if c not in names]
    if missing:
        hints = "".join(f"; {COLUMN_HINTS[c]}" for c in missing if c in COLUMN_HINTS)
        raise UserError(f"{f}: missing column(s) {missing}; expected {list(columns)} "
                        f"(found {names}){hints}")
    return list(columns) + [c for c in optional if c in names]


def read_split(files: list[Path], columns: tuple[str, ...], optional: tuple[str, ...] = ()):
    """One split's files as a memory-mapped Dataset of `columns` (+ `optional`, null where a
    file lacks one). Nothing holds every row in memory: `datasets` converts the parquet files
    batch by batch into Arrow files on disk (once; later runs find them in its cache)."""
    import datasets
    import pyarrow.parquet as pq

    parts = []
    for f in files:
        present = _present_columns(f, columns, optional)
        if pq.read_metadata(f).num_rows:
            part = datasets.Dataset.from_parquet(str(f), columns=present)
        else:  # `datasets` cannot read a file of no rows; nothing to map either
            part = datasets.Dataset(pq.read_table(f, columns=present))
        for name in optional:
            if name not in present:
                part = part.add_column(name, [None] * len(part), feature=datasets.Value("float64"))
        parts.append(part.select_columns([*columns, *optional]))
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]


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


CHECK_BATCH_ROWS = 8192


def check_rows(kind: str, rows, where: str) -> None:
    """Every row in TRL's format for `kind`; `rows` is a Dataset (read batch by batch) or a list."""
    offset = 0
    for batch in _row_batches(rows):
        for i, row in enumerate(batch):
            problem = row_problem(kind, row)
            if problem:
                raise UserError(f"{where} row {offset + i}: {problem}")
        offset += len(batch)


def _row_batches(rows):
    if isinstance(rows, list):
        yield rows
        return
    for batch in rows.data.to_batches(max_chunksize=CHECK_BATCH_ROWS):
        yield batch.to_pylist()


def preference_at_least(rows, min_preference: float):
    """The rows whose judged preference is at least `min_preference` (a selection, no copy)."""
    import numpy as np

    values = rows.data.column(PREFERENCE).to_numpy(zero_copy_only=False).astype(float)
    return rows.select(np.flatnonzero(values >= min_preference))  # NaN (unjudged) is never kept


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
        rows = read_split(files, columns, optional)
        check_rows(kind, rows, f"{folder / sub} split '{split}'")
        if min_preference is not None:
            kept = preference_at_least(rows, min_preference)
            data.below_min_preference[split] = len(rows) - len(kept)
            rows = kept
        data.splits[split] = rows
        data.files[split] = [f.name for f in files]
    if not len(data.splits["train"]):
        dropped = data.below_min_preference.get("train")
        why = f" ({dropped} below --min-preference {min_preference})" if dropped else ""
        raise UserError(f"{folder / sub}: the train split has no rows{why}")
    return data


# ---------------------------------------------------------------- mixing
# Weights and groups work on row numbers (numpy arrays); rows are taken from the memory-mapped
# Datasets by `select` and converted to the trainer's columns by Arrow batches written to disk.

def weighted_indices(count: int, weight: float, seed: int):
    """Positions 0..count-1 scaled by `weight`: whole copies, then a seeded sample for the
    fraction (the sample `random.Random(seed).sample` draws from a list of that length)."""
    import numpy as np

    whole, fraction = divmod(weight, 1.0)
    extra = random.Random(seed).sample(range(count), round(fraction * count))
    return np.concatenate([np.tile(np.arange(count, dtype=np.int64), int(whole)),
                           np.asarray(extra, dtype=np.int64)])


def weighted(rows: list, weight: float, seed: int) -> list:
    """`rows` scaled by `weight`, as `weighted_indices` picks them."""
    return [rows[i] for i in weighted_indices(len(rows), weight, seed)]


def prompt_groups(rows):
    """Where each prompt's rows are: (row positions ordered by group, each group's first place
    in that order, each group's size), groups numbered in order of first appearance."""
    import numpy as np
    import pyarrow as pa

    ids = pa.chunked_array([rows.with_format("arrow")["prompt_id"]]).cast(pa.string())
    codes = ids.combine_chunks().dictionary_encode().indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return order, starts, sizes


def group_rows(order, starts, sizes, groups):
    """The row positions of `groups` (in that order, each group's rows together)."""
    import numpy as np

    lengths = sizes[groups]
    first = np.repeat(starts[groups] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return order[first + np.arange(lengths.sum(), dtype=np.int64)], lengths


def _units(kind: str, rows, weight: float, seed: int):
    """Row positions of `rows` scaled by weight, and (rm) the size of each drawn prompt group."""
    if kind != "rm":
        return weighted_indices(len(rows), weight, seed), None
    order, starts, sizes = prompt_groups(rows)
    return group_rows(order, starts, sizes, weighted_indices(len(sizes), weight, seed))


def sft_as_prompt_completion(row: dict) -> dict:
    """[..., user, assistant] → prompt/completion, so TRL puts the loss on the completion only."""
    return {"prompt": row["messages"][:-1], "completion": row["messages"][-1:]}


def _prompt_completion_batch(batch):
    """An Arrow batch of `messages` → `prompt` (all but the last message) and `completion`."""
    import numpy as np
    import pyarrow as pa

    messages = batch.column("messages").combine_chunks()
    offsets = messages.offsets.to_numpy().astype(np.int64)
    offsets, values = offsets - offsets[0], messages.flatten()  # values: this batch's messages
    last = offsets[1:] - 1
    keep = np.ones(len(values), dtype=bool)
    keep[last] = False
    rows = np.arange(len(offsets), dtype=np.int64)
    prompt = pa.ListArray.from_arrays(pa.array((offsets - rows).astype(np.int32)),
                                      values.filter(pa.array(keep)))
    completion = pa.ListArray.from_arrays(pa.array(rows.astype(np.int32)),
                                          values.take(pa.array(last)))
    return pa.table({"prompt": prompt, "completion": completion})


def _trainer_dataset(kind: str, parts: list, groups):
    """The selected rows of every folder as one Dataset in the format TRL's trainer for `kind`
    reads. `rm` rows keep their group's number (`group`) and a float `preference`; a pair
    without a judged preference counts as preferred for sure (1.0), as an unjudged revision
    pair is."""
    import datasets
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not parts:
        return []
    mixed = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    if kind == "dpo":
        return mixed.select_columns(list(PAIR_COLUMNS))
    if kind == "sft":
        return mixed.with_format("arrow").map(
            _prompt_completion_batch, batched=True, remove_columns=mixed.column_names,
            desc="prompt/completion").with_format(None)
    group_of_row = np.repeat(np.arange(len(groups), dtype=np.int64), groups)

    def rm_batch(batch, indices):
        preference = pc.fill_null(batch.column(PREFERENCE).cast(pa.float64()), 1.0)
        return pa.table({**{c: batch.column(c) for c in PAIR_COLUMNS}, PREFERENCE: preference,
                         "group": pa.array(group_of_row[indices])})

    return mixed.with_format("arrow").map(
        rm_batch, batched=True, with_indices=True, remove_columns=mixed.column_names,
        desc="reward-model pairs").with_format(None)


def mix_folders(kind: str, folders: list[FolderData], seed: int) -> TrainingData:
    """Train rows (or, for `rm`, prompts) of every folder scaled by its weight; validation as is."""
    train, validation, provenance = [], [], []
    train_groups, validation_groups = [], []
    for index, data in enumerate(folders):
        source = data.source
        picked, sizes = _units(kind, data.splits["train"], source.weight, seed + index)
        if not len(picked):
            raise UserError(f"--data {source.path}:{source.weight}: the weight leaves no train rows "
                            f"(the folder has {len(data.splits['train'])})")
        train.append(data.splits["train"].select(picked))
        train_groups.append(sizes)
        if len(data.splits.get("validation", [])):
            kept, sizes = _units(kind, data.splits["validation"], 1.0, 0)
            validation.append(data.splits["validation"].select(kept))
            validation_groups.append(sizes)
        provenance.append(data.provenance(len(picked)))
    if kind != "rm":
        return TrainingData(_trainer_dataset(kind, train, None),
                            _trainer_dataset(kind, validation, None), provenance)
    train_sizes, validation_sizes = _joined(train_groups), _joined(validation_groups)
    return TrainingData(_trainer_dataset(kind, train, train_sizes),
                        _trainer_dataset(kind, validation, validation_sizes), provenance,
                        {"train": len(train_sizes), "validation": len(validation_sizes)})


def _joined(sizes: list):
    import numpy as np

    return np.concatenate(sizes) if sizes else np.zeros(0, dtype=np.int64)


def load_training_data(kind: str, sources: list[DataSource], seed: int = 42) -> TrainingData:
    """All `--data` folders read, checked and mixed; SFT rows converted to prompt/completion."""
    if not sources:
        raise UserError("no --data folder given")
    return mix_folders(kind, [load_folder(kind, s) for s in sources], seed)
