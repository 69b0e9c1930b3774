"""Prompt sources: stream rows from JSONL, parquet, CSV, dataset folders or stdin as records.

Every reader yields `PromptRecord` for a usable row and `Reject` for a malformed one, and goes on.
Nothing loads a whole file: JSONL and CSV are read line by line, parquet batch by batch, and
`datasets` folders are memory-mapped. Prompt text is kept verbatim (normalising is `prepare`'s job).
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import json
import sys
from dataclasses import dataclass, fields as dataclass_fields
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Sequence

from selfalign.errors import UserError
from selfalign.records import PromptRecord, Reject, stable_prompt_id

STDIN = "-"
STDIN_SOURCE = "<stdin>"
BATCH_ROWS = 4096
PREPARED_FORMAT = "selfalign.prompts/1"  # the `format` key of a prepared folder's report.json
PREPARED_REPORT = "report.json"
MESSAGES = "messages"
SPLIT = "split"
DEFAULT_SPLIT = "train"
UTF8_BOM = b"\xef\xbb\xbf"
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")
CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
DATA_SUFFIXES = JSONL_SUFFIXES + CSV_SUFFIXES + PARQUET_SUFFIXES

ReadResult = PromptRecord | Reject


@dataclass(frozen=True)
class FieldMap:
    """Which columns hold the prompt text, its id and its user's id."""

    text: str = "prompt"
    id: str = "id"
    user: str = "user_id"

    def __post_init__(self) -> None:
        for f in dataclass_fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"Field name for '{f.name}' must be a non-empty string, got {value!r}.")

    def explicit(self) -> list[str]:
        """Field names that must exist in a columnar source: the text, and ids the user renamed."""
        default = FieldMap()
        names = [self.text]
        names += [n for n, d in ((self.id, default.id), (self.user, default.user)) if n != d]
        return names


def read_prompts(paths: Sequence[str], fields: FieldMap = FieldMap()) -> Iterator[ReadResult]:
    """Stream records from each source in order; never load a whole file in memory.

    Missing inputs raise UserError at the call, before any row is read; a field missing from a
    columnar source raises when that source is reached.
    """
    if isinstance(paths, (str, Path)):
        paths = [str(paths)]
    for path in paths:
        if path != STDIN and not Path(path).exists():
            raise UserError(f"Input not found: {path}. Give a file, a folder, or '-' for JSONL on stdin.")
    return (item for path in paths for item in _read_source(str(path), fields))


def _read_source(path: str, fields: FieldMap) -> Iterator[ReadResult]:
    if path == STDIN:
        yield from _jsonl_rows(_stdin_bytes(), STDIN_SOURCE, fields)
    elif Path(path).is_dir():
        yield from _read_folder(Path(path), fields)
    else:
        yield from _read_file(Path(path), fields)


def _read_file(p: Path, fields: FieldMap) -> Iterator[ReadResult]:
    name = p.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        yield from _parquet_rows(p, fields)
    elif name.endswith(CSV_SUFFIXES):
        yield from _csv_rows(p, fields)
    elif name.endswith(JSONL_SUFFIXES):
        with _open_binary(p) as stream:
            yield from _jsonl_rows(stream, str(p), fields)
    else:
        raise UserError(
            f"Unsupported input file {p}: expected one of {', '.join(DATA_SUFFIXES)}, "
            "a folder, or '-' for JSONL on stdin."
        )


# ---------------------------------------------------------------- rows to records


def row_to_record(
    row: dict[str, Any], fields: FieldMap, source: str, line: int, split: str = DEFAULT_SPLIT
) -> ReadResult:
    """Turn one parsed row into a record, or a Reject saying what is wrong with it."""
    prompt = _prompt_of(row, fields)
    if isinstance(prompt, Reject):
        return _located(prompt, source, line, row.get(fields.id))
    row_id = _optional_str(row.get(fields.id))
    for value in (prompt, row_id, _optional_str(row.get(fields.user))):
        if value is not None and not _encodable(value):
            return Reject("undecodable", "text holds a lone surrogate (not valid UTF-8)", source, line, row_id)
    used = {fields.text, fields.id, fields.user, SPLIT}
    return PromptRecord(
        id=row_id if row_id is not None else stable_prompt_id(prompt),
        prompt=prompt,
        user_id=_optional_str(row.get(fields.user)),
        split=_optional_str(row.get(SPLIT)) or split,
        source=source,
        line=line,
        metadata={k: v for k, v in row.items() if k not in used},
    )


