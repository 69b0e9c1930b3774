"""The generate flow against the engine's own ceiling on the same work, and how full it keeps
the engine.

One vLLM engine (the embedded SmolLM2-135M-Instruct, or --model) serves, in one process:
  1. the run: `--prompts` sample prompts through the product's flow (answer, critique, revise;
     shards, ledger and shard files included), every request recorded as the engine saw it;
  2. the replay: exactly those requests (the same rendered conversations and sampling
     parameters), each forced to the output length it had, all submitted at once. That is the
     engine's ceiling on this work.
With `--design barrier` the run is the former design instead: per shard, every stage waits for
all of its requests before the next stage starts (kept here only to be measured).

Fullness: vLLM reports its running-request count every step. The share of generation time it
stays at or above 90% of `max_num_seqs`, up to the last moment enough work was queued to fill
it (after that only the final tail runs, in any design), decides GPU throughput.

    .venv/bin/python benchmarks/bench_throughput.py --prompts 256 --max-tokens 64
    .venv/bin/python benchmarks/bench_throughput.py --design barrier --shard-size 64 --no-replay
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FULL = 0.9


def sample_prompts(path: Path, count: int) -> None:
    """The 60 shipped sample prompts, repeated with a number so every prompt is distinct."""
    rows = [json.loads(line) for line in
            (REPO / "selfalign/data/sample_prompts.jsonl").read_text().splitlines() if line]
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(count):
            row = rows[i % len(rows)]
            text = row["prompt"] if i < len(rows) else f"{row['prompt']} (variant {i})"
            handle.write(json.dumps({"id": f"b{i}", "prompt": text}) + "\n")


def fullness(samples: list, max_num_seqs: int, since: float) -> dict:
    """Time-weighted share of steps with running >= 90% of max_num_seqs, before the tail."""
    steps = [s for s in samples if s[0] >= since]
    if len(steps) < 2:
        return {"share_full": None, "steps": len(steps)}
    queued = [(t, running + waiting) for t, _, running, waiting in steps]
    window_end = max((t for t, total in queued if total >= max_num_seqs), default=steps[-1][0])
    full = busy = 0.0
    for (t, _, running, _), (t_next, *_rest) in zip(steps, steps[1:]):
        if t >= window_end:
            break
        busy += t_next - t
        full += (t_next - t) if running >= FULL * max_num_seqs else 0.0
    mean_running = sum(s[2] for s in steps) / len(steps)
    return {"share_full": round(full / busy, 3) if busy else None,
            "window_s": round(busy, 1), "steps": len(steps),
            "mean_running": round(mean_running, 1), "max_num_seqs": max_num_seqs}


async def run_barrier(plan, engine) -> None:
    """The former design, for comparison only: each stage of a shard waits for all of it."""
    from selfalign.engine.base import SamplingSettings
    from selfalign.generate.flow import Recipe
    from selfalign.store.layout import shard_dir
    from selfalign.store.ledger import append_ledger
    from selfalign.generate.shards import cut_shards, write_shard
    from selfalign.prompts.sources import FieldMap, read_prompts
    from selfalign.stages import (Sample, answer_request, critique_request, revise_request,
                                  take_answer, take_critique, take_revision)

    s = plan.settings
    recipe = Recipe(plan.constitution, SamplingSettings(s.max_tokens, s.temperature, s.top_p),
                    s.seed, plan.rounds, s.samples)

    async def stage(samples, build, take):
        live = [x for x in samples if x.alive]
        done = await asyncio.gather(*(engine.complete(build(x)) for x in live))
        for x, completion in zip(live, done):
            take(x, completion)

    for shard in cut_shards(read_prompts(s.prompts, FieldMap.from_settings(s)), s.shard_size, s.limit):
        started = time.perf_counter()
        samples = [Sample(r, i) for r in shard.records for i in range(s.samples)]
        await stage(samples, lambda x: answer_request(x, recipe.system, recipe.sampling, s.seed),
                    take_answer)
        for r in range(1, plan.rounds + 1):
            def ask_critique(x, r=r):
                principle = plan.constitution.draw(s.seed, x.record.id, r)
                return critique_request(x, principle, r, recipe.prefix, recipe.sampling, s.seed)

            await stage(samples, ask_critique, lambda x, c, r=r: take_critique(x, c, r))
            await stage(samples, lambda x, r=r: revise_request(x, r, recipe.prefix,
                                                               recipe.sampling, s.seed),
                        lambda x, c, r=r: take_revision(x, c, r))
        entry = write_shard(shard_dir(plan.out), shard, samples, plan.model,
                            time.perf_counter() - started)
        append_ledger(plan.out, entry)


async def main_async(args) -> dict:
    from selfalign.engine import resolve_model
    from selfalign.engine.vllm_engine import VLLMEngine
    from selfalign.generate.local import LocalExecutor
    from selfalign.generate.plan import plan_run
    from selfalign.generate.run import Run
    from selfalign.generate.settings import GenerateSettings

    tmp = Path(tempfile.mkdtemp(prefix="selfalign-bench-"))
    prompts = tmp / "prompts.jsonl"
    sample_prompts(prompts, args.prompts)
    settings = GenerateSettings(principles=[args.constitution], prompts=[str(prompts)],
                                out=str(tmp / "out"), model=args.model, rounds=args.rounds,
                                max_tokens=args.max_tokens, temperature=args.temperature,
                                shard_size=args.shard_size)
    plan = plan_run(settings, resolve_model)
    started = time.perf_counter()
    extra = dict(option.split("=", 1) for option in args.engine_option)
    extra = {k: json.loads(v) for k, v in extra.items()}
    engine = VLLMEngine(plan.model, seed=0, max_num_seqs=args.max_num_seqs,
                        cpu_kv_cache_gib=args.kv_cache_gib, record_load=True, extra=extra)
    report = {"model": plan.model, "engine_start_s": round(time.perf_counter() - started, 1),
              "design": args.design, "prompts": args.prompts, "rounds": args.rounds,
              "max_tokens": args.max_tokens, "shard_size": args.shard_size}
    engine.record = []
    began = time.monotonic()
    started, cpu = time.perf_counter(), time.process_time()
    if args.design == "flow":
        run = Run(plan, {"started": time.time()}, {}, log=lambda message: None)
        await LocalExecutor.run_on(run, [engine])
    else:
        await run_barrier(plan, engine)
    seconds = time.perf_counter() - started
    recorded = engine.record
    engine.record = None
    load = engine.load
    report["engine_counters_run"] = {"preempted": load.preempted,
                                     "prefilled_tokens": load.prompt_tokens}
    tokens = sum(n for _, _, n in recorded)
    report["run"] = {"requests": len(recorded), "output_tokens": tokens,
                     "seconds": round(seconds, 1),
                     "output_tokens_per_s": round(tokens / seconds, 1),
                     "client_cpu_s": round(time.process_time() - cpu, 1),
                     **fullness(engine.load.samples, engine.max_num_seqs, began)}
    if args.replay:
        engine.load.samples.clear()
        load.preempted = load.prompt_tokens = 0
        began, cpu = time.monotonic(), time.process_time()
        replay_tokens, replay_seconds = await engine.replay(recorded)
        report["replay"] = {"requests": len(recorded), "output_tokens": replay_tokens,
                            "seconds": round(replay_seconds, 1),
                            "output_tokens_per_s": round(replay_tokens / replay_seconds, 1),
                            "client_cpu_s": round(time.process_time() - cpu, 1),
                            **fullness(engine.load.samples, engine.max_num_seqs, began)}
        report["engine_counters_replay"] = {"preempted": load.preempted,
                                            "prefilled_tokens": load.prompt_tokens}
        report["run_vs_replay"] = round(report["run"]["output_tokens_per_s"]
                                        / report["replay"]["output_tokens_per_s"], 3)
    engine.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--shard-size", type=int, default=512)
    parser.add_argument("--max-num-seqs", type=int, default=None,
                        help="vLLM's batch limit [default: vLLM's offline default, 256 on CPU]")
    parser.add_argument("--kv-cache-gib", type=float, default=6.0,
                        help="CPU KV cache: room for a full batch of few-shot conversations")
    parser.add_argument("--design", choices=["flow", "barrier"], default="flow")
    parser.add_argument("--no-replay", dest="replay", action="store_false")
    parser.add_argument("--engine-option", action="append", default=[], metavar="KEY=JSON",
                        help="Extra vLLM engine argument, e.g. enable_chunked_prefill=true")
    parser.add_argument("--constitution", default=str(REPO / "constitution/3h.yaml"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", default=None, help="Also write the figures to this file.")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
