"""Readers of every prompt shape: exact prompt messages, ids, and rejects with their line numbers."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from selfalign.errors import UserError
from selfalign.generate.settings import GenerateSettings
from selfalign.prompts.sources import FieldMap, read_prompts
from selfalign.records import PromptRecord, Reject, stable_prompt_id

FIXTURES = Path(__file__).parent / "fixtures" / "prompts"


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def conversation_id(messages: list[dict]) -> str:
    """The documented id of a multi-turn prompt, computed independently of the code under test."""
    canonical = json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "p-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def read(path, **fields):
    items = list(read_prompts([str(path)], FieldMap(**fields)))
    return ([i for i in items if isinstance(i, PromptRecord)], [i for i in items if isinstance(i, Reject)])


def shown(records):
    return [(r.line, r.id, r.conversation()) for r in records]


def reasons(rejects):
    return [(r.line, r.id, r.reason) for r in rejects]


# ---------------------------------------------------------------- OpenAI / TRL messages


def test_messages_rows_keep_the_whole_conversation():
    records, rejects = read(FIXTURES / "messages.jsonl")
    first = [user("I keep forgetting to water my plants."), assistant("A weekly phone reminder helps."),
             user("Which day of the week is best?")]
    assert shown(records) == [
        (1, conversation_id(first), first),
        (2, "m2", [user("Is {placeholder} or %s kept as it is?")]),
        (3, "m3", [user("Tell me a fact.")]),  # its reply is not sent
    ]
    assert records[0].prompt == "Which day of the week is best?" and records[0].context == first[:2]
    assert records[0].metadata == {"system": "Answer in one sentence."}  # not sent, kept aside
    assert records[0].user_id == "u1" and records[1].metadata == {}
    assert records[2].metadata == {"reply": "Honey never spoils."}
    assert reasons(rejects) == [
        (4, "m4", "empty_turn"), (5, "m5", "unknown_role"),
        (6, "m6", "no_user_turn"), (7, "m7", "not_alternating"),
    ]
    assert rejects[0].detail == "'messages': turn 2 (assistant) is empty"
    assert "role 'tool'" in rejects[1].detail


def test_first_user_keeps_only_the_first_user_turn_and_its_text_id():
    records, rejects = read(FIXTURES / "messages.jsonl", conversation="first-user")
    assert [(r.line, r.id, r.prompt, r.context) for r in records] == [
        (1, stable_prompt_id("I keep forgetting to water my plants."), "I keep forgetting to water my plants.", []),
        (2, "m2", "Is {placeholder} or %s kept as it is?", []),
        (3, "m3", "Tell me a fact.", []),  # what follows the first user turn is not read
        (4, "m4", "First question.", []),
        (7, "m7", "One.", []),
    ]
    assert reasons(rejects) == [(5, "m5", "unknown_role"), (6, "m6", "no_user_turn")]


def test_single_turn_ids_are_unchanged_by_the_conversation_readers(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "Plain text"}) + "\n" + json.dumps({"messages": [user("Plain text")]}) + "\n")
    records, _ = read(path)
    assert [r.id for r in records] == [stable_prompt_id("Plain text")] * 2


def test_trl_prompt_column_holding_messages(tmp_path):
    path = tmp_path / "p.jsonl"
    conversation = [user("Hi"), assistant("Hello!"), user("How are you?")]
    path.write_text(json.dumps({"prompt": conversation, "chosen": [assistant("Fine.")]}) + "\n")
    (record,), _ = read(path)
    assert record.conversation() == conversation and record.metadata == {"chosen": [assistant("Fine.")]}


# ---------------------------------------------------------------- ShareGPT, as one JSON array


def test_sharegpt_array_is_streamed_with_element_numbers():
    records, rejects = read(FIXTURES / "sharegpt.json")
    assert shown(records) == [
        (1, "s1", [user("Recommend a board game for two."), assistant("Try Patchwork."), user("Something shorter?")]),
        (2, "s2", [user("Capital of Peru?")]),
        (4, "s4", [user("Hi")]),
    ]
    assert records[1].metadata == {"system": "You are terse."}
    assert records[2].metadata == {"reply": "Hello"}
    assert reasons(rejects) == [(3, "s3", "unknown_role"), (5, None, "not_an_object")]
    assert rejects[0].detail == "'conversations': turn 2 has role 'bard'; known roles: user, human, assistant, gpt, system"


def test_json_array_with_bom_gzip_and_stdin(tmp_path, monkeypatch):
    data = b"\xef\xbb\xbf  \n[" + b",".join(json.dumps({"prompt": f"q{i}", "n": 0.5}).encode() for i in range(3)) + b"]"
    (tmp_path / "a.json.gz").write_bytes(gzip.compress(data))
    records, _ = read(tmp_path / "a.json.gz")
    assert [(r.line, r.prompt, r.metadata) for r in records] == [(i + 1, f"q{i}", {"n": 0.5}) for i in range(3)]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert [r.prompt for r in read_prompts(["-"])] == ["q0", "q1", "q2"]


def test_json_lines_stay_json_lines(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"prompt": "one"}\n["not", "an", "object"]\n{"prompt": "three"}\n')
    records, rejects = read(path)
    assert [(r.line, r.prompt) for r in records] == [(1, "one"), (3, "three")]
    assert reasons(rejects) == [(2, None, "not_an_object")]


# ---------------------------------------------------------------- MT-Bench turns


def test_mtbench_turns_prompt_is_the_first_turn_and_follow_ups_are_kept():
    records, rejects = read(FIXTURES / "mtbench.jsonl", id="question_id")
    assert [(r.line, r.id, r.conversation(), r.metadata) for r in records] == [
        (1, "81", [user("Write a haiku about rain.")],
         {"category": "writing", "follow_ups": ["Now rewrite it as a limerick."]}),
        (2, "82", [user("Name three rivers in Africa.")], {"category": "stem"}),
    ]
    assert reasons(rejects) == [(3, "83", "empty_turn")]


def test_forced_turns_format_reads_the_text_field(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"questions": ["Why is the sky blue?", "And at sunset?"]}) + "\n")
    (record,), _ = read(path, text="questions", prompt_format="turns")
    assert record.prompt == "Why is the sky blue?" and record.metadata == {"follow_ups": ["And at sunset?"]}


# ---------------------------------------------------------------- HH-RLHF transcripts


def test_hh_transcript_drops_the_final_assistant_turn():
    records, rejects = read(FIXTURES / "hh.jsonl")
    weeds = [user("How do I get rid of weeds?"), assistant("Pull them by hand after rain."),
             user("What about the ones in paving cracks?")]
    assert shown(records) == [(1, conversation_id(weeds), weeds), (2, stable_prompt_id("Say hi."), [user("Say hi.")])]
    assert set(records[0].metadata) == {"rejected", "reply"}
    assert records[0].metadata["reply"] == "Pour boiling water on them."
    assert reasons(rejects) == [(3, None, "no_user_turn"), (4, None, "empty_turn")]
    assert rejects[0].detail == "'chosen': the transcript has no Human turn"


def test_hh_first_user(tmp_path):
    records, _ = read(FIXTURES / "hh.jsonl", conversation="first-user")
    assert [r.conversation() for r in records] == [[user("How do I get rid of weeds?")], [user("Say hi.")]]


def test_forced_hh_reads_a_prompt_column_of_transcripts(tmp_path):
    path = tmp_path / "p.jsonl"
    row = {"prompt": "\n\nHuman: Any tips for a first marathon?\n\nAssistant:", "chosen": " Start slow."}
    path.write_text(json.dumps(row) + "\n")
    (record,), _ = read(path, prompt_format="hh")
    assert record.conversation() == [user("Any tips for a first marathon?")]
    assert record.metadata == {"chosen": " Start slow."}


def test_text_before_the_first_label_is_not_a_transcript(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"chosen": "Preface\n\nHuman: Hi\n\nAssistant: Hello"}) + "\n")
    (reject,) = read_prompts([str(path)])
    assert (reject.line, reject.reason) == (1, "not_a_transcript")


# ---------------------------------------------------------------- CSV as it comes, prompt templates


HARMBENCH_CSV = (
    "\ufeff,Behavior,ContextString,BehaviorID\r\n"
    '0,Summarise the memo in one line,"MEMO: the office moves on {date}.\r\nBring 100% of your %s files.",memo\r\n'
    "1,List three safe household cleaners,,cleaners\r\n"
    "2,,,empty\r\n"
)


def _harmbench(tmp_path) -> Path:
    path = tmp_path / "behaviors.csv"
    path.write_bytes(HARMBENCH_CSV.encode("utf-8"))
    return path


def test_template_joins_columns_and_keeps_cells_verbatim(tmp_path):
    records, rejects = read(_harmbench(tmp_path), id="BehaviorID",
                            prompt_template="{ContextString}\\n\\n{Behavior}")
    assert [(r.line, r.id, r.prompt, r.metadata) for r in records] == [
        (2, "memo", "MEMO: the office moves on {date}.\r\nBring 100% of your %s files.\n\nSummarise the memo in one line",
         {"unnamed_0": "0"}),
        (4, "cleaners", "\n\nList three safe household cleaners", {"unnamed_0": "1"}),
    ]
    assert reasons(rejects) == [(5, "empty", "empty_prompt")]


def test_csv_unnamed_index_column_can_be_the_id(tmp_path):
    records, _ = read(_harmbench(tmp_path), text="Behavior", id="unnamed_0")
    assert [(r.line, r.id, r.prompt) for r in records] == [
        (2, "0", "Summarise the memo in one line"), (4, "1", "List three safe household cleaners")]


def test_template_column_missing_from_a_csv_lists_the_available_ones(tmp_path):
    with pytest.raises(UserError, match="Unknown field 'Context'.*Did you mean: ContextString\\? "
                                        "Available fields: unnamed_0, Behavior, ContextString, BehaviorID"):
        list(read_prompts([str(_harmbench(tmp_path))], FieldMap(prompt_template="{Context} {Behavior}")))


def test_template_column_missing_from_a_jsonl_row_is_a_reject(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"a": "x", "b": "y"}) + "\n" + json.dumps({"a": "only a"}) + "\n")
    records, rejects = read(path, prompt_template="{a} / {b}")
    assert [r.prompt for r in records] == ["x / y"]
    assert [(r.line, r.reason, r.detail) for r in rejects] == [
        (2, "missing_field", "no field 'b' named by --prompt-template; fields: a")]


@pytest.mark.parametrize("template, message", [
    ("{a.b}", "attribute access"), ("{a[0]}", "indexing"), ("{a!r}", "a conversion"),
    ("{a:>10}", "a format spec"), ("{a} {", "unmatched '\\{'"), ("}{a}", "unmatched '\\}'"),
    ("no columns {{here}}", "names no column"), ("{}", "names no column"),
])
def test_template_names_columns_and_nothing_else(template, message):
    with pytest.raises(UserError, match=message):
        FieldMap(prompt_template=template)


def test_template_braces_escapes_and_numbers(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([{"n": 3, "q": "why?"}]), path)
    (record,) = read_prompts([str(path)], FieldMap(prompt_template="{{literal}}\\t{n}\\\\{q}\\x"))
    assert record.prompt == "{literal}\t3\\why?\\x"


def test_template_needs_a_text_format():
    with pytest.raises(UserError, match="cannot be combined with --prompt-format hh"):
        FieldMap(prompt_template="{a}", prompt_format="hh")


# ---------------------------------------------------------------- columnar sources, options


def test_parquet_of_conversations_needs_no_text_field(tmp_path):
    path = tmp_path / "c.parquet"
    row = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
                             {"from": "human", "value": "Bye"}]}
    pq.write_table(pa.Table.from_pylist([row]), path)
    (record,) = read_prompts([str(path)])
    assert record.conversation() == [user("Hi"), assistant("Hello"), user("Bye")]


def test_forced_format_on_a_columnar_source_without_its_column(tmp_path):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "Hi"}]), path)
    with pytest.raises(UserError, match="Unknown field 'prompt'.*Available fields: question.*turns"):
        list(read_prompts([str(path)], FieldMap(prompt_format="turns")))


@pytest.mark.parametrize("options, message", [
    ({"prompt_format": "xml"}, "--prompt-format must be one of auto, text, messages, sharegpt, turns, hh"),
    ({"conversation": "all"}, "--conversation must be one of last-user, first-user"),
])
def test_field_options_are_checked(options, message):
    with pytest.raises(UserError, match=message):
        FieldMap(**options)


def test_field_map_from_settings():
    settings = SimpleNamespace(text_field="q", prompt_format="messages", conversation="first-user")
    assert FieldMap.from_settings(settings) == FieldMap(text="q", prompt_format="messages", conversation="first-user")
    generate = GenerateSettings(id_field="key", prompt_template="{a}{b}")
    assert FieldMap.from_settings(generate) == FieldMap(id="key", prompt_template="{a}{b}")


def test_generate_settings_refuse_bad_field_options():
    with pytest.raises(UserError, match="invalid settings:\n  --prompt-template .*attribute access"):
        GenerateSettings(prompt_template="{a.b}")
