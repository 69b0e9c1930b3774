"""Readers: each format, gzip, stdin, chat rows, malformed rows, verbatim text, field errors."""

from __future__ import annotations

import gzip
import io
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from selfalign.errors import UserError
from selfalign.prompts.sources import FieldMap, read_prompts
from selfalign.records import PromptRecord, Reject, stable_prompt_id

FIXTURES = Path(__file__).parent / "fixtures" / "prompts"
TEMPLATE_TEXT = "Fill in {{ name }} and {0} and %s then </s> <|im_end|>"


def _split(items):
    records = [i for i in items if isinstance(i, PromptRecord)]
    rejects = [i for i in items if isinstance(i, Reject)]
    return records, rejects


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- JSONL


def test_jsonl_malformed_rows_are_rejected_with_their_line_numbers():
    records, rejects = _split(list(read_prompts([str(FIXTURES / "mixed.jsonl")])))
    assert [(r.line, r.reason) for r in rejects] == [
        (2, "invalid_json"),
        (3, "not_a_string"),
        (4, "empty_prompt"),
        (5, "missing_field"),
        (6, "not_an_object"),
        (7, "undecodable"),
    ]
    assert all(r.source == str(FIXTURES / "mixed.jsonl") and r.stage == "read" for r in rejects)
    assert [(r.line, r.id) for r in records] == [(1, "a1"), (9, "a9"), (10, stable_prompt_id("No id here"))]


def test_rejects_carry_the_row_id_when_there_is_one():
    _, rejects = _split(list(read_prompts([str(FIXTURES / "mixed.jsonl")])))
    assert {r.line: r.id for r in rejects}[3] == "a3"


def test_template_like_text_is_kept_verbatim():
    records, _ = _split(list(read_prompts([str(FIXTURES / "mixed.jsonl")])))
    assert records[0].prompt == TEMPLATE_TEXT
    assert records[0].metadata == {"topic": "templates"}


def test_messages_row_sets_its_system_turn_aside():
    records, _ = _split(list(read_prompts([str(FIXTURES / "mixed.jsonl")])))
    chat = records[1]
    assert (chat.prompt, chat.context, chat.metadata) == ("Name a prime number.", [], {"system": "Be brief."})


def test_ids_and_user_ids_are_stringified():
    records, _ = _split(list(read_prompts([str(FIXTURES / "mixed.jsonl")])))
    assert records[2].user_id == "7"
    assert records[0].split == "train"


def test_gzip_jsonl_reads_like_plain(tmp_path):
    gz = tmp_path / "mixed.jsonl.gz"
    gz.write_bytes(gzip.compress((FIXTURES / "mixed.jsonl").read_bytes()))
    plain = list(read_prompts([str(FIXTURES / "mixed.jsonl")]))
    zipped = list(read_prompts([str(gz)]))
    assert [(type(x), x.line, getattr(x, "prompt", None)) for x in zipped] == [
        (type(x), x.line, getattr(x, "prompt", None)) for x in plain
    ]


def test_stdin_is_read_as_jsonl(monkeypatch):
    data = b'{"prompt": "from stdin", "id": 1}\nnot json\n'
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    records, rejects = _split(list(read_prompts(["-"])))
    assert [(r.prompt, r.id, r.source, r.line) for r in records] == [("from stdin", "1", "<stdin>", 1)]
    assert [(r.reason, r.line) for r in rejects] == [("invalid_json", 2)]


def test_custom_field_names(tmp_path):
    path = _write_jsonl(tmp_path / "p.jsonl", [{"q": "Why?", "key": "k1", "who": "bob", "split": "test"}])
    (record,) = read_prompts([str(path)], FieldMap(text="q", id="key", user="who"))
    assert (record.prompt, record.id, record.user_id, record.split, record.metadata) == ("Why?", "k1", "bob", "test", {})


