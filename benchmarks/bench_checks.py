"""Benchmark `selfalign checks score`'s scoring: replies per second on one core.

    python benchmarks/bench_checks.py [--passes 5]

A reply here is one of the 541 GPT-4 replies the IFEval authors released (about 1,200
characters, 200 words each) with the checks its IFEval prompt gives it (1.5 on average), and
each check gives both verdicts, strict and loose (loose tries up to seven more views of the
reply when strict fails). Reading the file and writing the outputs are not timed.

Three figures: the replies whose checks detect no language (the three kinds that run
langdetect set aside), all 541 replies with every check (language detection included), and
every reply against one check of each kind that detects no language (22 of IFEval's, no_pii,
regex, refusal), which is what a principle with many checks costs.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from selfalign.checks import build_check, check_ids, check_kinds, checks_from_instructions
from selfalign.checks.score import ReplyToScore, score_reply
from selfalign.checks.text import forget_sentence_decisions

ROOT = Path(__file__).resolve().parents[1]
REPLIES = ROOT / "tests" / "fixtures" / "ifeval" / "input_response_data_gpt4_20231107_145030.jsonl"
INPUT = ROOT / "selfalign" / "data" / "ifeval" / "input_data.jsonl"
DETECTS_LANGUAGE = {"language:response_language", "change_case:english_capital",
                    "change_case:english_lowercase", "same_language"}
SENTENCES = "length_constraints:number_sentences"


def ifeval_items() -> list[ReplyToScore]:
    table = {}
    for line in INPUT.read_text().splitlines():
        row = json.loads(line)
        table[row["prompt"]] = checks_from_instructions(row["instruction_id_list"], row["kwargs"])
    items = []
    for line in REPLIES.read_text().splitlines():
        row = json.loads(line)
        checks = table.get(row["prompt"])
        if checks is not None:
            items.append(ReplyToScore(row["prompt"], row["response"], checks,
                                      check_ids("ifeval", checks)))
    return items


def every_kind_items(items: list[ReplyToScore]) -> list[ReplyToScore]:
    checks = [build_check({"kind": kind, **cls.example}) for kind, cls in check_kinds().items()
              if kind not in DETECTS_LANGUAGE]
    return [ReplyToScore(i.prompt, i.reply, checks, check_ids("all", checks)) for i in items]


def rate(items: list[ReplyToScore], passes: int) -> tuple[float, int]:
    """Replies per CPU second of this process over the fastest of `passes` passes (CPU time,
    not wall time, and the fastest pass: the machine may be shared with other work). Punkt's model and langdetect's profiles load
    before the first; each pass starts with an empty store of Punkt's decisions, so a pass
    gains nothing from the one before."""
    for item in items[:20]:
        score_reply(item)
    best = float("inf")
    for _ in range(passes):
        forget_sentence_decisions()
        started = time.process_time()
        for item in items:
            score_reply(item)
        best = min(best, time.process_time() - started)
    return len(items) / best, sum(len(i.checks) for i in items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=5, help="passes over the replies")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    items = ifeval_items()
    plain = [i for i in items if not DETECTS_LANGUAGE & {c.kind for c in i.checks}]
    no_sentences = [i for i in plain if SENTENCES not in {c.kind for c in i.checks}]
    for name, chosen in (
            ("IFEval replies, no language detection", plain),
            ("  of which no sentence counting either", no_sentences),
            ("IFEval replies, all checks (langdetect included)", items),
            ("every non-language kind on each reply", every_kind_items(items))):
        per_second, checks = rate(chosen, args.passes)
        print(f"{name}: {len(chosen)} replies, {checks} checks: {per_second:,.0f} replies/s")


if __name__ == "__main__":
    main()
