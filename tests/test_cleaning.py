import pytest

from selfalign.stages.cleaning import clean_revision, same_text


@pytest.mark.parametrize("raw, expected", [
    ("Sure, here is a revised response:\nUse a password manager.", "Use a password manager."),
    ("Here's my rewritten answer to the question: Use a password manager.",
     "Use a password manager."),
    ("Certainly! Below is an improved version that avoids the problem:\n\nBe kind.", "Be kind."),
    ("Revised response: Be kind.", "Be kind."),
    ("Revision: Be kind.", "Be kind."),
    ('"Be kind to your neighbours."', "Be kind to your neighbours."),
    ("“Be kind.”", "Be kind."),
    # Not boilerplate: an answer that merely starts with "Sure" keeps every word.
    ("Sure! Paris is the capital of France.", "Sure! Paris is the capital of France."),
    ("Here is how to bake bread: mix flour and water.",
     "Here is how to bake bread: mix flour and water."),
    # Two quoted phrases are not one quoted block.
    ('"Yes" is shorter than "no thank you"', '"Yes" is shorter than "no thank you"'),
    ("Sure, here is a revised response:", ""),
])
def test_clean_revision(raw, expected):
    assert clean_revision(raw) == expected


def test_same_text_ignores_whitespace_only():
    assert same_text("a  b\nc", "a b c")
    assert not same_text("a b c", "a b d")
