"""Final assembly: shard files → traces/, sft/, prefs/ (per split), rejects.parquet, counts.

The dataset card and any figures are the caller's (generate/final.py): this module knows the
files and the ledger, not what the rows mean.

Each output folder is built in a staging folder and renamed into place, and each file in it is
whole, so a reader never sees half a dataset file. Shard files are read one at a time: memory
stays bounded by one shard, however long the run.
"""

from __future__ import annotations

import shutil
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from selfalign.atomic import PARQUET_OPTIONS, atomic_path, fsync_dir
from selfalign.errors import UserError
from selfalign.store.checksums import bytes_mismatch, file_record
from selfalign.store.columns import SHARD_SCHEMAS
from selfalign.store.layout import REJECTS, split_file_name, state_dir
from selfalign.store.ledger import resume_command, shard_problems
from selfalign.store.reader import final_files
from selfalign.store.shard_files import recorded_file

ROWS_PER_FILE = 100_000


def _sum_counters(ledger: dict[int, dict], key: str) -> Counter:
    total: Counter = Counter()
    for entry in ledger.values():
        total.update(entry.get(key, {}))
    return total


class _SplitFiles:
    """Writes one split's rows into `<split>-NNNNN-of-NNNNN.parquet` files of bounded size,
    each through `atomic_path`, so a write error leaves no partial file under its name."""

    def __init__(self, folder: Path, split: str, total_rows: int, schema: pa.Schema) -> None:
        self.folder, self.split, self.schema = folder, split, schema
        self.files = max(1, -(-total_rows // ROWS_PER_FILE))
        self.index, self.in_file, self.writer = 0, 0, None
        self.file = ExitStack()

    def _open(self) -> None:
        name = split_file_name(self.split, self.index, self.files)
        tmp = self.file.enter_context(atomic_path(self.folder / name))
        self.writer = pq.ParquetWriter(tmp, self.schema, **PARQUET_OPTIONS)

    def _close_file(self) -> None:
        self.writer.close()
        self.file.close()  # fsync and rename into place

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self.writer is None:
                self._open()
            room = ROWS_PER_FILE - self.in_file
            part, table = table.slice(0, room), table.slice(room)
            self.writer.write_table(part)
            self.in_file += part.num_rows
            if self.in_file == ROWS_PER_FILE and self.index + 1 < self.files:
                self._close_file()
                self.writer, self.index, self.in_file = None, self.index + 1, 0

    def close(self) -> None:
        if self.writer is None:
            self._open()  # a split with no rows still gets its (empty) file
        self._close_file()


class DamagedShard(UserError):
    """A shard file no longer matches its ledger entry; resume redoes that shard."""


def _read_shard(out: Path, entry: dict, kind: str) -> pa.Table:
    """A shard file, checked against the size and sha256 in its ledger entry as it is read."""
    path = recorded_file(out, entry, kind)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        why = "missing"
    else:
        recorded = entry.get("files")  # absent in ledgers written before checksums
        why = bytes_mismatch(data, recorded[kind]) if recorded else None
    if why:
        raise _damaged(out, [f"{path} is {why}"])
    return pq.read_table(pa.BufferReader(data))


def _check_shards(out: Path, shards: list[dict]) -> None:
    """Every shard file against the ledger before any output is written, so a damaged one
    leaves no half-assembled outputs, and the message names all of them at once."""
    damaged = [f"{path} is {why}" for entry in shards for path, why in shard_problems(out, entry)]
    if damaged:
        raise _damaged(out, damaged)


def _damaged(out: Path, files: list[str]) -> DamagedShard:
    return DamagedShard("shard file " + "; shard file ".join(files) + ": not the file the ledger "
                        "recorded, so the outputs were not assembled. Resume to redo "
                        f"{'that shard' if len(files) == 1 else 'those shards'}:\n"
                        f"  {resume_command(out)}")


def _assemble_by_split(out: Path, kind: str, shards: list[dict], counts: Counter,
                       by_column: bool = True) -> None:
    """Write `kind/<split>-NNNNN-of-NNNNN.parquet`; with by_column=False one group holds all."""
    staging = state_dir(out) / f"final-{kind}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # A run with no rows of this kind still writes an empty train file: readers need a file.
    counts = Counter({s: n for s, n in counts.items() if n}) or Counter({"train": 0})
    try:
        writers = {s: _SplitFiles(staging, s, n, SHARD_SCHEMAS[kind]) for s, n in counts.items()}
        for entry in shards:
            table = _read_shard(out, entry, kind)
            for split, writer in writers.items():
                writer.write(table.filter(pc.equal(table["split"], split)) if by_column else table)
        for writer in writers.values():
            writer.close()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_in(staging, out / kind)


def _assemble_single(out: Path, kind: str, shards: list[dict], target: Path) -> None:
    with atomic_path(target) as tmp:
        with pq.ParquetWriter(tmp, SHARD_SCHEMAS[kind], **PARQUET_OPTIONS) as writer:
            for entry in shards:
                writer.write_table(_read_shard(out, entry, kind))


def write_rejects(out: Path, ledger: dict[int, dict]) -> None:
    """rejects.parquet: every input row not used, from every recorded shard, in input order."""
    _assemble_single(out, "rejects", [ledger[index] for index in sorted(ledger)],
                     out / REJECTS)


def _swap_in(staging: Path, target: Path) -> None:
    """Replace `target` with the finished `staging` folder."""
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def assemble(out: Path, ledger: dict[int, dict]) -> dict:
    """Assemble every output file from the finished shards; return the row and token counts."""
    shards = [ledger[index] for index in sorted(ledger)]
    _check_shards(out, shards)
    pairs, sft = _sum_counters(ledger, "pairs"), _sum_counters(ledger, "sft")
    _assemble_by_split(out, "prefs", shards, pairs)
    _assemble_by_split(out, "sft", shards, sft)
    traces = sum(e["traces"] for e in ledger.values())
    _assemble_by_split(out, "traces", shards, Counter({"traces": traces}), by_column=False)
    write_rejects(out, ledger)
    return {
        "prompts": sum(e["prompts"] for e in ledger.values()),
        "samples": sum(e["samples"] for e in ledger.values()),
        "pairs": dict(pairs), "sft": dict(sft),
        "rejects": dict(_sum_counters(ledger, "rejects")),
        "principles": dict(_sum_counters(ledger, "principles")),
        "prompt_tokens": sum(e["prompt_tokens"] for e in ledger.values()),
        "output_tokens": sum(e["output_tokens"] for e in ledger.values()),
        "cached_prompt_tokens": sum(e["cached_prompt_tokens"] for e in ledger.values()),
        "engine_seconds": round(busy_seconds(ledger.values()), 3),
        "shards": len(shards),
    }


def busy_seconds(entries) -> float:
    """Wall time during which some shard was being worked on: shards overlap in time, so their
    spans are merged, not added. Spans of a resumed run's earlier sessions count too."""
    spans = sorted((e["finished_at"] - e["seconds"], e["finished_at"]) for e in entries)
    total, end = 0.0, float("-inf")
    for start, finish in spans:
        if finish > end:
            total += finish - max(start, end)
            end = finish
    return total


def describe_final_files(out: Path) -> dict[str, dict]:
    """Size, sha256 and (parquet) row count of every delivered file, by path inside `out`."""
    described = {}
    for path in final_files(out):
        record = file_record(path)
        if path.suffix == ".parquet":
            record["rows"] = pq.read_metadata(path).num_rows
        described[path.relative_to(out).as_posix()] = record
    return described


def lengths(prefs: Path) -> dict[str, dict[str, float]]:
    """Character-length summaries of chosen and rejected, for the dataset card."""
    import numpy as np

    files = sorted(prefs.glob("*.parquet"))
    summary = {}
    for column in ("chosen", "rejected"):
        parts = []  # 4 bytes a row: small even for millions of pairs
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(columns=[column]):
                content = pc.list_flatten(batch.column(0)).field("content")
                parts.append(pc.utf8_length(content).to_numpy(zero_copy_only=False)
                             .astype(np.int32))
        values = np.concatenate(parts) if parts else np.array([], dtype=np.int32)
        if values.size:
            summary[column] = {"mean": round(float(values.mean()), 1),
                               "median": int(np.median(values)), "max": int(values.max())}
    return summary
