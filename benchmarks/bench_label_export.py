"""`selfalign label export` of many labels, alone: wall and CPU seconds of the command.

    python benchmarks/bench_label_export.py [--pairs 150000] [--labels 100000] [--reuse DIR]

A synthetic run of `--pairs` pairs (the builder the tests use), one compare task drawing every
pair, and `--labels` labels written straight into its database (as `label import` would; the
export costs what the labels are, not how they were made), then the command in its own process,
as a user runs it. `--reuse DIR` keeps the run and its labels between tries; `--profile` runs
the export in this process under cProfile instead and prints where its time went.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the synthetic run builder the tests use
sys.path.insert(0, str(REPO / "benchmarks"))


def labelled_run(root: Path, pairs: int, labels: int) -> Path:
    from bench_label import add_labels
    from label_helpers import synthetic_run, write_tasks

    from selfalign.label.project import open_project

    run = root / "run"
    if (run / "labels" / "labels.sqlite").exists():
        return run
    synthetic_run(run, pairs, splits=("train", "test"),
                  text=lambda i, which: f"{which} {i}: " + "words of a reply " * 20)
    write_tasks(run, f"    limit: {pairs}\n    overlap: 0.1\n")
    project = open_project(run, log=lambda message: None)
    project.db.add_labeller("owner", owner=True)
    for n in range(4):
        project.db.add_labeller(f"labeller-{n}")
    add_labels(project.db.path, labels)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=150_000)
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--reuse", type=Path, help="folder kept between tries")
    parser.add_argument("--profile", action="store_true", help="cProfile the export in-process")
    args = parser.parse_args()
    root = args.reuse or Path(tempfile.mkdtemp(prefix="bench-export-"))
    root.mkdir(parents=True, exist_ok=True)
    run = labelled_run(root, args.pairs, args.labels)
    out = root / "export"
    shutil.rmtree(out, ignore_errors=True)
    if args.profile:
        from selfalign.label.export import export_labels
        from selfalign.label.project import open_project

        cProfile.runctx("export_labels(open_project(run, sync=False), out)", globals(),
                        {"export_labels": export_labels, "open_project": open_project,
                         "run": run, "out": out}, str(root / "export.prof"))
        pstats.Stats(str(root / "export.prof")).sort_stats("cumtime").print_stats(25)
        return
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "selfalign.cli", "label", "export", str(run), "--out",
                    str(out)], check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    manifest = json.loads((out / "manifest.json").read_text())
    print(json.dumps({"labels": manifest["labels"], "export_s": round(wall, 2),
                      "export_cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime
                                            - before.ru_stime, 2),
                      "load_average": [load, os.getloadavg()[0]]}))


if __name__ == "__main__":
    main()
