"""Training and eval inputs at a million pairs: peak memory of reading a run for training and of
eval's statistics.

- load: `train dpo|rm|sft --data RUN` up to the first step: the run folder read, checked, weighted
  and mixed, and the datasets handed to the trainer made (`train.run.datasets_of`); no model.
  Peak RSS of a fresh process, and what loading adds to the RSS after the imports.
- eval: the preference-weighted win rate with its bootstrap interval (2,000 resamples) over
  100,000 answers, the part of eval's statistics that grows with prompts × resamples.

Each measurement runs in its own process; `--code DIR` measures another checkout of the package
(e.g. main's, unpacked with `git archive main | tar -x -C DIR`) on the same folder.

    .venv/bin/python benchmarks/bench_million.py --pairs 1000000 --answers 100000 [--code DIR]
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
CHUNK = 100_000  # rows per file, as a run writes them

# Pages of a memory-mapped file count in the resident set while they are cached, but the kernel
# drops them under pressure; anonymous memory (RssAnon) is what must fit. Its peak is sampled.
WATCH = """
import threading
def status(key):
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0])
peak_anon = [0]
def watch():
    while True:
        peak_anon[0] = max(peak_anon[0], status("RssAnon"))
        time.sleep(0.02)
threading.Thread(target=watch, daemon=True).start()
"""

LOAD = """
import json, sys, time, types
from pathlib import Path
import datasets, numpy, pyarrow
from selfalign.train.data import DataSource, load_folder, mix_folders
from selfalign.train.run import datasets_of
datasets.disable_progress_bars()
""" + WATCH + """
kb = lambda: status("VmRSS")
before, anon_before = kb(), status("RssAnon")
started = time.perf_counter()
kind, folder = sys.argv[1], Path(sys.argv[2])
mixed = mix_folders(kind, [load_folder(kind, DataSource(folder, 1.5))], seed=42)
train, validation = datasets_of(types.SimpleNamespace(data=mixed))
print(json.dumps({"rows": len(train), "seconds": round(time.perf_counter() - started, 1),
                  "rss_after_imports_mib": round(before / 1024, 1),
                  "peak_rss_mib": round(status("VmHWM") / 1024, 1),
                  "anon_after_imports_mib": round(anon_before / 1024, 1),
                  "peak_anon_mib": round(peak_anon[0] / 1024, 1)}))
"""

EVAL = """
import json, sys, time
import numpy
from selfalign.eval.outcomes import soft_win_rate
kb = lambda: int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
preferences = numpy.random.default_rng(0).random(int(sys.argv[1])).tolist()
before = kb()
started = time.perf_counter()
result = soft_win_rate(preferences)
print(json.dumps({"ci": result["ci"], "seconds": round(time.perf_counter() - started, 2),
                  "rss_before_mib": round(before / 1024, 1),
                  "peak_rss_mib": round(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024, 1)}))
"""


def write_run(out: Path, pairs: int) -> Path:
    """A finished run folder of `pairs` pairs (90% train, 10% validation), prefs and sft, written
    straight in the run's schemas: texts of a few hundred characters, one pair per prompt."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from selfalign.atomic import PARQUET_OPTIONS
    from selfalign.store.columns import PREFS_SCHEMA, SFT_SCHEMA
    from selfalign.store.layout import split_file_name

    body = "Here is a careful answer that explains the steps one by one. " * 4
    splits = {"train": range(0, pairs * 9 // 10), "validation": range(pairs * 9 // 10, pairs)}
    for split, numbers in splits.items():
        files = max(1, -(-len(numbers) // CHUNK))
        for n in range(files):
            part = numbers[n * CHUNK:(n + 1) * CHUNK]
            prompts = [[{"role": "user", "content": f"Question {i}: how should I do task {i}?"}]
                       for i in part]
            chosen = [[{"role": "assistant", "content": f"{body}({i})"}] for i in part]
            rejected = [[{"role": "assistant", "content": f"No. ({i})"}] for i in part]
            common = {"prompt_id": [f"p{i}" for i in part], "split": [split] * len(part)}
            prefs = {"prompt": prompts, "chosen": chosen, "rejected": rejected, **common,
                     "preference": [0.5 + (i % 50) / 100 for i in part]}
            sft = {"messages": [p + c for p, c in zip(prompts, chosen)], **common}
            for kind, columns, schema in (("prefs", prefs, PREFS_SCHEMA), ("sft", sft, SFT_SCHEMA)):
                table = pa.table({f.name: columns.get(f.name, [None] * len(part))
                                  for f in schema}, schema=schema)
                (out / kind).mkdir(parents=True, exist_ok=True)
                pq.write_table(table, out / kind / split_file_name(split, n, files),
                               **PARQUET_OPTIONS)
    (out / "manifest.json").write_text(json.dumps({"status": "complete", "model": "synthetic"}))
    return out


def measure(script: str, args: list[str], code: Path) -> dict:
    """`script` in a fresh process on the package in `code` (run from there: `python -c` puts
    the working folder first on the path). Peaks are VmHWM, which starts afresh in a new
    program; getrusage's ru_maxrss would carry this process's peak over the exec."""
    env = {**os.environ, "PYTHONPATH": str(code), "HF_DATASETS_CACHE": str(CACHE)}
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True,
                          text=True, cwd=code)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    global CACHE
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--kinds", default="dpo,rm,sft")
    parser.add_argument("--code", type=Path, default=REPO, help="the package checkout to measure")
    parser.add_argument("--reuse", type=Path, default=None, help="a run folder made earlier")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-million-"))
    CACHE = root / "datasets-cache"  # a cold cache: the first conversion is measured
    run = args.reuse
    if run is None:
        started = time.perf_counter()
        run = write_run(root / "run", args.pairs)
        print(f"synthetic run of {args.pairs:,} pairs in {time.perf_counter() - started:.0f} s: {run}")
    print(f"code: {args.code}")
    for kind in args.kinds.split(","):
        print(f"load {kind} (weight 1.5):", json.dumps(measure(LOAD, [kind, str(run)], args.code)))
    print(f"eval statistics over {args.answers:,} answers:",
          json.dumps(measure(EVAL, [str(args.answers)], args.code)))


CACHE = Path(tempfile.gettempdir())

if __name__ == "__main__":
    main()