def _prompt_of(row: dict[str, Any], fields: FieldMap) -> str | Reject:
    """The prompt text: the text field, else the first user turn of a chat-format row."""
    if fields.text in row:
        value = row[fields.text]
    elif MESSAGES in row:
        value = row[MESSAGES]
    else:
        available = ", ".join(sorted(row)) or "none"
        return Reject("missing_field", f"no field '{fields.text}' (or '{MESSAGES}'); fields: {available}")
    if isinstance(value, list):  # chat format, in `messages` or as a TRL conversational prompt
        value = _first_user_turn(value)
        if isinstance(value, Reject):
            return value
    if value is None:
        return Reject("empty_prompt", "prompt is null")
    if not isinstance(value, str):
        return Reject("not_a_string", f"'{fields.text}' is {type(value).__name__}, expected a string")
    if not value.strip():
        return Reject("empty_prompt", "prompt is empty or only whitespace")
    return value


def _first_user_turn(messages: list[Any]) -> str | Reject:
    for turn in messages:
        if isinstance(turn, dict) and turn.get("role") == "user":
            content = turn.get("content")
            if isinstance(content, str):
                return content
            return Reject("not_a_string", f"first user turn content is {type(content).__name__}")
    return Reject("missing_field", "chat messages have no turn with role 'user'")


def _located(reject: Reject, source: str, line: int, row_id: Any) -> Reject:
    reject.source, reject.line, reject.id = source, line, _optional_str(row_id)
    return reject


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value)
    return text if text.strip() else None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_fields(columns: Iterable[str], fields: FieldMap, source: str) -> None:
    """Raise UserError if a columnar source lacks a field the user asked for."""
    columns = list(columns)
    for name in fields.explicit():
        if name in columns or (name == fields.text and MESSAGES in columns):
            continue
        close = difflib.get_close_matches(name, columns, n=1)
        hint = f" Did you mean: {close[0]}?" if close else ""
        raise UserError(
            f"Unknown field '{name}' in {source}.{hint} Available fields: {', '.join(columns)}. "
            "Choose one with --text-field / --id-field / --user-field."
        )


# ---------------------------------------------------------------- JSON lines


def _open_binary(p: Path) -> BinaryIO:
    return gzip.open(p, "rb") if p.name.lower().endswith(".gz") else open(p, "rb")


def _stdin_bytes() -> BinaryIO:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        return buffer
    return io.BytesIO(sys.stdin.read().encode("utf-8"))  # stdin replaced by a text-only object


def _jsonl_rows(stream: BinaryIO, source: str, fields: FieldMap) -> Iterator[ReadResult]:
    try:
        for number, raw in enumerate(stream, start=1):
            if number == 1:
                raw = raw.removeprefix(UTF8_BOM)
                if raw.lstrip().startswith(b"["):
                    _refuse_json_array(source)
            if raw.strip():
                yield _jsonl_row(raw, number, source, fields)
    except (OSError, EOFError) as err:  # truncated or corrupt gzip: not a row problem
        raise UserError(f"Cannot read {source}: {err}. Is the file complete?") from err


def _jsonl_row(raw: bytes, number: int, source: str, fields: FieldMap) -> ReadResult:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Reject("undecodable", f"not UTF-8 at byte {err.start}", source, number)
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        return Reject("invalid_json", f"{err.msg} at column {err.colno}", source, number)
    if not isinstance(row, dict):
        return Reject("not_an_object", f"line holds a JSON {type(row).__name__}, expected an object", source, number)
    return row_to_record(row, fields, source, number)


def _refuse_json_array(source: str) -> None:
    raise UserError(
        f"{source} holds a JSON array; selfalign reads JSON Lines (one object per line) so it can "
        f"stream. Convert it with: jq -c '.[]' {source} > prompts.jsonl"
    )


# ---------------------------------------------------------------- CSV


def _csv_rows(p: Path, fields: FieldMap) -> Iterator[ReadResult]:
    csv.field_size_limit(2**31 - 1)  # prompts can be long; the default limit is 128 KiB
    with _open_binary(p) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        check_fields(header, fields, str(p))
        start = reader.line_num + 1
        for values in reader:
            if values:
                yield _csv_row(header, values, p, start, fields)
            start = reader.line_num + 1


