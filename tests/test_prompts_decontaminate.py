"""`prompts prepare --decontaminate`: training prompts that overlap a test set go to rejects as
`contaminated`, naming the test row; the report counts them by test row.

The rule (selfalign/prompts/decontaminate.py): words are case-folded runs of letters and digits;
a pair is contaminated when the 8-word windows they share cover more than half of the test
prompt, or all of the training prompt; a prompt under 8 words is compared whole.
"""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq
import pytest

from selfalign.errors import UserError
from selfalign.prompts.decontaminate import OverlapIndex, words
from selfalign.prompts.prepare import PrepareSettings, prepare
from selfalign.prompts.split import SplitPlan
from selfalign.records import PromptRecord, stable_prompt_id

# XSTest-like CSV: 15 words; 7 words (under n, compared whole); 16 words.
LONG_TEST = "How can I kill a Python process that has stopped responding on my Linux server?"
SHORT_TEST = "How do I whittle a wooden spoon?"
HALF_TEST = "alpha beta gamma delta epsilon zeta eta theta one two three four five six seven eight"
# IFEval-like JSONL: 19 words.
IFEVAL_TEST = ("Write a haiku about a lighthouse in winter. Do not use any commas and end with the "
               "word dawn.")

TRAIN = [
    {"id": "copy", "prompt": SHORT_TEST},
    # shares the 13 words "how can i kill ... on my" with LONG_TEST: 13/15 of it, 13/17 of itself
    {"id": "paraphrase", "prompt": "Please tell me: how can I kill a Python process that has "
                                   "stopped responding on my laptop"},
    # shares only "how can i", "that has", "on my" with LONG_TEST: under 8 words, kept
    {"id": "unrelated", "prompt": "How can I bake a loaf of bread that has a crisp crust on my "
                                  "old oven?"},
    # all 8 of its words lie in IFEVAL_TEST, which they cover 8/19: dropped by the training side
    {"id": "excerpt", "prompt": "Write a haiku about a lighthouse in winter."},
    # shares exactly 8 of HALF_TEST's 16 words (not more than half) and 8 of its own 13: kept
    {"id": "half", "prompt": "alpha beta gamma delta epsilon zeta eta theta and then something "
                             "else entirely"},
]


@pytest.fixture
def files(tmp_path):
    test_csv = tmp_path / "xstest.csv"
    with open(test_csv, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "prompt", "type", "label"])
        writer.writerow(["1", LONG_TEST, "homonyms", "safe"])
        writer.writerow(["2", SHORT_TEST, "homonyms", "safe"])
        writer.writerow(["3", HALF_TEST, "made_up", "safe"])
    test_jsonl = tmp_path / "ifeval.jsonl"
    test_jsonl.write_text(json.dumps({"key": 7, "prompt": IFEVAL_TEST}) + "\n")
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(row) + "\n" for row in TRAIN))
    return train, test_csv, test_jsonl


def run(files, out):
    train, test_csv, test_jsonl = files
    settings = PrepareSettings(splits=SplitPlan.parse("train=1"),
                               decontaminate=(str(test_csv), str(test_jsonl)))
    return prepare([str(train)], out, settings)


def test_overlapping_prompts_are_dropped_naming_the_test_row(files, tmp_path):
    report = run(files, tmp_path / "out")
    kept = [r["id"] for r in pq.read_table(tmp_path / "out" / "train.parquet").to_pylist()]
    assert kept == ["unrelated", "half"]
    rejects = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()}
    assert {r["reason"] for r in rejects.values()} == {"contaminated"}
    _, test_csv, test_jsonl = files
    # CSV lines count the header: the test rows 1, 2 are on lines 2, 3.
    assert rejects["copy"]["detail"] == (f"8-gram overlap with test {test_csv} line 3 (id 2): "
                                         "100% of the test prompt, 100% of this one")
    assert rejects["paraphrase"]["detail"] == (f"8-gram overlap with test {test_csv} line 2 "
                                               "(id 1): 87% of the test prompt, 76% of this one")
    assert rejects["excerpt"]["detail"] == (f"8-gram overlap with test {test_jsonl} line 1 "
                                            f"(id {stable_prompt_id(IFEVAL_TEST)}): 42% of the "
                                            "test prompt, 100% of this one")
    assert report["by_reason"] == {"contaminated": 3}
    decontamination = report["decontamination"]
    assert decontamination["dropped"] == 3 and decontamination["test_rows"] == 4
    assert decontamination["ngram_words"] == 8 and decontamination["min_share"] == 0.5
    assert [(m["test"], m["line"], m["dropped"]) for m in decontamination["matched"]] == [
        (str(test_csv), 2, 1), (str(test_csv), 3, 1), (str(test_jsonl), 1, 1)]


def test_without_test_sets_nothing_is_dropped(files, tmp_path):
    train, _, _ = files
    report = prepare([str(train)], tmp_path / "out", PrepareSettings(splits=SplitPlan.parse("train=1")))
    assert report["rows_out"] == len(TRAIN) and "decontamination" not in report


def test_a_test_file_without_prompts_is_an_error(files, tmp_path):
    train, _, _ = files
    empty = tmp_path / "answers.jsonl"
    empty.write_text(json.dumps({"question": "no prompt key here at all"}) + "\n")
    settings = PrepareSettings(decontaminate=(str(empty),))
    with pytest.raises(UserError, match="answers.jsonl: no prompt was read from it"):
        prepare([str(train)], tmp_path / "out", settings)


def test_words_ignore_case_and_punctuation():
    assert words("Step-by-step: HOW to?") == ["step", "by", "step", "how", "to"]


def test_the_index_compares_a_short_prompt_whole():
    index = OverlapIndex([PromptRecord(id="t", prompt=SHORT_TEST, source="x.csv", line=3)])
    inside = index.best_overlap("Tell me, how do I whittle a wooden spoon? Thanks a lot.")
    assert (inside.test_share, inside.row.line) == (1.0, 3)
    assert index.best_overlap("How do I whittle a wooden bowl?") is None  # 6 of its 7 words


def test_phrases_under_four_words_prove_nothing_unless_they_are_the_whole_prompt():
    index = OverlapIndex([PromptRecord(id="t", prompt="What is love?", source="x.csv", line=2)])
    assert index.best_overlap("What is love? Tell me about it.") is None
    copy = index.best_overlap("what is LOVE")
    assert (copy.row.line, copy.test_share, copy.train_share) == (2, 1.0, 1.0)
