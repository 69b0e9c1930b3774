"""What one `generate --ray` driver costs, and what Ray costs a run (issue 15).

    .venv/bin/python benchmarks/bench_ray.py driver 10000 200000
    .venv/bin/python benchmarks/bench_ray.py throughput 48 [no-ray|ray]

`driver N...`: a local cluster (2 CPUs), two workers with the scripted stand-in engine from
tests/ (instant answers), shards of 512. Each size runs in a fresh process, so the peak RSS is
the driver's own; the workers are other processes. It reports the driver's peak RSS before and
after the final assembly (which reads the shard files), its CPU seconds per shard in the
dispatch loop (reading and cutting prompts, sending shards, taking results, appending the
ledger), and from that how many workers one driver keeps busy when a shard takes 1 to 10
minutes on a worker: shard seconds / driver seconds per shard.

`throughput N`: the embedded model through the CLI, the same N prompts twice: without Ray, and
with `--ray --ray-workers 1 --ray-cpus-per-worker 2` (a local cluster started for the run; the
worker gets both cores, as the run without Ray has). Output tokens per second of generation
from each manifest, and wall time.
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

def measure_driver(count: int) -> dict:
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
        manifest = run_ray(REPO / "constitution" / "3h.yaml", prompts, Path(tmp) / "out",
                           partial(scripted), workers=2, shard_size=SHARD_SIZE)
        seconds = time.perf_counter() - started
    ray.shutdown()
    shards = manifest["counts"]["shards"]
    per_shard = loop["cpu"] / shards
    return {"prompts": count, "shards": shards,
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
                {"RAY_worker_niceness": "0"})}


def measure_throughput(count: int, runs: list[str]) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        prompts = Path(tmp) / "prompts.jsonl"
        write_prompts(prompts, count)
        for label in runs:
            extra, env = RUNS[label]
            out = Path(tmp) / label
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
    if len(results) == 2:
        ratio = results[1]["output_tok_per_s"] / results[0]["output_tok_per_s"]
        print(json.dumps({"ray_over_no_ray": round(ratio, 3)}), flush=True)
    return results


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        print(json.dumps(measure_driver(int(argv[1]))))
    elif argv[:1] == ["throughput"]:
        measure_throughput(int(argv[1]) if argv[1:] else 48, argv[2:] or list(RUNS))
    else:
        sizes = [int(a) for a in argv[1:]] or [10_000, 200_000]
        for count in sizes:
            result = subprocess.run([sys.executable, __file__, "--one", str(count)],
                                    capture_output=True, text=True, check=True,
                                    env={**os.environ, "PYTHONPATH": str(REPO)})
            print(result.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] if sys.argv[1:] else ["driver"])