def _csv_row(header: list[str], values: list[str], p: Path, line: int, fields: FieldMap) -> ReadResult:
    if len(values) != len(header):
        return Reject("wrong_columns", f"{len(values)} values for {len(header)} columns", str(p), line)
    row: dict[str, Any] = {k: (v if v != "" else None) for k, v in zip(header, values)}
    return row_to_record(row, fields, str(p), line)


# ---------------------------------------------------------------- parquet and datasets


def _parquet_rows(p: Path, fields: FieldMap, split: str = DEFAULT_SPLIT) -> Iterator[ReadResult]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(p)
    except Exception as err:  # pyarrow raises several types for a file that is not parquet
        raise UserError(f"Cannot read {p} as parquet: {err}") from err
    check_fields(parquet.schema_arrow.names, fields, str(p))
    batches = (batch.to_pylist() for batch in parquet.iter_batches(batch_size=BATCH_ROWS))
    yield from _numbered_rows(batches, fields, str(p), split)


def _numbered_rows(
    batches: Iterable[list[dict[str, Any]]], fields: FieldMap, source: str, split: str
) -> Iterator[ReadResult]:
    number = 0
    for rows in batches:
        for row in rows:
            number += 1
            yield row_to_record(row, fields, source, number, split)


def _dataset_rows(p: Path, fields: FieldMap) -> Iterator[ReadResult]:
    import datasets

    loaded = datasets.load_from_disk(str(p))
    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(DEFAULT_SPLIT, loaded)]
    for split, dataset in parts:
        source = str(p / split) if isinstance(loaded, datasets.DatasetDict) else str(p)
        check_fields(dataset.column_names, fields, source)
        batches = (_batch_rows(b) for b in dataset.iter(batch_size=BATCH_ROWS))
        yield from _numbered_rows(batches, fields, source, split)


def _batch_rows(batch: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(batch)
    return [dict(zip(keys, values)) for values in zip(*batch.values())]


# ---------------------------------------------------------------- folders


def _read_folder(p: Path, fields: FieldMap) -> Iterator[ReadResult]:
    if (p / PREPARED_REPORT).is_file():
        yield from read_prepared(p)
    elif (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():
        yield from _dataset_rows(p, fields)
    else:
        files = sorted(f for f in p.rglob("*") if f.is_file() and _is_data_file(f, p))
        if not files:
            raise UserError(
                f"Folder {p} holds no prompt files ({', '.join(DATA_SUFFIXES)}), no prepared "
                f"{PREPARED_REPORT} and no saved `datasets` dataset."
            )
        for f in files:
            yield from _read_file(f, fields)


def _is_data_file(f: Path, root: Path) -> bool:
    hidden = any(part.startswith((".", "_")) for part in f.relative_to(root).parts)
    return not hidden and f.name.lower().endswith(DATA_SUFFIXES)


def prepared_splits(folder: Path) -> list[str]:
    """The split names a prepared folder holds, in the order its report lists them."""
    try:
        report = json.loads((folder / PREPARED_REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"Cannot read {folder / PREPARED_REPORT}: {err}") from err
    if not isinstance(report, dict) or report.get("format") != PREPARED_FORMAT:
        raise UserError(
            f"{folder / PREPARED_REPORT} is not a report of `selfalign prompts prepare` "
            f"(expected \"format\": \"{PREPARED_FORMAT}\"). Re-run prepare into this folder."
        )
    return list(report.get("splits", []))


def read_prepared(folder: Path) -> Iterator[PromptRecord]:
    """Rows of a prepared folder, with their split, user, language and original source and line."""
    import pyarrow.parquet as pq

    for split in prepared_splits(folder):
        path = folder / f"{split}.parquet"
        if not path.is_file():
            raise UserError(f"Prepared folder {folder} lists split '{split}' but {path.name} is missing.")
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                yield _prepared_record(row)


def _prepared_record(row: dict[str, Any]) -> PromptRecord:
    return PromptRecord(
        id=row["id"],
        prompt=row["prompt"],
        user_id=row.get("user_id"),
        split=row["split"],
        source=row.get("source") or "",
        line=row.get("line"),
        language=row.get("language"),
        metadata=json.loads(row.get("metadata") or "{}"),
    )
