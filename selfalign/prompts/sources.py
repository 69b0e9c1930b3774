"""Prompt sources: stream rows from JSONL, JSON arrays, parquet, CSV, dataset folders or stdin.

Every reader yields `PromptRecord` for a usable row and `Reject` for a malformed one, and goes on.
Nothing loads a whole file: JSONL and CSV are read line by line, JSON arrays element by element
(ijson), parquet batch by batch, and `datasets` folders are memory-mapped. Prompt text is kept
verbatim (normalising is `prepare`'s job). How one row becomes a prompt (plain text, a conversation,
a template over several columns) is decided by `FieldMap`; the conversation shapes live in
`selfalign.prompts.conversations`.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence

from selfalign.errors import UserError
from selfalign.prompts.behavior import BEHAVIOR, BehaviorError, BehaviorRule, expected_behavior
from selfalign.prompts.conversations import (
    CONVERSATION_MODES, LAST_USER, PromptTurns, messages_prompt, text_prompt, transcript_prompt,
    turns_prompt)
from selfalign.prompts.template import PromptTemplate
from selfalign.records import PromptRecord, Reject

STDIN = "-"
STDIN_SOURCE = "<stdin>"
BATCH_ROWS = 4096
PREPARED_FORMAT = "selfalign.prompts/1"  # the `format` key of a prepared folder's report.json
PREPARED_REPORT = "report.json"
SPLIT = "split"
DEFAULT_SPLIT = "train"
UTF8_BOM = b"\xef\xbb\xbf"
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".ndjson.gz")
CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
DATA_SUFFIXES = JSONL_SUFFIXES + CSV_SUFFIXES + PARQUET_SUFFIXES

ReadResult = PromptRecord | Reject

# How a cell becomes a prompt, and the column each shape is usually found in.
READERS: dict[str, Callable[[Any, str], PromptTurns | Reject]] = {
    "text": text_prompt, "messages": messages_prompt, "sharegpt": messages_prompt,
    "turns": turns_prompt, "hh": transcript_prompt,
}
SHAPE_COLUMNS = {"messages": "messages", "sharegpt": "conversations", "turns": "turns", "hh": "chosen"}
PROMPT_FORMATS = ("auto", *READERS)


@dataclass(frozen=True)
class FieldMap:
    """Which columns hold the prompt, its id and its user's id, and how the prompt is read.

    `prompt_format` "auto" decides per row by its keys, in this order: the text field, `messages`,
    `conversations` (ShareGPT), `turns` (MT-Bench), `chosen` (an HH-RLHF transcript). A forced
    format reads its own column and falls back to the text field; `hh` reads the text field first
    and falls back to `chosen`, as HH-style prompt columns are often named `prompt`.
    """

    text: str = "prompt"
    id: str = "id"
    user: str = "user_id"
    prompt_format: str = "auto"
    prompt_template: str | None = None  # e.g. "{ContextString}\n\n{Behavior}"
    conversation: str = LAST_USER  # or first-user
    behavior: BehaviorRule = BehaviorRule()  # how a row's expected behaviour is read

    def __post_init__(self) -> None:
        for name in ("text", "id", "user"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"Field name for '{name}' must be a non-empty string, got {value!r}.")
        if self.prompt_format not in PROMPT_FORMATS:
            raise UserError(f"--prompt-format must be one of {', '.join(PROMPT_FORMATS)}, "
                            f"got {self.prompt_format!r}.")
        if self.conversation not in CONVERSATION_MODES:
            raise UserError(f"--conversation must be one of {', '.join(CONVERSATION_MODES)}, "
                            f"got {self.conversation!r}.")
        if self.prompt_template is not None and self.prompt_format not in ("auto", "text"):
            raise UserError(f"--prompt-template makes a text prompt from columns; it cannot be "
                            f"combined with --prompt-format {self.prompt_format}.")
        _ = self.template  # a template with bad syntax is refused here, before any row is read

    @classmethod
    def from_settings(cls, settings: Any) -> "FieldMap":
        """The field options of a settings object, read by attribute name (missing ones default)."""
        default = cls()
        return cls(
            text=getattr(settings, "text_field", default.text),
            id=getattr(settings, "id_field", default.id),
            user=getattr(settings, "user_field", default.user),
            prompt_format=getattr(settings, "prompt_format", default.prompt_format),
            prompt_template=getattr(settings, "prompt_template", default.prompt_template),
            conversation=getattr(settings, "conversation", default.conversation),
            behavior=getattr(settings, "behavior_rule", default.behavior),
        )

    @cached_property
    def template(self) -> PromptTemplate | None:
        return None if self.prompt_template is None else PromptTemplate.parse(self.prompt_template)

    @cached_property
    def prompt_columns(self) -> list[tuple[str, str]]:
        """(shape, column) pairs to look for in a row, first match wins."""
        if self.prompt_format == "auto":
            return [("text", self.text), *SHAPE_COLUMNS.items()]
        if self.prompt_format == "text":
            return [("text", self.text)]
        if self.prompt_format == "hh":
            return [("hh", self.text), ("hh", SHAPE_COLUMNS["hh"])]
        return [(self.prompt_format, SHAPE_COLUMNS[self.prompt_format]), (self.prompt_format, self.text)]

    def explicit(self) -> list[str]:
        """Field names that must exist in a columnar source: template columns, renamed ids."""
        default = FieldMap()
        names = list(self.template.columns) if self.template else []
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
        yield from _json_rows(_stdin_bytes(), STDIN_SOURCE, fields)
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
            yield from _json_rows(stream, str(p), fields)
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
    turns, used = _prompt_of(row, fields)
    row_id = _optional_str(row.get(fields.id))
    if isinstance(turns, Reject):
        return _located(turns, source, line, row_id)
    user_id = _optional_str(row.get(fields.user))
    if not _encodable(turns.prompt, row_id, user_id, *(m["content"] for m in turns.context)):
        return Reject("undecodable", "text holds a lone surrogate (not valid UTF-8)", source, line, row_id)
    skip = (*used, fields.id, fields.user, SPLIT)
    metadata = {k: v for k, v in row.items() if k not in skip}
    metadata.update(turns.metadata)
    try:
        behavior = expected_behavior(row, fields.behavior)
    except BehaviorError as error:
        return Reject("bad_behavior", str(error), source, line, row_id)
    if behavior is not None:
        metadata[BEHAVIOR] = behavior
    record = PromptRecord(
        id=row_id or "",
        prompt=turns.prompt,
        context=turns.context,
        user_id=user_id,
        split=_optional_str(row.get(SPLIT)) or split,
        source=source,
        line=line,
        metadata=metadata,
    )
    if row_id is None:
        record.id = record.stable_id()
    return record


def _prompt_of(row: dict[str, Any], fields: FieldMap) -> tuple[PromptTurns | Reject, tuple[str, ...]]:
    """The prompt of a row, and the columns it was made from (they are not repeated in metadata)."""
    if fields.template is not None:
        text = fields.template.render(row)
        return (text if isinstance(text, Reject) else PromptTurns(text)), fields.template.columns
    for shape, column in fields.prompt_columns:
        if column in row:
            turns = READERS[shape](row[column], fields.conversation)
            if isinstance(turns, Reject):
                turns.detail = f"'{column}': {turns.detail}"
            return turns, (column,)
    wanted = ", ".join(f"'{c}'" for c in dict.fromkeys(c for _, c in fields.prompt_columns))
    available = ", ".join(sorted(row)) or "none"
    return Reject("missing_field", f"no prompt field ({wanted}); fields: {available}"), ()


def _located(reject: Reject, source: str, line: int, row_id: Any) -> Reject:
    reject.source, reject.line, reject.id = source, line, _optional_str(row_id)
    return reject


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value)
    return text if text.strip() else None


def _encodable(*texts: str | None) -> bool:
    """False if a text holds a lone surrogate, which UTF-8 (and so parquet) cannot store."""
    try:
        for text in texts:
            if text is not None:
                text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_fields(columns: Iterable[str], fields: FieldMap, source: str) -> None:
    """Raise UserError if a columnar source lacks a field the user asked for."""
    columns = list(columns)
    if fields.template is None and not any(c in columns for _, c in fields.prompt_columns):
        others = [c for _, c in fields.prompt_columns if c != fields.text]
        also = f" (conversation columns are read too: {', '.join(others)})" if others else ""
        _unknown_field(fields.text, columns, source, f"--text-field{also}")
    for name in fields.explicit():
        if name not in columns:
            template = fields.template is not None and name in fields.template.columns
            how = "--prompt-template" if template else "--id-field / --user-field"
            _unknown_field(name, columns, source, how)


def _unknown_field(name: str, columns: list[str], source: str, how: str) -> None:
    close = difflib.get_close_matches(name, columns, n=1)
    hint = f" Did you mean: {close[0]}?" if close else ""
    raise UserError(
        f"Unknown field '{name}' in {source}.{hint} Available fields: {', '.join(columns)}. "
        f"Choose with {how}."
    )


# ---------------------------------------------------------------- JSON lines and JSON arrays


def _open_binary(p: Path) -> BinaryIO:
    return gzip.open(p, "rb") if p.name.lower().endswith(".gz") else open(p, "rb")


def _stdin_bytes() -> BinaryIO:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        return buffer
    return io.BytesIO(sys.stdin.read().encode("utf-8"))  # stdin replaced by a text-only object


def _json_rows(stream: BinaryIO, source: str, fields: FieldMap) -> Iterator[ReadResult]:
    """JSON Lines, or a file holding one JSON array of objects (its first character is `[`)."""
    if not hasattr(stream, "peek"):
        stream = io.BufferedReader(stream)  # type: ignore[arg-type]
    try:
        if stream.peek(len(UTF8_BOM))[: len(UTF8_BOM)] == UTF8_BOM:
            stream.read(len(UTF8_BOM))
        is_array = stream.peek(1 << 16).lstrip()[:1] == b"["
        yield from (_array_rows if is_array else _jsonl_rows)(stream, source, fields)
    except (OSError, EOFError) as err:  # truncated or corrupt gzip: not a row problem
        raise UserError(f"Cannot read {source}: {err}. Is the file complete?") from err


def _jsonl_rows(stream: BinaryIO, source: str, fields: FieldMap) -> Iterator[ReadResult]:
    for number, raw in enumerate(stream, start=1):
        if raw.strip():
            yield _jsonl_row(raw, number, source, fields)


def _jsonl_row(raw: bytes, number: int, source: str, fields: FieldMap) -> ReadResult:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Reject("undecodable", f"not UTF-8 at byte {err.start}", source, number)
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        return Reject("invalid_json", f"{err.msg} at column {err.colno}", source, number)
    return _object_row(row, "line", number, source, fields)


def _array_rows(stream: BinaryIO, source: str, fields: FieldMap) -> Iterator[ReadResult]:
    """Elements of a JSON array, streamed by ijson; `line` is the element's 1-based position."""
    import ijson

    number = 0
    try:
        for number, row in enumerate(ijson.items(stream, "item", use_float=True), start=1):
            yield _object_row(row, "element", number, source, fields)
    except ijson.JSONError as err:
        raise UserError(
            f"{source} is not a valid JSON array after element {number}: {err}. Fix the file, or "
            "write one object per line (JSON Lines), which lets one bad row be skipped."
        ) from err


