"""Benchmark `prompts prepare` on a generated JSONL: rows per second and peak resident memory.

    python benchmarks/bench_prepare.py [--rows 1000000] [--keep DIR]

The input has about 5% exact duplicates, 3% near duplicates (shared long prefix), 1% rows
with PII, 1% malformed lines, and 50,000 users (a few heavy ones hit the per-user cap).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from selfalign.prompts.prepare import PrepareSettings, prepare

SUBJECTS = ["the ocean", "a dragon", "tax law", "photosynthesis", "my garden", "Rust lifetimes", "jazz", "Mars"]
FORMS = [
    "Write a short poem about {s}, number {n}.",
    "Explain {s} to a ten year old; case {n}.",
    "Give me three facts about {s} (request {n}).",
    "¿Qué sabes sobre {s}? Pregunta {n}.",
    "Erkläre mir {s}, Frage {n}.",
    "Raconte-moi une histoire sur {s}, numéro {n}.",
]
LONG_STEM = "I am preparing a detailed report for my team and I need you to help me structure it; the topic is "


def _row(i: int, rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.01:
        return '{"prompt": "broken'
    user = f"user{rng.randrange(50_000)}" if rng.random() < 0.95 else f"heavy{rng.randrange(3)}"
    if kind < 0.06:
        text = FORMS[0].format(s=SUBJECTS[i % len(SUBJECTS)], n=i % 1000)  # exact duplicates
    elif kind < 0.09:
        text = LONG_STEM + f"{SUBJECTS[i % len(SUBJECTS)]}, variant {i}"  # near duplicates
    elif kind < 0.10:
        text = f"Please email the result to person{i}@example.com"
    else:
        text = rng.choice(FORMS).format(s=rng.choice(SUBJECTS), n=i)
    return json.dumps({"id": f"r{i}", "prompt": text, "user_id": user, "source_site": "bench"}, ensure_ascii=False)


def write_input(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(_row(i, rng) + "\n")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write input and output here instead of a temp folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temp:
        root = args.keep or Path(temp)
        root.mkdir(parents=True, exist_ok=True)
        src = root / "prompts.jsonl"
        write_input(src, args.rows)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu_before, started = _cpu_seconds(), time.perf_counter()
        report = prepare([str(src)], root / "prepared", PrepareSettings())
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(json.dumps({k: report[k] for k in ("rows_in", "rows_out", "by_reason", "by_split")}, indent=1))
    print(f"rows/s: {report['rows_in'] / seconds:,.0f} ({seconds:.1f} s for {report['rows_in']:,} rows)")
    print(f"rows per CPU second: {report['rows_in'] / cpu:,.0f} (differs from rows/s on a busy machine)")
    print(f"peak RSS: {peak_mib:,.0f} MiB (before prepare: {rss_before / 1024:,.0f} MiB)")


if __name__ == "__main__":
    sys.exit(main())
