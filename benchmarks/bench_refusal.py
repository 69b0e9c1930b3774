"""Benchmark the refusal detector: replies classified per second on one core.

    taskset -c 0 python benchmarks/bench_refusal.py [--repeat 10]

The replies are XSTest's 2,250 completions (five models, tests/fixtures/xstest/; about half of
them refusals, 1,400 characters on average), repeated `--repeat` times. Each reply goes
through `classify_refusal` (what `is_refusal`, the `refusal` check and eval call). Reading the
files is not timed; the figure is replies per CPU second of the fastest of `--passes` passes,
with the load average beside it, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import Counter
from pathlib import Path

from selfalign.checks.refusal import classify_refusal

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "xstest"


def xstest_replies() -> list[str]:
    replies = []
    for path in sorted(FIXTURES.glob("completions_*.csv")):
        with open(path, newline="") as f:
            replies += [row["completion"] for row in csv.DictReader(f)]
    return replies


def rate(replies: list[str], passes: int) -> float:
    """Replies per CPU second over the fastest pass."""
    best = float("inf")
    for _ in range(passes):
        started = time.process_time()
        for reply in replies:
            classify_refusal(reply)
        best = min(best, time.process_time() - started)
    return len(replies) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="times the 2,250 replies repeat")
    parser.add_argument("--passes", type=int, default=5, help="passes over them")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    replies = xstest_replies() * args.repeat
    kinds = Counter(classify_refusal(reply).kind for reply in replies[:2250])
    per_second = rate(replies, args.passes)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{len(replies):,} replies ({dict(kinds)} in each 2,250): {per_second:,.0f} replies/s "
          f"on one core (load average {load})")


if __name__ == "__main__":
    main()
