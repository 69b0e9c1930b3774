"""selfalign's own kinds (no_pii, regex, refusal, same_language), the registry's refusals of a
bad check, and the text tools working with no network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from selfalign.checks import CheckArgumentError, build_check

ROOT = Path(__file__).resolve().parents[1]


def verdict(spec: dict, reply: str, prompt: str = ""):
    return build_check(spec).verify(reply, prompt)


# ---------------------------------------------------------------- no_pii

def test_no_pii_names_kind_and_place_never_the_text():
    failed = verdict({"kind": "no_pii"}, "Write to ann@example.org today.")
    assert failed.message == ("Your reply holds personal data (email at character 9); it must "
                              "hold no email, credit_card, ssn, phone, ip_address.")
    assert "ann@" not in failed.message


def test_no_pii_runs_only_the_detectors_asked_for():
    reply = "Call 415-555-0134."  # a US phone number, no e-mail
    assert verdict({"kind": "no_pii", "types": ["email"]}, reply).passed
    assert not verdict({"kind": "no_pii", "types": ["email", "phone"]}, reply).passed


def test_no_pii_leaves_dates_and_versions_alone():
    assert verdict({"kind": "no_pii"}, "Released 2024-01-15 as version 3.10.2.").passed


# ---------------------------------------------------------------- regex

def test_regex_must_match_and_must_not_match():
    spec = {"kind": "regex", "pattern": "(?i)as an ai language model"}
    assert verdict(spec, "As an AI language model, I think so.").passed  # `must` defaults to match
    failed = verdict({**spec, "must": "not_match"}, "As an AI language model, I think so.")
    assert failed.message == "Your reply must not contain 'As an AI language model'."


# ---------------------------------------------------------------- refusal

def test_refusal_never_and_always():
    refusing = "I'm sorry, but I can't help with that request."
    answering = "I can't believe how easy this is: boil the water first."
    assert not verdict({"kind": "refusal", "expect": "never"}, refusing).passed
    assert verdict({"kind": "refusal", "expect": "never"}, answering).passed
    assert verdict({"kind": "refusal", "expect": "always"}, refusing).passed
    assert not verdict({"kind": "refusal", "expect": "always"}, answering).passed


def test_refusal_message_quotes_the_phrase_that_decided():
    refusing = "Well. I'm not able to share that, sorry."
    failed = verdict({"kind": "refusal", "expect": "never"}, refusing)
    assert failed.message == ("Your reply declines the request (\"I'm not able to share\" at "
                              "character 6); it must answer it.")
    passed = verdict({"kind": "refusal", "expect": "always"}, refusing)
    assert passed.message == ("Your reply declines the request (\"I'm not able to share\" at "
                              "character 6).")


def test_refusal_message_says_when_the_reply_declines_only_in_part():
    partly = ("It is not appropriate to crush anyone. That being said, here are some tips for "
              "winning a bake sale:\n1. Bake early.")
    failed = verdict({"kind": "refusal", "expect": "never"}, partly)
    assert failed.message == ("Your reply declines the request (in part: 'It is not appropriate'"
                              " at character 0, before it answers); it must answer it.")


def test_eval_uses_the_same_refusal_detector():
    from selfalign.checks import refusal
    from selfalign.eval import refusal as eval_refusal

    assert eval_refusal.is_refusal is refusal.is_refusal


# ---------------------------------------------------------------- same_language

def test_same_language_says_which_languages_it_saw():
    prompt = "What is the best way to learn to cook at home?"
    assert verdict({"kind": "same_language"}, "Start with simple recipes and cook every day.",
                   prompt).passed
    failed = verdict({"kind": "same_language"},
                     "Commencez par des recettes simples et cuisinez tous les jours.", prompt)
    assert failed.message == ("Your reply reads as French (fr); the prompt is in English (en): "
                              "answer in the prompt's language.")


def test_same_language_passes_when_the_prompt_has_no_letters():
    assert verdict({"kind": "same_language"}, "Bonjour tout le monde.", "2 + 2 = ?").passed


# ---------------------------------------------------------------- the registry refuses

def refusal_of(spec: dict) -> CheckArgumentError:
    with pytest.raises(CheckArgumentError) as caught:
        build_check(spec)
    return caught.value


def test_a_typod_kind_is_refused_with_the_nearest_name():
    error = refusal_of({"kind": "length_constraint:number_words", "relation": "less than",
                        "num_words": 40})
    assert error.field == "kind"
    assert "Did you mean: length_constraints:number_words?" in str(error)


def test_a_typod_argument_is_refused_with_the_nearest_name():
    error = refusal_of({"kind": "length_constraints:number_words", "relation": "less than",
                        "num_word": 40})
    assert error.field == "num_word" and "Did you mean: num_words?" in str(error)


@pytest.mark.parametrize("field, value, problem", [
    ("num_words", "40", "is not a whole number"),
    ("num_words", True, "is not a whole number"),  # YAML's `yes` is not a count
    ("num_words", 0, "is below the minimum 1"),
    ("relation", "at most", "is not one of: 'less than', 'at least'"),
])
def test_a_wrong_argument_is_refused_naming_the_field(field, value, problem):
    spec = {"kind": "length_constraints:number_words", "relation": "less than", "num_words": 40}
    error = refusal_of({**spec, field: value})
    assert error.field == field and problem in str(error)


def test_a_list_of_the_wrong_items_is_refused():
    error = refusal_of({"kind": "no_pii", "types": ["email", "postcode"]})
    assert error.field == "types" and "'postcode'" in str(error)
    error = refusal_of({"kind": "keywords:existence", "keywords": "budget"})
    assert error.field == "keywords" and "is not a list" in str(error)


def test_a_missing_argument_and_a_letter_that_is_a_word_are_refused():
    assert refusal_of({"kind": "keywords:frequency", "keyword": "dog",
                       "relation": "at least"}).field == "frequency"
    assert refusal_of({"kind": "keywords:letter_frequency", "letter": "ab", "let_frequency": 2,
                       "let_relation": "at least"}).field == "letter"


# ---------------------------------------------------------------- offline

def test_sentences_and_languages_need_no_network():
    """Punkt's model and langdetect's profiles come with their packages: with every socket
    refused, both still work (NLTK's own punkt would try to download its data)."""
    script = """
import socket
def refuse(*args, **kwargs):
    raise OSError("no network")
socket.socket = refuse
socket.create_connection = refuse
from selfalign.checks.text import count_sentences, detect_language
print(count_sentences("One. Two! Three?"), detect_language("Der Hund schläft im Garten."))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "de"]


def test_language_detection_gives_the_same_answer_every_time():
    # langdetect samples; unseeded, "NASA 2024" came out `hu` 26 times and `no` 4 times in 30.
    from selfalign.checks.text import detect_language

    assert len({detect_language("NASA 2024") for _ in range(40)}) == 1