@pytest.mark.parametrize("name, content, message", [
    ("array.json", '[{"prompt": "a"}, {"prompt": "b"', "not a valid JSON array after element 1"),
    ("p.txt", "x", "Unsupported input file .*p.txt"),
])
def test_unreadable_file_kinds_are_refused_with_a_fix(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        list(read_prompts([str(path)]))


def test_missing_input_raises_at_call_naming_the_file(tmp_path):
    with pytest.raises(UserError, match="nope.jsonl"):
        read_prompts([str(tmp_path / "nope.jsonl")])


def test_lone_surrogate_is_undecodable(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"prompt": "bad \\ud800 text"}\n')
    (reject,) = read_prompts([str(path)])
    assert (reject.reason, reject.line) == ("undecodable", 1)


# ---------------------------------------------------------------- CSV, parquet, folders


def test_csv_rows_with_physical_line_numbers():
    records, rejects = _split(list(read_prompts([str(FIXTURES / "simple.csv")])))
    assert [(r.id, r.prompt, r.user_id, r.line) for r in records] == [
        ("c1", "Hello, world", "u1", 2),
        ("c2", "Two\nlines", None, 3),
    ]
    assert records[0].metadata == {"topic": "greeting"}
    assert [(r.id, r.reason, r.line) for r in rejects] == [("c3", "empty_prompt", 5)]


def _parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_parquet_rows_numbered_from_one(tmp_path):
    path = _parquet(tmp_path / "p.parquet", [
        {"id": 1, "prompt": TEMPLATE_TEXT, "user_id": "u", "score": 0.5},
        {"id": 2, "prompt": None, "user_id": None, "score": 1.0},
    ])
    record, reject = read_prompts([str(path)])
    assert (record.id, record.prompt, record.line, record.metadata) == ("1", TEMPLATE_TEXT, 1, {"score": 0.5})
    assert (reject.reason, reject.line, reject.id) == ("empty_prompt", 2, "2")


def test_parquet_messages_column(tmp_path):
    path = _parquet(tmp_path / "chat.parquet", [{"messages": [{"role": "user", "content": "Hi there"}]}])
    (record,) = read_prompts([str(path)])
    assert record.prompt == "Hi there"


@pytest.mark.parametrize("fields, missing", [
    (FieldMap(text="promt"), "promt"),
    (FieldMap(user="author"), "author"),
])
def test_unknown_field_in_columnar_source_lists_available(tmp_path, fields, missing):
    path = _parquet(tmp_path / "p.parquet", [{"id": 1, "prompt": "x", "user_id": "u"}])
    with pytest.raises(UserError) as err:
        list(read_prompts([str(path)], fields))
    message = str(err.value)
    assert f"'{missing}'" in message and "p.parquet" in message
    assert "Available fields: id, prompt, user_id" in message


def test_unknown_field_in_csv_suggests_nearest():
    with pytest.raises(UserError, match="Did you mean: prompt\\? Available fields: id, prompt, user_id, topic"):
        list(read_prompts([str(FIXTURES / "simple.csv")], FieldMap(text="promt")))


def test_default_id_and_user_columns_may_be_absent(tmp_path):
    path = _parquet(tmp_path / "p.parquet", [{"prompt": "only text"}])
    (record,) = read_prompts([str(path)])
    assert (record.id, record.user_id) == (stable_prompt_id("only text"), None)


def test_folder_of_files_is_read_in_name_order(tmp_path):
    _parquet(tmp_path / "b.parquet", [{"prompt": "second"}])
    _write_jsonl(tmp_path / "a.jsonl", [{"prompt": "first"}])
    (tmp_path / "notes.txt").write_text("ignored")
    assert [r.prompt for r in read_prompts([str(tmp_path)])] == ["first", "second"]


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(UserError, match="holds no prompt files"):
        list(read_prompts([str(tmp_path)]))


def test_saved_datasets_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    data = datasets.DatasetDict({
        "train": datasets.Dataset.from_list([{"prompt": "one", "id": "d1"}]),
        "test": datasets.Dataset.from_list([{"prompt": "two", "id": "d2"}]),
    })
    data.save_to_disk(str(tmp_path / "ds"))
    records = list(read_prompts([str(tmp_path / "ds")]))
    assert sorted((r.id, r.split) for r in records) == [("d1", "train"), ("d2", "test")]


def test_saved_single_dataset_unknown_field(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list([{"question": "one"}]).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(UserError, match="Available fields: question"):
        list(read_prompts([str(tmp_path / "ds")]))
    (record,) = read_prompts([str(tmp_path / "ds")], FieldMap(text="question"))
    assert record.prompt == "one"


def test_fixture_copy_keeps_source_path(tmp_path):
    copy = tmp_path / "copy.jsonl"
    shutil.copy(FIXTURES / "mixed.jsonl", copy)
    assert {x.source for x in read_prompts([str(copy)])} == {str(copy)}
