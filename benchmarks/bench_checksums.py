"""What checksums cost a real run: time spent hashing shard files (when written) and final files
(for the manifest), and checking shard files at assembly, against the time spent generating.

Runs `selfalign generate` in this process on the embedded model (or the flags given), with the
hashing functions wrapped by timers; prints the figures as JSON.

    .venv/bin/python benchmarks/bench_checksums.py --principles constitution/3h.yaml \
        --prompts selfalign/data/sample_prompts.jsonl --out /tmp/x --rounds 1 --max-tokens 96
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

SPENT: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)


def timed(module, name: str, label: str) -> None:
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            SPENT[label] += time.perf_counter() - started
            CALLS[label] += 1

    setattr(module, name, wrapper)


def main(argv: list[str]) -> None:
    from selfalign.cli import main as cli
    from selfalign.generate import final, run
    from selfalign.store import assemble, shard_files

    timed(shard_files, "file_record", "hash shard files (write_shard)")
    timed(assemble, "shard_problems", "check shard files (before assembly)")
    timed(assemble, "bytes_mismatch", "check shard files (as assembly reads them)")
    timed(final, "describe_final_files", "hash final files (manifest)")
    timed(run, "write_shard", "write_shard in all (parquet + hash)")
    started = time.perf_counter()
    cli(["generate", *argv], standalone_mode=False)
    wall = time.perf_counter() - started
    out = Path(argv[argv.index("--out") + 1])
    manifest = json.loads((out / "manifest.json").read_text())
    ledger = [json.loads(line) for line in (out / ".selfalign" / "ledger.jsonl").open()]
    generating = manifest["counts"]["engine_seconds"]
    hashing = sum(v for k, v in SPENT.items() if k != "write_shard in all (parquet + hash)")
    print(json.dumps({
        "shards": len(ledger), "prompts": manifest["counts"]["prompts"],
        "shard_file_bytes": sum(f["bytes"] for e in ledger for f in e["files"].values()),
        "generating_seconds": generating, "wall_seconds": round(wall, 2),
        "seconds": {k: round(v, 5) for k, v in SPENT.items()}, "calls": dict(CALLS),
        "hashing_share_of_generating": round(hashing / generating, 6),
        "shard_hash_share_of_shard_time": round(
            SPENT["hash shard files (write_shard)"] / sum(e["seconds"] for e in ledger), 6),
    }, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
