"""`prompts prepare` end to end: survivors of duplicate groups, user cap, split stability, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from selfalign.cli import main
from selfalign.errors import UserError
from selfalign.prompts.normalize import NormalizeStep
from selfalign.prompts.prepare import PrepareSettings, prepare
from selfalign.prompts.sources import FieldMap, read_prompts
from selfalign.prompts.split import SplitPlan
from selfalign.records import PromptRecord, stable_prompt_id

ONE_SPLIT = SplitPlan.parse("train=1")


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def _rows(folder: Path, name: str) -> list[dict]:
    return pq.read_table(folder / f"{name}.parquet").to_pylist()


def _run(tmp_path: Path, rows: list[dict], **settings) -> tuple[dict, Path]:
    out = tmp_path / "out"
    settings.setdefault("splits", ONE_SPLIT)
    report = prepare([_jsonl(tmp_path / "in.jsonl", rows)], out, PrepareSettings(**settings))
    return report, out


# ---------------------------------------------------------------- dedup survivors


def test_first_of_an_exact_group_survives(tmp_path):
    rows = [
        {"id": "a", "prompt": "How do tides work?"},
        {"id": "b", "prompt": "  How do tides work?\n"},  # same after trimming
        {"id": "c", "prompt": "How do tides work?"},
    ]
    report, out = _run(tmp_path, rows)
    assert [r["id"] for r in _rows(out, "train")] == ["a"]
    assert [(r["id"], r["reason"], r["detail"], r["line"]) for r in _rows(out, "rejects")] == [
        ("b", "duplicate", "same text as kept id a", 2),
        ("c", "duplicate", "same text as kept id a", 3),
    ]
    assert report["by_reason"] == {"duplicate": 2}


def test_first_of_a_prefix_group_survives(tmp_path):
    stem = "Please summarise the following meeting notes for my manager: "
    rows = [
        {"id": "a", "prompt": "Short and different."},
        {"id": "b", "prompt": stem + "budget review."},
        {"id": "c", "prompt": stem.upper() + "hiring plan."},
    ]
    _, out = _run(tmp_path, rows, prefix_chars=40)
    assert [r["id"] for r in _rows(out, "train")] == ["a", "b"]
    (reject,) = _rows(out, "rejects")
    assert (reject["id"], reject["reason"], reject["detail"]) == (
        "c", "near_duplicate", "first 40 characters match kept id b"
    )


def test_a_dropped_row_never_becomes_the_kept_one(tmp_path):
    rows = [
        {"id": "a", "prompt": "Wie backe ich Brot?"},  # dropped by language
        {"id": "b", "prompt": "Wie backe ich Brot?"},
        {"id": "c", "prompt": "How do I bake bread at home?"},  # one kept: an empty run fails
    ]
    _, out = _run(tmp_path, rows, languages=frozenset({"en"}))
    assert [(r["id"], r["reason"]) for r in _rows(out, "rejects")] == [("a", "language:de"), ("b", "language:de")]


# ---------------------------------------------------------------- user cap


def test_cap_keeps_first_rows_per_user_and_ignores_rows_without_user(tmp_path):
    rows = [{"id": f"u{i}", "prompt": f"Question number {i}?", "user_id": "heavy"} for i in range(4)]
    rows += [{"id": f"n{i}", "prompt": f"Anonymous question {i}?"} for i in range(4)]
    report, out = _run(tmp_path, rows, max_per_user=2)
    assert [r["id"] for r in _rows(out, "train")] == ["u0", "u1", "n0", "n1", "n2", "n3"]
    assert [(r["id"], r["reason"]) for r in _rows(out, "rejects")] == [("u2", "user_cap"), ("u3", "user_cap")]
    assert report["rows_in"] == 8 and report["rows_out"] == 6


def test_duplicates_do_not_use_up_a_users_cap(tmp_path):
    rows = [
        {"id": "a", "prompt": "Same?", "user_id": "u"},
        {"id": "b", "prompt": "Same?", "user_id": "u"},
        {"id": "c", "prompt": "Other?", "user_id": "u"},
    ]
    _, out = _run(tmp_path, rows, max_per_user=2)
    assert [r["id"] for r in _rows(out, "train")] == ["a", "c"]


# ---------------------------------------------------------------- splits


def _users_split(out: Path, splits: tuple[str, ...]) -> dict[str, str]:
    return {r["user_id"]: r["split"] for name in splits for r in _rows(out, name)}


def test_users_keep_their_split_when_rows_are_added(tmp_path):
    plan = SplitPlan.parse("train=0.5,validation=0.25,test=0.25")
    base = [{"prompt": f"Prompt {i} from user {i % 40}", "user_id": f"user{i % 40}"} for i in range(80)]
    more = base + [{"prompt": f"Extra prompt {i} from user {i % 60}", "user_id": f"user{i % 60}"} for i in range(300)]
    first = prepare([_jsonl(tmp_path / "a.jsonl", base)], tmp_path / "a", PrepareSettings(splits=plan))
    second = prepare([_jsonl(tmp_path / "b.jsonl", more)], tmp_path / "b", PrepareSettings(splits=plan))
    before, after = _users_split(tmp_path / "a", plan.names), _users_split(tmp_path / "b", plan.names)
    assert all(after[user] == split for user, split in before.items())
    assert len(set(before.values())) == 3 and first["rows_out"] == 80 and second["rows_out"] == 380


def test_every_row_of_a_user_lands_in_one_split(tmp_path):
    plan = SplitPlan.parse("train=0.5,test=0.5")
    rows = [{"prompt": f"Row {i} of u{i % 7}", "user_id": f"u{i % 7}"} for i in range(70)]
    prepare([_jsonl(tmp_path / "in.jsonl", rows)], tmp_path / "out", PrepareSettings(splits=plan))
    seen: dict[str, set[str]] = {}
    for name in plan.names:
        for r in _rows(tmp_path / "out", name):
            seen.setdefault(r["user_id"], set()).add(name)
    assert all(len(s) == 1 for s in seen.values()) and len(seen) == 7


# ---------------------------------------------------------------- PII, ids, outputs


def test_pii_drop_hides_text_and_derived_id(tmp_path):
    rows = [{"prompt": "Email me at carol@example.com"}, {"id": "given", "prompt": "SSN 123-45-6789"},
            {"id": "clean", "prompt": "What is a haiku?"}]
    _, out = _run(tmp_path, rows)
    assert [(r["id"], r["reason"], r["detail"]) for r in _rows(out, "rejects")] == [
        (None, "pii:email", "email in prompt at character 12"),
        ("given", "pii:ssn", "ssn in prompt at character 4"),
    ]
    assert "carol" not in (out / "rejects.parquet").read_bytes().decode("latin-1")


def test_pii_redact_keeps_row_and_rehashes_id(tmp_path):
    _, out = _run(tmp_path, [{"prompt": "Email me at carol@example.com"}], pii="redact")
    (row,) = _rows(out, "train")
    assert (row["prompt"], row["id"]) == ("Email me at [EMAIL]", stable_prompt_id("Email me at [EMAIL]"))


def test_output_columns_and_verbatim_template_text(tmp_path):
    text = "Reply with {{ answer }} or {0} or %s </s><|im_end|>"
    _, out = _run(tmp_path, [{"id": 3, "prompt": text, "user_id": "u", "tag": "t"}])
    (row,) = _rows(out, "train")
    assert row == {
        "id": "3", "prompt": text, "context": [], "user_id": "u", "split": "train", "language": "en",
        "source": str(tmp_path / "in.jsonl"), "line": 1, "behavior": None, "metadata": '{"tag": "t"}',
    }


def test_prepared_folder_reads_back_with_split_user_and_language(tmp_path):
    rows = [{"id": "q", "prompt": "Wie backe ich Brot?", "user_id": "u", "tag": 1}]
    _, out = _run(tmp_path, rows)
    (record,) = read_prompts([str(out)])
    assert (record.id, record.split, record.user_id, record.language, record.line) == ("q", "train", "u", "de", 1)
    assert record.metadata == {"tag": 1}


def test_report_counts(tmp_path):
    rows = [{"prompt": "Hello there, how are you?"}, {"prompt": ""}, {"prompt": "Hello there, how are you?"}]
    report, out = _run(tmp_path, rows)
    assert {k: report[k] for k in ("rows_in", "rows_out", "rows_rejected", "by_split", "by_reason")} == {
        "rows_in": 3, "rows_out": 1, "rows_rejected": 2, "by_split": {"train": 1},
        "by_reason": {"duplicate": 1, "empty_prompt": 1},
    }
    assert json.loads((out / "report.json").read_text()) == report
    assert sorted(p.name for p in out.iterdir()) == ["rejects.parquet", "report.json", "train.parquet"]


def test_failed_run_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("text\nhello\n")
    with pytest.raises(UserError):
        prepare([str(path)], tmp_path / "out", PrepareSettings())
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("settings, message", [
    ({"max_per_user": -1}, "--max-per-user"),
    ({"prefix_chars": -5}, "--prefix-chars"),
    ({"pii": "mask"}, "--pii"),
    ({"languages": frozenset({"english"})}, "Unknown language code"),
])
def test_settings_are_checked(settings, message):
    with pytest.raises(UserError, match=message):
        PrepareSettings(**settings)


# ---------------------------------------------------------------- CLI


def test_cli_prepare_from_stdin(tmp_path):
    rows = "".join(json.dumps({"q": f"Question {i}?", "who": "u"}) + "\n" for i in range(3)) + "oops\n"
    result = CliRunner().invoke(main, [
        "prompts", "prepare", "-", "--out", str(tmp_path / "out"), "--text-field", "q",
        "--user-field", "who", "--max-per-user", "2", "--splits", "train=1",
    ], input=rows)
    assert result.exit_code == 0, result.output
    assert "4 rows in, 2 kept, 2 rejected" in result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["by_reason"] == {"invalid_json": 1, "user_cap": 1}


def test_cli_unknown_field_is_a_clean_error(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("question,uid\nhello,1\n")
    result = CliRunner().invoke(main, ["prompts", "prepare", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "Unknown field 'prompt'" in result.output and "Available fields: question, uid" in result.output


def test_cli_missing_input(tmp_path):
    result = CliRunner().invoke(main, ["prompts", "prepare", str(tmp_path / "gone.jsonl"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "gone.jsonl" in result.output


def test_cli_language_filter_and_redact(tmp_path):
    src = _jsonl(tmp_path / "in.jsonl", [
        {"prompt": "What is the capital of France? Mail a@b.com"},
        {"prompt": "Quelle est la capitale de la France ?"},
        {"prompt": "Was ist die Hauptstadt von Frankreich?"},
    ])
    result = CliRunner().invoke(main, [
        "prompts", "prepare", src, "--out", str(tmp_path / "out"), "--languages", "en,fr",
        "--pii", "redact", "--splits", "train=1",
    ])
    assert result.exit_code == 0, result.output
    assert [(r["prompt"], r["language"]) for r in _rows(tmp_path / "out", "train")] == [
        ("What is the capital of France? Mail [EMAIL]", "en"),
        ("Quelle est la capitale de la France ?", "fr"),
    ]
    assert "dropped language:de: 1" in result.output


def test_field_map_rejects_empty_names():
    with pytest.raises(UserError, match="'text'"):
        FieldMap(text=" ")


# ---------------------------------------------------------------- multi-turn prompts


def _chat(*texts: str) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


def test_conversations_are_duplicates_when_their_user_turns_match(tmp_path):
    rows = [
        {"id": "a", "messages": _chat("Plan a picnic.", "Bring sandwiches.", "What about drinks?")},
        {"id": "b", "messages": _chat("Plan a picnic.", "Pack a blanket.", "What about drinks?")},
        {"id": "c", "messages": _chat("Plan a party.", "Send invitations.", "What about drinks?")},
        {"id": "d", "prompt": "What about drinks?"},
    ]
    _, out = _run(tmp_path, rows)
    assert [r["id"] for r in _rows(out, "train")] == ["a", "c", "d"]
    assert [(r["id"], r["reason"], r["detail"]) for r in _rows(out, "rejects")] == [
        ("b", "duplicate", "same text as kept id a")]


def test_near_duplicates_compare_the_user_turns_in_order(tmp_path):
    rows = [
        {"id": "a", "messages": _chat("Plan a picnic for my family this Sunday.", "Sure.", "Budget is small.")},
        {"id": "b", "messages": _chat("plan a  picnic for my family this Sunday.", "Happy to.", "BUDGET is tight.")},
    ]
    _, out = _run(tmp_path, rows, prefix_chars=50)
    assert [(r["id"], r["reason"]) for r in _rows(out, "rejects")] == [("b", "near_duplicate")]


def test_pii_in_an_earlier_turn_drops_the_row_and_hides_its_derived_id(tmp_path):
    rows = [{"messages": _chat("Write to bob@example.com for me.", "Done.", "Thanks, now a poem?")},
            {"id": "clean", "prompt": "What is a haiku?"}]
    _, out = _run(tmp_path, rows)
    assert [(r["id"], r["reason"], r["detail"]) for r in _rows(out, "rejects")] == [
        (None, "pii:email", "email in turn 1 at character 9")]


def test_pii_redact_masks_every_turn_and_rehashes_the_conversation_id(tmp_path):
    rows = [{"messages": _chat("My number is +44 20 7946 0958.", "Noted: +44 20 7946 0958.", "Call me?")}]
    _, out = _run(tmp_path, rows, pii="redact")
    (row,) = _rows(out, "train")
    context = _chat("My number is [PHONE].", "Noted: [PHONE].")
    assert (row["prompt"], row["context"]) == ("Call me?", context)
    expected = PromptRecord(id="", prompt="Call me?", context=context).stable_id()
    assert row["id"] == expected and expected.startswith("p-") and len(expected) == 18


def test_language_is_read_from_all_user_turns(tmp_path):
    rows = [{"id": "a", "messages": _chat("Je cherche une recette de pain sans levure pour ce soir.", "Voici.", "OK")}]
    _, out = _run(tmp_path, rows, languages=frozenset({"fr"}))
    assert [(r["id"], r["language"]) for r in _rows(out, "train")] == [("a", "fr")]


def test_normalise_trims_every_turn_and_drops_an_empty_one():
    record = PromptRecord(id="a", prompt=" Hello? ", context=_chat(" Hi\n", "Cafe\u0301 "))
    assert NormalizeStep().check(record) is None
    assert (record.prompt, record.context) == ("Hello?", _chat("Hi", "Caf\u00e9"))
    record.context = _chat("Hi", " \n")
    reject = NormalizeStep().check(record)
    assert (reject.reason, reject.detail) == ("empty_turn", "turn 2 (assistant) is empty after normalisation")


def test_prepared_folder_gives_the_whole_conversation_back(tmp_path):
    conversation = _chat("Suggest a film.", "Try Paddington 2.", "Something scarier?")
    rows = [{"id": "a", "messages": conversation, "user_id": "u"}, {"id": "b", "prompt": "Single turn."}]
    _, out = _run(tmp_path, rows)
    a, b = read_prompts([str(out)])
    assert (a.id, a.conversation(), a.prompt, a.user_id) == ("a", conversation, "Something scarier?", "u")
    assert (b.id, b.conversation()) == ("b", _chat("Single turn."))


def test_prepared_folder_without_a_context_column_still_reads(tmp_path):
    _, out = _run(tmp_path, [{"id": "a", "prompt": "Old folder."}])
    table = pq.read_table(out / "train.parquet").drop(["context"])
    pq.write_table(table, out / "train.parquet")
    (record,) = read_prompts([str(out)])
    assert (record.id, record.context) == ("a", [])


def test_cli_prepare_hh_transcripts_first_user(tmp_path):
    rows = [{"chosen": "\n\nHuman: Hi there\n\nAssistant: Hello\n\nHuman: Bye now\n\nAssistant: Bye"},
            {"chosen": "\n\nAssistant: Nobody spoke."}]
    src = _jsonl(tmp_path / "hh.jsonl", rows)
    result = CliRunner().invoke(main, ["prompts", "prepare", src, "--out", str(tmp_path / "out"), "--splits",
                                       "train=1", "--prompt-format", "hh", "--conversation", "first-user"])
    assert result.exit_code == 0, result.output
    assert [(r["prompt"], r["context"]) for r in _rows(tmp_path / "out", "train")] == [("Hi there", [])]
    assert [(r["line"], r["reason"]) for r in _rows(tmp_path / "out", "rejects")] == [(2, "no_user_turn")]
