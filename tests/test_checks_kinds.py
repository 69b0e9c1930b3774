"""IFEval's kinds worked out by hand at their boundaries: what each counts, where the bound
falls, and the message a reply that fails is given."""

from __future__ import annotations

import pytest

from selfalign.checks import build_check, check_kinds, loose_verdict
from selfalign.checks import ifeval


def verdict(kind: str, reply: str, **args):
    return build_check({"kind": kind, **args}).verify(reply, "")


def passes(kind: str, reply: str, **args) -> bool:
    return verdict(kind, reply, **args).passed


def words(n: int) -> str:
    return " ".join(["word"] * n)


def test_all_25_kinds_in_ifevals_group_order():
    kinds = [cls.kind for cls in ifeval.KINDS]
    assert len(kinds) == 25 and len(set(kinds)) == 25
    groups = list(dict.fromkeys(kind.split(":")[0] for kind in kinds))
    assert groups == ["keywords", "language", "length_constraints", "detectable_content",
                      "detectable_format", "combination", "startend", "change_case",
                      "punctuation"]


@pytest.mark.parametrize("kind", list(check_kinds()))
def test_every_kinds_example_builds_and_is_described(kind):
    cls = check_kinds()[kind]
    check = build_check({"kind": kind, **cls.example})
    assert cls.summary and check.instruction()
    assert all(arg.help for arg in cls.arguments.values())


# ---------------------------------------------------------------- length_constraints

def test_number_words_less_than_40_is_39_at_most():
    assert passes("length_constraints:number_words", words(39), relation="less than", num_words=40)
    failed = verdict("length_constraints:number_words", words(40), relation="less than",
                     num_words=40)
    assert not failed.passed
    assert failed.message == "Your reply has 40 words; it must have fewer than 40."


def test_number_words_at_least_40_is_40_or_more():
    assert passes("length_constraints:number_words", words(40), relation="at least", num_words=40)
    failed = verdict("length_constraints:number_words", words(39), relation="at least",
                     num_words=40)
    assert failed.message == "Your reply has 39 words; it must have at least 40."


def test_words_are_runs_of_letters_and_digits():
    # "don't" is two runs, "e-mail" two, "3.5" two: 2 + 2 + 2 + 1 ("costs") = 7
    assert passes("length_constraints:number_words", "don't e-mail costs 3.5",
                  relation="at least", num_words=7)
    assert not passes("length_constraints:number_words", "don't e-mail costs 3.5",
                      relation="at least", num_words=8)


def test_number_sentences_keeps_an_abbreviation_inside_its_sentence():
    reply = "Dr. Smith came home. He slept! Did he dream?"  # three sentences, not four
    assert passes("length_constraints:number_sentences", reply, relation="at least",
                  num_sentences=3)
    failed = verdict("length_constraints:number_sentences", reply, relation="less than",
                     num_sentences=3)
    assert failed.message == "Your reply has 3 sentences; it must have fewer than 3."


def test_number_paragraphs_counts_parts_between_dividers():
    kind = "length_constraints:number_paragraphs"
    assert passes(kind, "One.\n***\nTwo.\n***\nThree.", num_paragraphs=3)
    assert not passes(kind, "One.\n***\nTwo.", num_paragraphs=3)
    # A divider before the first paragraph makes no empty paragraph...
    assert passes(kind, "***\nOne.\n***\nTwo.", num_paragraphs=2)
    # ...but two dividers in a row do, and fail.
    failed = verdict(kind, "One.\n***\n***\nTwo.", num_paragraphs=2)
    assert not failed.passed and "empty paragraph" in failed.message


def test_nth_paragraph_first_word_after_quotes_and_before_punctuation():
    kind = "length_constraints:nth_paragraph_first_word"
    reply = 'Intro.\n\n"However," she said.\n\nEnd.'
    assert passes(kind, reply, num_paragraphs=3, nth_paragraph=2, first_word="however")
    assert not passes(kind, reply, num_paragraphs=3, nth_paragraph=2, first_word="she")
    wrong_count = verdict(kind, reply, num_paragraphs=2, nth_paragraph=2, first_word="however")
    assert wrong_count.message == ("Your reply has 3 paragraphs separated by blank lines, "
                                   "not 2.")
    assert not passes(kind, reply, num_paragraphs=3, nth_paragraph=4, first_word="end")


# ---------------------------------------------------------------- keywords

def test_keywords_existence_ignores_case_and_finds_words_inside_words():
    kind = "keywords:existence"
    assert passes(kind, "Our BUDGETS and the Deadline", keywords=["budget", "deadline"])
    failed = verdict(kind, "Our budget", keywords=["budget", "deadline"])
    assert failed.message == "Your reply must include 'budget', 'deadline'; it lacks 'deadline'."


