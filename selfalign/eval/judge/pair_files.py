"""Files of human-labelled pairs: JSON Lines, JSON arrays, parquet, CSV (each may be gzipped)
or a folder of them, read row by row into `HumanPair`s and `Reject`s; `--limit` samples a
seeded, repeatable subset."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

from selfalign.errors import UserError
from selfalign.eval.judge.human_pairs import HumanPair, pair_of_row
from selfalign.prompts.sources import (CSV_SUFFIXES, DATA_SUFFIXES, JSONL_SUFFIXES,
                                       PARQUET_SUFFIXES, UTF8_BOM, _csv_header, _open_binary)
from selfalign.records import Reject
from selfalign.stable_hash import unit_hash

Row = dict[str, Any] | Reject


def read_pairs(paths: Sequence[str], subset_field: str | None = None
               ) -> tuple[list[HumanPair], list[Reject]]:
    """Every usable pair of every file, in order, and every row that gave none."""
    pairs, rejects = [], []
    for path in _data_files(paths):
        for line, row in _rows(path):
            item = row if isinstance(row, Reject) else pair_of_row(row, str(path), line,
                                                                   subset_field)
            if isinstance(item, Reject):
                item.source, item.line = str(path), line
                rejects.append(item)
            else:
                pairs.append(item)
    return pairs, rejects


def sample_pairs(pairs: list[HumanPair], limit: int | None, seed: int) -> list[HumanPair]:
    """At most `limit` pairs, chosen by a hash of (seed, file name, line, id): the same pairs
    on every re-run, wherever the files are; kept in file order."""
    if limit is None or len(pairs) <= limit:
        return pairs
    keyed = sorted(range(len(pairs)), key=lambda i: unit_hash(json.dumps(
        [seed, Path(pairs[i].source).name, pairs[i].line, pairs[i].id])))
    return [pairs[i] for i in sorted(keyed[:limit])]


def _data_files(paths: Sequence[str]) -> list[Path]:
    files = []
    for path in map(Path, paths):
        if path.is_dir() and (path / "manifest.json").is_file() and (path / "prefs").is_dir():
            path = path / "prefs"  # a run folder or a `label export` folder: its pairs only
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file()
                           and f.name.lower().endswith(DATA_SUFFIXES)
                           and not any(p.startswith((".", "_")) for p in f.relative_to(path).parts))
            if not found:
                raise UserError(f"--pairs {path}: the folder holds no data files "
                                f"({', '.join(DATA_SUFFIXES)})")
            files += found
        elif path.is_file():
            if not path.name.lower().endswith(DATA_SUFFIXES):
                raise UserError(f"--pairs {path}: unsupported file; expected one of "
                                f"{', '.join(DATA_SUFFIXES)} or a folder of them")
            files.append(path)
        else:
            raise UserError(f"--pairs {path}: no such file or folder")
    return files


def _rows(path: Path) -> Iterator[tuple[int, Row]]:
    name = path.name.lower()
    try:
        if name.endswith(PARQUET_SUFFIXES):
            yield from _parquet_rows(path)
        elif name.endswith(CSV_SUFFIXES):
            yield from _csv_rows(path)
        elif name.endswith(JSONL_SUFFIXES):
            yield from _json_rows(path)
    except (OSError, EOFError, ValueError) as err:  # truncated gzip, broken parquet or array
        raise UserError(f"--pairs {path}: cannot read it ({err}). Is the file complete?") from None


def _json_rows(path: Path) -> Iterator[tuple[int, Row]]:
    # Evaluation sets hold thousands of pairs, not millions: reading the file at once keeps this
    # simple (the prompt readers stream, as their inputs can be any size).
    with _open_binary(path) as stream:
        data = stream.read()
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    if data.lstrip()[:1] == b"[":
        rows = json.loads(data.decode("utf-8"))
        yield from ((n, _object(row, "element")) for n, row in enumerate(rows, start=1))
        return
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.strip():
            yield number, _jsonl_row(raw)


def _jsonl_row(raw: bytes) -> Row:
    try:
        return _object(json.loads(raw.decode("utf-8")), "line")
    except UnicodeDecodeError as err:
        return Reject("undecodable", f"not UTF-8 at byte {err.start}")
    except json.JSONDecodeError as err:
        return Reject("invalid_json", f"{err.msg} at column {err.colno}")


def _object(row: Any, where: str) -> Row:
    if isinstance(row, dict):
        return row
    return Reject("not_an_object", f"{where} holds a JSON {type(row).__name__}, expected an object")


def _csv_rows(path: Path) -> Iterator[tuple[int, Row]]:
    csv.field_size_limit(2**31 - 1)
    with _open_binary(path) as binary:
        reader = csv.reader(io.TextIOWrapper(binary, encoding="utf-8-sig", newline=""))
        header = next(reader, None)
        if header is None:
            return
        header = _csv_header(header)
        start = reader.line_num + 1
        for values in reader:
            if values:
                yield start, (dict(zip(header, (v if v != "" else None for v in values)))
                              if len(values) == len(header) else
                              Reject("wrong_columns", f"{len(values)} values for "
                                                      f"{len(header)} columns"))
            start = reader.line_num + 1


def _parquet_rows(path: Path) -> Iterator[tuple[int, Row]]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            yield number, row
