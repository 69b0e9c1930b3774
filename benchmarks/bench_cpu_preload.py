"""Output tok/s of the vLLM CPU engine with and without tcmalloc + libiomp5 in LD_PRELOAD.

The same `selfalign generate` run (the embedded model, the same prompts, seed and settings) is
repeated with SELFALIGN_CPU_PRELOAD=1 and =0, alternating (on, off, off, on, ...), so slow drift
in the machine's load falls on both. Preloading is off by default; run this on your machine
before turning it on there. Output tok/s is output tokens over the run's generation time (engine start not
counted), from each run's manifest; the manifest's `engine.preloaded` says what was preloaded.

    .venv/bin/python benchmarks/bench_cpu_preload.py --prompts 60 --max-tokens 96 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_throughput import sample_prompts  # noqa: E402


def run_once(args, prompts: Path, out: Path, preload: bool) -> dict:
    cmd = [sys.executable, "-m", "selfalign.cli", "generate", "--principles", args.constitution,
           "--prompts", str(prompts), "--out", str(out), "--rounds", "1",
           "--max-tokens", str(args.max_tokens)]
    env = {**os.environ, "SELFALIGN_CPU_PRELOAD": "1" if preload else "0"}
    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    return {"preload": preload, "preloaded": manifest["engine"].get("preloaded"),
            "wall_s": round(time.perf_counter() - started, 1),
            "generation_s": round(counts["engine_seconds"], 1),
            "output_tokens": counts["output_tokens"],
            "output_tokens_per_s": round(counts["output_tokens"] / counts["engine_seconds"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=60)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--constitution", default="constitution/3h.yaml")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-preload-") as tmp:
        prompts = Path(tmp) / "prompts.jsonl"
        sample_prompts(prompts, args.prompts)
        for i in range(args.repeats):
            for preload in (True, False) if i % 2 == 0 else (False, True):
                result = run_once(args, prompts, Path(tmp) / f"out-{i}-{int(preload)}", preload)
                results.append(result)
                print(json.dumps(result), flush=True)
    for preload in (True, False):
        rates = [r["output_tokens_per_s"] for r in results if r["preload"] == preload]
        print(f"preload {'on ' if preload else 'off'}: output tok/s {rates}, "
              f"mean {sum(rates) / len(rates):.1f}")


if __name__ == "__main__":
    main()
