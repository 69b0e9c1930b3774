"""The same run in-process and through vLLM's OpenAI-compatible server: what the server costs.

Both runs use the embedded SmolLM2-135M-Instruct (or --model) with the same engine settings
(the CPU defaults of the in-process engine, the same batch limit and KV cache), the same
prompts, seed and sampling. The server is started with vLLM's own entry point on 127.0.0.1.
Output tok/s is output tokens over the run's generation time, from each run's manifest.

    .venv/bin/python benchmarks/bench_openai_backend.py --prompts 256 --max-tokens 32
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_throughput import sample_prompts  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate(args, prompts: Path, out: Path, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "selfalign.cli", "generate", "--principles", args.constitution,
           "--prompts", str(prompts), "--out", str(out), "--rounds", "1",
           "--max-tokens", str(args.max_tokens), *extra]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    return {"wall_s": round(time.perf_counter() - started, 1),
            "generation_s": round(counts["engine_seconds"], 1),
            "output_tokens": counts["output_tokens"],
            "output_tokens_per_s": round(counts["output_tokens"] / counts["engine_seconds"], 1),
            "pairs": sum(counts["pairs"].values())}


def start_server(model: str, port: int, args, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
           "--served-model-name", "bench", "--host", "127.0.0.1", "--port", str(port),
           "--dtype", args.dtype, "--enforce-eager", "--max-num-seqs", str(args.max_num_seqs),
           "--kv-cache-memory-bytes", str(int(args.kv_cache_gib * 2**30)),
           "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192",
           "--max-model-len", "8192", "--seed", "0"]
    # The in-process engine binds its workers to every core of a small machine; so does this.
    env = {**os.environ, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
           "VLLM_CPU_OMP_THREADS_BIND": ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))}
    with open(log, "w") as handle:
        process = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1/models"
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return process
        except OSError:
            time.sleep(1)
    process.kill()
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-num-seqs", type=int, default=256)
    parser.add_argument("--kv-cache-gib", type=float, default=6.0)
    parser.add_argument("--dtype", default=None, help="[default: what the in-process engine "
                        "picks on this CPU]")
    parser.add_argument("--constitution", default=str(REPO / "constitution/3h.yaml"))
    parser.add_argument("--model", default=None)
    args = parser.parse_args()

    from selfalign.engine import resolve_model
    from selfalign.engine.vllm_engine import _cpu_defaults

    model = resolve_model(args.model)
    args.dtype = args.dtype or _cpu_defaults("auto", None)[0]
    if args.dtype == "auto":
        args.dtype = "bfloat16"
    tmp = Path(tempfile.mkdtemp(prefix="selfalign-bench-openai-"))
    prompts = tmp / "prompts.jsonl"
    sample_prompts(prompts, args.prompts)
    report = {"model": model, "prompts": args.prompts, "max_tokens": args.max_tokens,
              "max_num_seqs": args.max_num_seqs, "dtype": args.dtype}
    report["in_process"] = generate(args, prompts, tmp / "in-process", "--model", model,
                                    "--max-num-seqs", str(args.max_num_seqs), "--dtype",
                                    args.dtype, "--cpu-kv-cache-gib", str(args.kv_cache_gib))
    port = free_port()
    server = start_server(model, port, args, tmp / "server.log")
    try:
        report["openai"] = generate(args, prompts, tmp / "openai", "--backend", "openai",
                                    "--base-url", f"http://127.0.0.1:{port}/v1", "--model",
                                    "bench",
                                    # a queue at the server, so its batch refills at once
                                    "--max-concurrency", str(2 * args.max_num_seqs))
    finally:
        server.terminate()
        server.wait(timeout=60)
    report["openai_vs_in_process"] = round(report["openai"]["output_tokens_per_s"]
                                           / report["in_process"]["output_tokens_per_s"], 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    sys.exit(main())