def _object_row(row: Any, where: str, number: int, source: str, fields: FieldMap) -> ReadResult:
    if not isinstance(row, dict):
        detail = f"{where} holds a JSON {type(row).__name__}, expected an object"
        return Reject("not_an_object", detail, source, number)
    return row_to_record(row, fields, source, number)


# ---------------------------------------------------------------- CSV


def _csv_rows(p: Path, fields: FieldMap) -> Iterator[ReadResult]:
    csv.field_size_limit(2**31 - 1)  # prompts can be long; the default limit is 128 KiB
    with _open_binary(p) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        header = _csv_header(header)
        check_fields(header, fields, str(p))
        start = reader.line_num + 1
        for values in reader:
            if values:
                yield _csv_row(header, values, p, start, fields)
            start = reader.line_num + 1


def _csv_header(names: list[str]) -> list[str]:
    """Column names, an empty one (pandas writes its index under "") named `unnamed_<position>`."""
    return [name if name.strip() else f"unnamed_{i}" for i, name in enumerate(names)]


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
        yield from read_prepared(p, fields.behavior)
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


def read_prepared(folder: Path, behavior: BehaviorRule = BehaviorRule()) -> Iterator[PromptRecord]:
    """Rows of a prepared folder, with their earlier turns, split, user, language, expected
    behaviour and original source and line. `behavior` marks rows prepare left unmarked."""
    import pyarrow.parquet as pq

    for split in prepared_splits(folder):
        path = folder / f"{split}.parquet"
        if not path.is_file():
            raise UserError(f"Prepared folder {folder} lists split '{split}' but {path.name} is missing.")
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                yield _prepared_record(row, behavior)


def _prepared_record(row: dict[str, Any], rule: BehaviorRule) -> PromptRecord:
    metadata = json.loads(row.get("metadata") or "{}")
    # The column is what prepare decided; folders from before it have none.
    behavior = row.get(BEHAVIOR) or metadata.get(BEHAVIOR) or _rule_behavior(metadata, rule)
    if behavior:
        metadata[BEHAVIOR] = behavior
    return PromptRecord(
        id=row["id"],
        prompt=row["prompt"],
        context=row.get("context") or [],  # folders written before multi-turn prompts have none
        user_id=row.get("user_id"),
        split=row["split"],
        source=row.get("source") or "",
        line=row.get("line"),
        language=row.get("language"),
        metadata=metadata,
    )


def _rule_behavior(metadata: dict[str, Any], rule: BehaviorRule) -> str | None:
    """A row prepare left unmarked, marked by a later reader's rule (`generate --behavior`):
    only `category` or the default can say anything now, so there is nothing to refuse."""
    try:
        return expected_behavior(metadata, rule)
    except BehaviorError:  # prepare already sent unreadable marks to rejects
        return None