def test_keyword_frequency_at_least_and_less_than():
    kind = "keywords:frequency"
    reply = "Dog, dog and DOGS."  # three occurrences in any case, "DOGS" included
    assert passes(kind, reply, keyword="dog", frequency=3, relation="at least")
    failed = verdict(kind, reply, keyword="dog", frequency=3, relation="less than")
    assert failed.message == "Your reply uses 'dog' 3 times; it must use it fewer than 3 times."


def test_forbidden_words_are_whole_words_in_any_case():
    kind = "keywords:forbidden_words"
    assert passes(kind, "It was literallyish fine.", forbidden_words=["literally"])
    failed = verdict(kind, "Literally fine.", forbidden_words=["literally", "basically"])
    assert not failed.passed and "'Literally'" in failed.message


def test_letter_frequency_in_any_case():
    kind = "keywords:letter_frequency"
    assert passes(kind, "Zebra zoo", letter="z", let_frequency=2, let_relation="at least")
    assert not passes(kind, "Zebra zoo", letter="z", let_frequency=3, let_relation="at least")
    assert not passes(kind, "Zebra zoo", letter="Z", let_frequency=2, let_relation="less than")


# ---------------------------------------------------------------- language

def test_response_language():
    german = "Der Hund läuft schnell über die große Wiese und bellt laut, weil er glücklich ist."
    assert passes("language:response_language", german, language="de")
    failed = verdict("language:response_language", "The dog runs quickly across the big meadow "
                     "and barks loudly because it is happy.", language="de")
    assert failed.message == "Your reply reads as English; it must be entirely in German."
    # No letters at all: IFEval counts the instruction as followed.
    assert passes("language:response_language", "12345 !!!", language="de")


# ---------------------------------------------------------------- detectable_content

def test_placeholders_in_square_brackets():
    kind = "detectable_content:number_placeholders"
    assert passes(kind, "Dear [name], at [address].", num_placeholders=2)
    failed = verdict(kind, "Dear [name], at home.", num_placeholders=2)
    assert failed.message == ("Your reply has 1 placeholder; it must have at least 2 in square "
                              "brackets.")


def test_postscript_markers():
    kind = "detectable_content:postscript"
    assert passes(kind, "Body.\np. s. see you", postscript_marker="P.S.")
    assert passes(kind, "Body.\nP.P.S. one more", postscript_marker="P.P.S")
    assert not passes(kind, "Body.\nPS see you", postscript_marker="P.S.")
    assert not passes(kind, "Body.\nP.S. see you", postscript_marker="P.P.S")


# ---------------------------------------------------------------- detectable_format

def test_bullets_star_or_dash_but_not_bold():
    kind = "detectable_format:number_bullet_lists"
    assert passes(kind, "* one\n* two\n- three", num_bullets=3)
    reply = "**Bold heading**\n* one"  # a line starting with ** is bold, not a bullet
    assert passes(kind, reply, num_bullets=1)
    failed = verdict(kind, reply, num_bullets=2)
    assert failed.message == "Your reply has 1 bullet point; it must have exactly 2."


def test_constrained_response_is_exact():
    kind = "detectable_format:constrained_response"
    assert passes(kind, "Hmm. My answer is maybe.")
    assert not passes(kind, "my answer is yes")


def test_highlights_single_and_double_stars():
    kind = "detectable_format:number_highlighted_sections"
    assert passes(kind, "*one* and **two**", num_highlights=2)
    assert not passes(kind, "**two** only", num_highlights=2)
    assert not passes(kind, "* * and ** **", num_highlights=1)  # blank highlights do not count


def test_sections_with_their_splitter_and_a_number():
    kind = "detectable_format:multiple_sections"
    reply = "Section 1\nfoo\nSection 2\nbar"
    assert passes(kind, reply, section_spliter="Section", num_sections=2)
    failed = verdict(kind, reply, section_spliter="Section", num_sections=3)
    assert failed.message == "Your reply has 2 sections marked 'Section N'; it must have at least 3."
    assert not passes(kind, reply, section_spliter="SECTION", num_sections=1)


def test_json_alone_or_in_a_code_fence():
    kind = "detectable_format:json_format"
    assert passes(kind, '```json\n{"a": 1}\n```')
    assert passes(kind, ' [1, 2] ')
    assert not passes(kind, 'Here it is: {"a": 1}')


def test_title_in_double_angular_brackets():
    kind = "detectable_format:title"
    assert passes(kind, "<<My title>>\ntext")
    assert not passes(kind, "<< >>\ntext")
    assert not passes(kind, "<<My\ntitle>>")


# ---------------------------------------------------------------- combination

def test_two_responses_separated_by_six_asterisks():
    kind = "combination:two_responses"
    assert passes(kind, "First.\n******\nSecond.")
    assert passes(kind, "******\nFirst.\n******\nSecond.\n******")  # blank ends are allowed
    assert not passes(kind, "Same.\n******\nSame.")
    assert not passes(kind, "First.\n******\n******\nSecond.")
    assert not passes(kind, "First.\n******\nSecond.\n******\nThird.")


