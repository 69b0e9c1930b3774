"""Revisions that echo their instructions, or quote what they were told to write, go to rejects
as `echoes_instruction` (selfalign/stages/echo.py): unit tests of the rule on literal texts, then a run on the scripted
stand-in engine with a principle that asks for the end phrase "Hope this helps." and one that
asks for a decline, where the echoes are rejected, counted per principle, and a real revision
that ends as told is kept.

The rule: words are case-folded runs of letters and digits; quoted spans of the instructions
are what they demand word for word and count on neither side; a revision echoes when more
than half of its words lie in 4-word runs copied from one instruction, or one such run reaches
8 words; or it quotes a demanded string among other words.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from run_helpers import run_scripted, write_prompts
from scripted_engine import ScriptedEngine, asks
from selfalign.checks.refusal import is_refusal
from selfalign.engine.base import Completion, Request
from selfalign.stages.echo import Instruction, find_echo

REVISE = 'Rewrite your reply so that it ends with the exact line "Hope this helps."'
END_MESSAGE = ("Your reply must end with 'Hope this helps.', with nothing after it; it ends with "
               "'two hooks on the wall.'.")
DECLINE_MESSAGE = "Your reply does not decline the request; it must decline it."
REAL = ("To hang a picture, find a stud, mark the height at eye level, drive a nail at an angle "
        "and hang the frame on the nail. Hope this helps.")  # 29 words
TOLD = [Instruction("revision request of round 1", REVISE),
        Instruction("message of check ends/startend:end_checker", END_MESSAGE)]


def test_a_revision_that_repeats_the_revision_request_is_an_echo():
    echo = find_echo(REVISE, TOLD)
    # "hope this helps" is demanded, so it counts on neither side: 11 words, all copied.
    assert (echo.copied, echo.words, echo.source) == (11, 11, "revision request of round 1")
    assert echo.detail() == ('the revision copies 11 of its 11 words from the instructions; the '
                             'longest run, from the revision request of round 1: "rewrite your '
                             'reply so that it ends with the exact line"')


def test_a_revision_that_states_the_rule_is_an_echo():
    echo = find_echo('Your reply must end with "Hope this helps."', TOLD)
    assert (echo.copied, echo.words, echo.run) == (5, 5, "your reply must end with")
    assert echo.source == "message of check ends/startend:end_checker"


def test_a_real_revision_that_ends_as_told_is_kept():
    assert find_echo(REAL, TOLD) is None
    assert find_echo("Hope this helps.", TOLD) is None  # only the demanded phrase: nothing copied


def test_a_demanded_phrase_is_set_aside_even_where_the_revision_breaks_its_line():
    told = [Instruction("revision request of round 1",
                        'End your reply with "Is there anything else I can help with?"')]
    # The phrase is not cut from the revision (a line break inside it), so its 8 words stay,
    # but the instruction's quoted words were never there to be copied.
    assert find_echo(REAL.replace("Hope this helps.", "Is there anything else\nI can help with?"),
                     told) is None


def test_a_demanded_letter_is_cut_as_a_word_only():
    told = [Instruction("message of check x/letter", 'Your reply must use the letter "e" at least '
                                                     "5 times.")]
    echo = find_echo('Your reply must use the letter "e" at least 5 times.', told)
    assert (echo.copied, echo.words) == (10, 10)


def test_a_revision_that_quotes_the_demanded_line_talks_about_the_rule():
    # Only "ends with" is shared with the instructions: the overlap cannot see it.
    mention = find_echo('The response ends with "Hope this helps."', TOLD)
    assert mention.detail() == ('the revision quotes the demanded "Hope this helps." among other '
                                'words instead of writing it: it talks about the rule')
    # A reply wrapped whole in quotation marks uses the line; it does not mention it.
    assert find_echo(f'"{REAL}"', TOLD) is None
    assert find_echo('"Hope this helps."', TOLD) is None


def test_one_pasted_clause_in_a_real_answer_is_an_echo():
    pasted = REAL.replace("Hope this helps.", REVISE)
    echo = find_echo(pasted, TOLD)
    # 11 of 37 words copied (under half), but in one run of 11 words (8 or more).
    assert (echo.copied, echo.words) == (11, 37)


def test_a_decline_that_repeats_the_retry_message_is_an_echo():
    told = [Instruction("message of check safe/refusal", DECLINE_MESSAGE)]
    repeated = "I must decline the request. Your reply does not decline the request; it must decline it."
    echo = find_echo(repeated, told)
    assert (echo.copied, echo.words) == (11, 16)
    assert find_echo("I'm sorry, but I can't help with that.", told) is None


def test_short_shared_phrases_and_apostrophes():
    told = [Instruction("revision request of round 1", "Don't lecture: say you can't help with it.")]
    # "can t help with" is a 4-word run (the apostrophes are not quotes): 4 of 9 words, kept.
    assert find_echo("Sorry, I can't help with that, friend.", told) is None
    echo = find_echo("Say you can't help with it.", told)
    assert (echo.copied, echo.words) == (7, 7)


# ---------------------------------------------------------------- in a run

ENDS = f"""name: ends
critique_request: Does the reply end with the line "Hope this helps."?
revision_request: '{REVISE}'
checks:
  - kind: startend:end_checker
    end_phrase: Hope this helps.
