"""Scoring: IFEval's four figures worked out by hand on a few replies, `selfalign checks score`
on JSONL, parquet and a run folder, and its refusals of bad input (one line, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from label_helpers import synthetic_run
from selfalign.checks import build_check
from selfalign.checks.replies import Reply, replies_from_traces, with_principle_checks
from selfalign.checks.score import ReplyToScore, figures, score_reply
from selfalign.cli import main

FEWER_THAN_5 = {"kind": "length_constraints:number_words", "relation": "less than", "num_words": 5}
NO_COMMA = {"kind": "punctuation:no_comma"}
QUOTED = {"kind": "startend:quotation"}


def to_score(reply: str, *specs: dict) -> ReplyToScore:
    checks = [build_check(spec) for spec in specs]
    return ReplyToScore("a prompt", reply, checks, [c.kind for c in checks])


def test_four_figures_and_kind_rates_by_hand():
    scored = [score_reply(item) for item in (
        to_score("Short reply.", FEWER_THAN_5, NO_COMMA),          # both followed
        to_score("Sure, here:\nNo commas at all.", NO_COMMA),      # loose only: first line aside
        to_score("Plain.", QUOTED),                                # neither
        to_score("Held to nothing."),                              # counted, not scored
    )]
    result = figures(scored)
    # prompt-level: A | A, B of 3 replies; instruction-level: 2 | 3 of 4 checks
    assert (result["prompt_strict"], result["prompt_loose"]) == (0.333333, 0.666667)
    assert (result["instruction_strict"], result["instruction_loose"]) == (0.5, 0.75)
    assert (result["replies"], result["replies_checked"], result["instructions"]) == (4, 3, 4)
    assert result["kinds"]["punctuation:no_comma"] == {"instructions": 2, "strict": 0.5,
                                                       "loose": 1.0}
    assert result["kinds"]["startend:quotation"] == {"instructions": 1, "strict": 0.0,
                                                     "loose": 0.0}


# ---------------------------------------------------------------- which checks a reply gets

def test_a_reply_naming_its_principle_gets_that_principles_checks_and_the_shared_ones():
    by_principle = {"brief": [build_check(FEWER_THAN_5)], "plain": [build_check(NO_COMMA)],
                    "free": []}
    shared = [build_check(QUOTED)]
    named, unnamed = with_principle_checks(
        [Reply("p", "r", "x:1", principles=("brief",)), Reply("p", "r", "x:2")],
        by_principle, shared)
    assert named.check_ids == ["brief/length_constraints:number_words",
                               "constitution/startend:quotation"]
    assert unnamed.check_ids == ["brief/length_constraints:number_words",
                                 "plain/punctuation:no_comma", "constitution/startend:quotation"]


def test_a_runs_answers_answer_to_the_drawn_principles_and_revisions_to_their_rounds():
    trace = {"prompt": "Q", "prompt_id": "p0", "principle_ids": ["a", "b"], "initial": "first",
             "round_details": [{"principle": "b", "revision": "second"},
                               {"principle": "a", "revision": None}]}  # a failed round
    replies = list(replies_from_traces([trace], "run/traces"))
    assert [(r.reply, r.stage, r.principles) for r in replies] == [
        ("first", "answer", ("a", "b")), ("second", "revision 1", ("b",))]


# ---------------------------------------------------------------- the command

def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n"
                            for row in rows))
    return path


IFEVAL_ROWS = [
    {"key": 1, "prompt": "Say hi without commas.", "instruction_id_list": ["punctuation:no_comma"],
     "kwargs": [{}]},
    {"key": 2, "prompt": "Say hi in under 5 words, quoted.",
     "instruction_id_list": ["length_constraints:number_words", "startend:quotation"],
     "kwargs": [{"relation": "less than", "num_words": 5}, {}]},
]


@pytest.fixture
def ifeval_input(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "input.jsonl", IFEVAL_ROWS)


def score(*args: str):
    return CliRunner().invoke(main, ["checks", "score", *map(str, args)])


def test_score_parquet_replies_against_ifeval_input(tmp_path, ifeval_input):
    replies = tmp_path / "replies.parquet"
    pq.write_table(pa.table({"prompt": [IFEVAL_ROWS[0]["prompt"], IFEVAL_ROWS[1]["prompt"]],
                             "response": ["Hi, you.", '"Hi there."']}), replies)
    result = score(replies, "--ifeval-input", ifeval_input, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    # reply 1 has a comma; reply 2 follows both of its instructions
    assert (scores["prompt_strict"], scores["instruction_strict"]) == (0.5, 0.666667)
    verdicts = pq.read_table(tmp_path / "out" / "verdicts.parquet").to_pylist()
    assert [(v["reply"], v["kind"], v["strict"]) for v in verdicts] == [
        (0, "punctuation:no_comma", False), (1, "length_constraints:number_words", True),
        (1, "startend:quotation", True)]
    assert verdicts[0]["where"] == f"{replies}: row 1"
    assert "prompt-level" in result.output and "50.00" in result.output


def test_score_a_run_folder_its_answers_and_revisions(tmp_path, ifeval_input):
    prompts = [row["prompt"] for row in IFEVAL_ROWS]
    texts = {"prompt": lambda i: prompts[i], "answer": lambda i: "Hi, there",
             "revision": lambda i: '"Hi there"'}
    run = synthetic_run(tmp_path / "run", pairs=2, text=lambda i, which: texts[which](i))
    result = score(run, "--ifeval-input", ifeval_input, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    verdicts = pq.read_table(tmp_path / "out" / "verdicts.parquet").to_pylist()
    assert [(v["prompt_id"], v["stage"], v["kind"], v["strict"]) for v in verdicts] == [
        ("p0", "answer", "punctuation:no_comma", False),
        ("p0", "revision 1", "punctuation:no_comma", True),
        ("p1", "answer", "length_constraints:number_words", True),
        ("p1", "answer", "startend:quotation", False),
        ("p1", "revision 1", "length_constraints:number_words", True),
        ("p1", "revision 1", "startend:quotation", True)]


def test_a_malformed_line_is_one_error_naming_file_and_line(tmp_path, ifeval_input):
    replies = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "a", "response": "b"}, "{oops"])
    result = score(replies, "--ifeval-input", ifeval_input, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {replies}:2: not a JSON object")
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_a_line_without_a_response_is_refused(tmp_path, ifeval_input):
    replies = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "a", "reply": "b"}])
    result = score(replies, "--ifeval-input", ifeval_input, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert f"error: {replies}:1: `response` is missing; it must be text" in result.output


def test_a_typo_in_the_ifeval_input_names_its_line_and_the_nearest_kind(tmp_path):
    bad = write_jsonl(tmp_path / "input.jsonl", [
        IFEVAL_ROWS[0], {**IFEVAL_ROWS[0], "instruction_id_list": ["punctuation:no_commas"]}])
    replies = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "a", "response": "b"}])
    result = score(replies, "--ifeval-input", bad, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert f"error: {bad}:2: instruction_id_list: Unknown check kind 'punctuation:no_commas'. Did you mean: " \
           f"punctuation:no_comma?" in result.output


def test_the_checks_come_from_one_place(tmp_path, ifeval_input):
    replies = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "a", "response": "b"}])
    neither = score(replies, "--out", tmp_path / "out")
    assert neither.exit_code == 2 and "either with --principles or with --ifeval-input" in \
        neither.output


def test_principles_without_checks_leave_nothing_to_score(tmp_path):
    principle = tmp_path / "brief.yaml"
    principle.write_text("name: brief\ncritique_request: Is it brief?\n"
                         "revision_request: Make it brief.\n")
    replies = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "a", "response": "b"}])
    result = score(replies, "--principles", principle, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "no principle lists `checks:`; there is nothing to score against" in result.output


def test_checks_list_describes_every_kind_with_an_example():
    result = CliRunner().invoke(main, ["checks", "list"])
    assert result.exit_code == 0
    assert ("    relation (string; one of \"less than\", \"at least\"): `less than` (strictly "
            "fewer) or `at least` (that many or more)") in result.output
    assert ("    example: {kind: length_constraints:number_words, relation: \"less than\", "
            "num_words: 40}") in result.output
    assert result.output.count("    example: {kind: ") == 29  # 25 of IFEval's, 4 of our own