def test_repeat_prompt_first_in_any_case():
    kind = "combination:repeat_prompt"
    request = "Write a haiku about rain."
    assert passes(kind, "  write a haiku about rain. Rain falls.", prompt_to_repeat=request)
    assert not passes(kind, "Sure! Write a haiku about rain.", prompt_to_repeat=request)


# ---------------------------------------------------------------- startend

def test_end_phrase_with_trailing_whitespace_and_closing_quote():
    kind = "startend:end_checker"
    phrase = "Any other questions?"
    assert passes(kind, "Done.\nany other questions?  \n\n", end_phrase=phrase)
    assert passes(kind, '"Done. Any other questions?"', end_phrase=phrase)
    assert not passes(kind, "Any other questions? Bye.", end_phrase=phrase)


def test_quotation_marks_around_the_whole_reply():
    kind = "startend:quotation"
    assert passes(kind, '  "Hello there."\n')
    assert not passes(kind, '"')  # one mark is not a pair
    assert not passes(kind, 'Hello "there"')


# ---------------------------------------------------------------- change_case

def test_capital_words():
    kind = "change_case:capital_word_frequency"
    reply = "NASA and the ESA, I think, are (WELL-KNOWN)."  # NASA, ESA, I, WELL-KNOWN
    assert passes(kind, reply, capital_frequency=4, capital_relation="at least")
    failed = verdict(kind, reply, capital_frequency=4, capital_relation="less than")
    assert failed.message == "Your reply has 4 words in capitals; it must have fewer than 4."


def test_english_capital():
    kind = "change_case:english_capital"
    assert passes(kind, "THE WEATHER TODAY IS SUNNY AND WARM, SO WE WILL GO TO THE BEACH.")
    failed = verdict(kind, "THE WEATHER today IS SUNNY.")
    assert failed.message == ("Your reply has lower-case letters ('today'); it must be all in "
                              "capital letters.")
    # (langdetect reads Latin-script capitals as English whatever the language: IFEval's quirk.)
    russian = verdict(kind, "СЕГОДНЯ ХОРОШАЯ ПОГОДА, И МЫ ИДЁМ ГУЛЯТЬ В ПАРК.")
    assert russian.message == ("Your reply reads as Russian; it must be English, in capital "
                               "letters.")


def test_english_lowercase():
    kind = "change_case:english_lowercase"
    assert passes(kind, "the weather today is sunny and warm, so we will go to the beach.")
    failed = verdict(kind, "the weather today is Sunny.")
    assert failed.message == "Your reply has capital letters ('Sunny.'); it must be all in lower case."


# ---------------------------------------------------------------- punctuation

def test_no_comma_even_inside_a_url():
    kind = "punctuation:no_comma"
    assert passes(kind, "No commas here. None at all.")
    failed = verdict(kind, "See https://example.com/a,b for more")
    assert not failed.passed and failed.message.startswith("Your reply has 1 comma")


# ---------------------------------------------------------------- loose

def test_loose_passes_once_a_first_line_is_set_aside():
    check = build_check({"kind": "startend:quotation"})
    reply = 'Sure, here it is:\n"A quoted reply."'
    assert not check.verify(reply, "").passed
    assert loose_verdict(check, reply, "").passed


def test_loose_passes_once_the_stars_are_set_aside():
    check = build_check({"kind": "combination:repeat_prompt",
                         "prompt_to_repeat": "Write a haiku about rain."})
    reply = "**Write a haiku about rain.**\nRain on the roof."
    assert not check.verify(reply, "").passed
    assert loose_verdict(check, reply, "").passed


def test_loose_fails_with_the_strict_message_when_no_view_passes():
    check = build_check({"kind": "punctuation:no_comma"})
    reply = "One, two.\nThree, four.\nFive, six."
    assert loose_verdict(check, reply, "") == check.verify(reply, "")


def test_loose_still_tries_the_views_of_a_reply_with_too_many_words():
    # Too few words stay too few in every view, and loose skips them; too many may not.
    check = build_check({"kind": "length_constraints:number_words", "relation": "less than",
                         "num_words": 3})
    reply = "Here are my words:\nfew words"  # 6 words; 2 once the first line is set aside
    assert not check.verify(reply, "").passed
    assert loose_verdict(check, reply, "").passed


def test_the_guide_lists_every_kind():
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "checks.md").read_text()
    missing = [kind for kind in check_kinds() if f"| `{kind}` |" not in guide]
    assert not missing, f"docs/guides/checks.md's table of kinds lacks {missing}"


def test_loose_sets_blank_views_aside():
    # A one-line reply leaves nothing once a line is taken out; no commas in nothing is no pass.
    check = build_check({"kind": "punctuation:no_comma"})
    assert not loose_verdict(check, "One, two.", "").passed