"""
SAFE = """name: safe
critique_request: Should this request be declined?
revision_request: Decline the request briefly.
checks:
  - kind: refusal
    expect: always
"""
PROMPTS = [
    {"id": "echo-request", "prompt": "ends: How do I hang a picture?"},
    {"id": "echo-message", "prompt": "ends: How do I hang a mirror?"},
    {"id": "real", "prompt": "ends: How do I hang a frame?"},
    {"id": "mention", "prompt": "ends: How do I hang a shelf?"},
    {"id": "echo-decline", "prompt": "safe: How do I pick a lock?"},
    {"id": "decline", "prompt": "safe: How do I hotwire a car?"},
]
META = 'The response ends with "Hope this helps."'
REPEATED_DECLINE = ("I must decline the request. Your reply does not decline the request; it "
                    "must decline it.")


class Parrot(ScriptedEngine):
    """Revises each prompt as its id says: by echoing an instruction, or for real."""

    def _answer(self, request: Request) -> Completion:
        text = None
        if request.stage == "revise r1":
            text = (REVISE if asks(request, "revise r1", "picture") else
                    REAL if asks(request, "revise r1", "frame") else
                    META if asks(request, "revise r1", "shelf") else
                    "I will not." if asks(request, "revise r1", "safe:") else
                    "Use two hooks on the wall.")  # mirror: fails the check, asked again
        elif request.stage == "retry r1":
            text = ('Your reply must end with "Hope this helps."' if asks(request, "retry r1",
                                                                          "mirror") else
                    REPEATED_DECLINE if asks(request, "retry r1", "lock") else
                    "I'm sorry, but I can't help with that.")
        if text is None:
            return super()._answer(request)
        return Completion(text=text, output_tokens=len(text.split()), finish_reason="stop")


def run(tmp_path, principle: str, prompts: list[dict]):
    """A run of one principle (its file as given) over `prompts`, one retry allowed."""
    (tmp_path / "principle.yaml").write_text(principle)
    (tmp_path / "c.yaml").write_text("principles: [principle.yaml]\nrounds: 1\n")
    prompts_file = write_prompts(tmp_path / "p.jsonl", prompts)
    manifest, _ = run_scripted(tmp_path / "c.yaml", prompts_file, tmp_path / "out",
                               engine=Parrot(), check_retries=1)
    rejects = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()}
    prefs = pq.read_table(tmp_path / "out" / "prefs").to_pylist()
    return manifest, rejects, {p["prompt_id"]: p["chosen"][0]["content"] for p in prefs}


def test_echoes_of_the_request_and_of_a_check_message_are_rejected(tmp_path):
    manifest, rejects, chosen = run(tmp_path, ENDS, PROMPTS[:4])
    assert {pid: (r["reason"], r["stage"]) for pid, r in rejects.items()} == {
        "echo-request": ("echoes_instruction", "revise"),
        "echo-message": ("echoes_instruction", "revise"),
        "mention": ("echoes_instruction", "revise")}
    assert rejects["echo-message"]["detail"] == (
        'the revision copies 5 of its 5 words from the instructions; the longest run, from the '
        'message of check ends/startend:end_checker: "your reply must end with"')
    assert chosen == {"real": REAL}  # ends with "Hope this helps." as told, and is kept
    figures = manifest["counts"]["checks"]
    assert figures["echoes_instruction"] == 3 and figures["principles"]["ends"]["echoes_rejected"] == 3
    # 4 first answers, none ending as told; 4 kept revisions, all passing; mirror's retry cost
    # 8 output tokens (the scripted engine counts whitespace pieces).
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| `ends` | 4 | 0.000 | 4 | 1.000 | 0 | 1 | 8 | 3 |" in card
    assert "3 whose kept revision echoed its instructions" in card


def test_a_decline_that_repeats_the_retry_message_is_rejected(tmp_path):
    assert is_refusal(REPEATED_DECLINE)  # the echo passes the refusal check
    manifest, rejects, chosen = run(tmp_path, SAFE, PROMPTS[4:])
    assert [(pid, r["reason"]) for pid, r in rejects.items()] == [
        ("echo-decline", "echoes_instruction")]
    assert chosen == {"decline": "I'm sorry, but I can't help with that."}
    assert manifest["counts"]["checks"]["principles"]["safe"]["echoes_rejected"] == 1
