"""What one `generate --ray` driver costs, and what Ray costs a run.

    .venv/bin/python benchmarks/bench_ray.py driver 10000 200000 [--rank]
    .venv/bin/python benchmarks/bench_ray.py throughput 48 [no-ray|ray|ray-2x1 ...]
    .venv/bin/python benchmarks/bench_ray.py alternate 48 3

`--rank`: the same with `--feedback rank --samples 4` (six judged pairs a prompt, each with its
judgment in the ledger), the case where a driver that kept ledger entries would grow.

`driver N...`: a local cluster (2 CPUs), two workers with the scripted stand-in engine from
tests/ (instant answers), shards of 512. Each size runs in a fresh process, so the peak RSS is
the driver's own; the workers are other processes. It reports the driver's peak RSS before and
after the final assembly (which reads the shard files), its CPU seconds per shard in the
dispatch loop (reading and cutting prompts, sending shards, taking results, appending the
ledger), and from that how many workers one driver keeps busy when a shard takes 1 to 10
minutes on a worker: shard seconds / driver seconds per shard.

`throughput N`: the embedded model through the CLI, the same N prompts: without Ray, with
`--ray --ray-workers 1 --ray-cpus-per-worker 2` (a local cluster started for the run; the
worker gets both cores, as the run without Ray has), and with two workers of one CPU each
(`ray-2x1`). Output tokens per second of generation from each manifest, and wall time.
`alternate N K`: no-ray and ray, K times each, alternating, so that a drift in the machine's
load falls on both; then ray-2x1 once against one more ray.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from bench_runner_memory import write_prompts  # the same prompts as the single-machine figures

REPO = Path(__file__).resolve().parents[1]
SHARD_SIZE = 512
SHARD_MINUTES = (1, 2, 5, 10)


# -- the driver --------------------------------------------------------------------------------

def measure_driver(count: int, rank: bool = False) -> dict:
    """Runs in a child process: one full run of `count` prompts on two scripted workers."""
    sys.path.insert(0, str(REPO / "tests"))
    import ray
    from ray_helpers import OBJECT_STORE_BYTES, WORKER_ENV, run_ray, scripted

    from selfalign.generate.ray import driver as ray_driver

    loop = {}
    run_loop = ray_driver._Driver.drive

    def timed_loop(self):
        cpu, wall = time.process_time(), time.perf_counter()
        run_loop(self)
        loop.update(cpu=time.process_time() - cpu, wall=time.perf_counter() - wall,
                    rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    ray_driver._Driver.drive = timed_loop
    ray.init(num_cpus=2, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
             runtime_env=WORKER_ENV)
    with tempfile.TemporaryDirectory() as tmp:
        prompts = Path(tmp) / "prompts.jsonl"
        write_prompts(prompts, count)
        started = time.perf_counter()
        feedback = {"feedback": "rank", "samples": 4, "rounds": 0} if rank else {}
        manifest = run_ray(REPO / "constitution" / "3h.yaml", prompts, Path(tmp) / "out",
                           partial(scripted, vary=rank), workers=2, shard_size=SHARD_SIZE,
                           **feedback)
        seconds = time.perf_counter() - started
    ray.shutdown()
    shards = manifest["counts"]["shards"]
    per_shard = loop["cpu"] / shards
    return {"prompts": count, "feedback": "rank, 4 samples" if rank else None, "shards": shards,
            "pairs": sum(manifest["counts"]["pairs"].values()),
            "seconds": round(seconds, 1), "loop_seconds": round(loop["wall"], 1),
            "driver_cpu_s_per_shard": round(per_shard, 4),
            "workers_one_driver_keeps_busy": {f"{m} min shards": int(60 * m / per_shard)
                                              for m in SHARD_MINUTES},
            "driver_peak_rss_mib_until_assembly": round(loop["rss"], 1),
            "driver_peak_rss_mib": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


# -- Ray against no Ray on the embedded model --------------------------------------------------

# Ray starts its workers at niceness 15. On a node of its own that changes nothing; on a
# machine shared with other work it would starve the worker's engine and measure the neighbours.
RUNS = {"no-ray": ([], {}),
        "ray": (["--ray", "--ray-workers", "1", "--ray-cpus-per-worker", "2"],
                {"RAY_worker_niceness": "0"}),
        "ray-2x1": (["--ray", "--ray-workers", "2", "--ray-cpus-per-worker", "1"],
                    {"RAY_worker_niceness": "0"})}


def measure_throughput(count: int, runs: list[str]) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        prompts = Path(tmp) / "prompts.jsonl"
        write_prompts(prompts, count)
        for number, label in enumerate(runs):
            extra, env = RUNS[label]
            out = Path(tmp) / f"{number}-{label}"
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "selfalign.cli", "generate",
                            "--principles", str(REPO / "constitution" / "harmless.yaml"),
                            "--prompts", str(prompts), "--out", str(out), "--max-tokens", "64",
                            "--shard-size", "16", *extra], check=True, cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO), **env},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - started
            counts = json.loads((out / "manifest.json").read_text())["counts"]
            results.append({"run": label, "prompts": count,
                            "output_tokens": counts["output_tokens"],
                            "generation_seconds": counts["engine_seconds"],
                            "output_tok_per_s": round(counts["output_tokens"]
                                                      / counts["engine_seconds"], 1),
                            "wall_seconds": round(wall, 1)})
            print(json.dumps(results[-1]), flush=True)
    by_run: dict[str, list[float]] = {}
    for result in results:
        by_run.setdefault(result["run"], []).append(result["output_tok_per_s"])
    means = {run: round(sum(v) / len(v), 1) for run, v in by_run.items()}
    summary = {"mean_output_tok_per_s": means}
    if "no-ray" in means and "ray" in means:
        summary["ray_over_no_ray"] = round(means["ray"] / means["no-ray"], 3)
    if "ray-2x1" in means and "ray" in means:
        summary["two_1cpu_workers_over_one_2cpu_worker"] = round(means["ray-2x1"] / means["ray"], 3)
    print(json.dumps(summary), flush=True)
    return results


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        print(json.dumps(measure_driver(int(argv[1]), rank="--rank" in argv)))
    elif argv[:1] == ["throughput"]:
        measure_throughput(int(argv[1]) if argv[1:] else 48, argv[2:] or ["no-ray", "ray"])
    elif argv[:1] == ["alternate"]:
        count, times = (int(argv[1]) if argv[1:] else 48), (int(argv[2]) if argv[2:] else 3)
        measure_throughput(count, ["no-ray", "ray"] * times + ["ray-2x1", "ray"])
    else:
        rank = ["--rank"] if "--rank" in argv else []
        sizes = [int(a) for a in argv[1:] if a != "--rank"] or [10_000, 200_000]
        for count in sizes:
            result = subprocess.run([sys.executable, __file__, "--one", str(count), *rank],
                                    capture_output=True, text=True, check=True,
                                    env={**os.environ, "PYTHONPATH": str(REPO)})
            print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] if sys.argv[1:] else ["driver"])
