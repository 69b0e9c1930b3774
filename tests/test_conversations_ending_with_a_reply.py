"""Conversations that end with the model's reply (as ShareGPT, `messages` and MT-Bench rows
almost always do): with `--conversation last-user` the prompt ends at the last user turn and the
reply goes to metadata; a conversation without a user turn stays a reject."""

import hashlib
import json
from pathlib import Path

from selfalign.prompts.sources import FieldMap, read_prompts
from selfalign.records import PromptRecord, Reject

FIXTURES = Path(__file__).parent / "fixtures" / "prompts" / "ending_with_a_reply"


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def text_id(text: str) -> str:
    return "p-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read(name, **fields):
    items = list(read_prompts([str(FIXTURES / name)], FieldMap(**fields)))
    records = [i for i in items if isinstance(i, PromptRecord)]
    rejects = [i for i in items if isinstance(i, Reject)]
    assert len(records) + len(rejects) == len(items)
    return records, rejects


def test_sharegpt_prompts_end_at_the_last_human_turn():
    records, rejects = read("sharegpt.json")
    assert [(r.line, r.id, r.conversation(), r.metadata) for r in records] == [
        (1, "g1", [user("How long should I boil an egg?"),
                   assistant("About nine minutes for a firm yolk."), user("And for a runny one?")],
         {"reply": "Six minutes, then cold water."}),
        (2, "g2", [user("When do I plant tulips?")],
         {"system": "You are a gardener.", "reply": "In autumn, before the first frost."}),
    ]
    assert [(r.line, r.id, r.reason) for r in rejects] == [(3, "g3", "no_user_turn")]


def test_messages_prompts_end_at_the_last_user_turn():
    records, rejects = read("messages.jsonl")
    assert [(r.line, r.id, r.prompt, r.context, r.metadata) for r in records] == [
        (1, "c1", "A larger one?", [user("Name a prime number."), assistant("Seven.")],
         {"reply": "Ninety-seven."}),
        (2, "c2", "Is it going to rain?", [], {}),  # an empty reply keeps nothing
    ]
    assert [(r.line, r.id, r.reason) for r in rejects] == [(3, "c3", "no_user_turn")]


def test_mtbench_turns_of_messages_end_at_the_last_user_turn():
    records, rejects = read("mtbench.jsonl", id="question_id")
    assert rejects == []
    assert [(r.id, r.conversation(), r.metadata) for r in records] == [
        ("101", [user("I overtake the second runner. What place am I in?"),
                 assistant("Second place."), user("And if I overtake the last runner?")],
         {"category": "reasoning",
          "reply": "That cannot happen: nobody is behind the last runner."}),
        ("102", [user("Write a two-word poem.")],
         {"category": "writing", "reply": "Rain returns."}),
    ]


def test_first_user_keeps_no_reply():
    records, rejects = read("sharegpt.json", conversation="first-user")
    assert [(r.id, r.prompt, r.metadata) for r in records] == [
        ("g1", "How long should I boil an egg?", {}),
        ("g2", "When do I plant tulips?", {"system": "You are a gardener."}),
    ]
    assert [r.reason for r in rejects] == ["no_user_turn"]


def test_the_id_of_a_cut_conversation_hashes_only_what_is_sent(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"messages": [user("Hi there."), assistant("Hello!")]}) + "\n")
    (record,), _ = read_prompts_from(path)
    assert record.id == text_id("Hi there.")  # the id a plain "Hi there." prompt gets
    assert json.loads(record.metadata_json()) == {"reply": "Hello!"}


def read_prompts_from(path):
    items = list(read_prompts([str(path)]))
    return [i for i in items if isinstance(i, PromptRecord)], [i for i in items if isinstance(i, Reject)]
