"""Peak RSS of a generate run as the prompt stream grows (issue 4).

The engine is the scripted stand-in from tests/ (instant answers), so what is measured is the
runner itself: reading, sharding, stages, shard files, ledger and final assembly. Each size runs
in a fresh process so its peak RSS is its own.

    .venv/bin/python benchmarks/bench_runner_memory.py 10000 200000
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_prompts(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(count):
            handle.write(json.dumps({"id": f"p{i}", "user_id": f"u{i % 997}",
                                     "prompt": f"Prompt {i}: how should I answer a rude email?"})
                         + "\n")


def measure(count: int) -> dict:
    """Runs in a child process: one full run of `count` prompts; returns its figures."""
    sys.path.insert(0, str(REPO / "tests"))
    from run_helpers import run_scripted  # noqa: E402
    from scripted_engine import ScriptedEngine  # noqa: E402

    with tempfile.TemporaryDirectory() as tmp:
        prompts = Path(tmp) / "prompts.jsonl"
        write_prompts(prompts, count)
        started = time.perf_counter()
        manifest, _ = run_scripted(REPO / "constitution" / "3h.yaml", prompts, Path(tmp) / "out",
                                   engine=ScriptedEngine(record_calls=False), shard_size=512)
        seconds = time.perf_counter() - started
    return {"prompts": count, "pairs": sum(manifest["counts"]["pairs"].values()),
            "seconds": round(seconds, 1), "prompts_per_s": round(count / seconds),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main(sizes: list[int]) -> None:
    for count in sizes:
        result = subprocess.run([sys.executable, __file__, "--one", str(count)],
                                capture_output=True, text=True, check=True)
        print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(measure(int(sys.argv[2]))))
    else:
        main([int(a) for a in sys.argv[1:]] or [10_000, 200_000])
