"""Pipeline throughput against one plain `LLM.chat` call, and the prefix-cache hit rate.

On the embedded SmolLM2-135M-Instruct (or --model), one vLLM engine serves both:
  1. the selfalign pipeline (generate → critique → revise, one batched call per stage) over N
     prompts, with the constitution's few-shot prefix first in every critique/revise request;
  2. one plain `LLM.chat` call over the same number of requests (3N single-turn chats), each
     forced to write the pipeline's mean output length, so both produce the same token count.
The plain call is the ceiling: short prompts, one call, no sequential stages.

    .venv/bin/python benchmarks/bench_throughput.py --prompts 48 --max-tokens 64
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_prompts(count: int) -> list:
    from selfalign.prompts.sources import read_prompts
    from selfalign.records import PromptRecord

    rows = [r for r in read_prompts([str(REPO / "selfalign/data/sample_prompts.jsonl")])
            if isinstance(r, PromptRecord)]
    return [rows[i % len(rows)] for i in range(count)]  # repeat the 60 samples if asked for more


def run_pipeline(engine, constitution, records, max_tokens: int) -> dict:
    from selfalign.engine.base import SamplingSettings
    from selfalign.generate.shards import Pipeline, Shard

    pipeline = Pipeline(engine, constitution, SamplingSettings(max_tokens, 0.7, 0.95), seed=0,
                        rounds=1, samples=1)
    stats = []
    original_chat = engine.chat

    def chat_and_record(*args, **kwargs):
        result = original_chat(*args, **kwargs)
        stats.append((kwargs.get("desc") or args[2], engine.last_stats))
        return result

    engine.chat = chat_and_record
    started = time.perf_counter()
    pipeline.run(Shard(0, records))
    seconds = time.perf_counter() - started
    engine.chat = original_chat
    out_tokens = sum(s.output_tokens for _, s in stats)
    prompt_tokens = sum(s.prompt_tokens for _, s in stats)
    cached = sum(s.cached_prompt_tokens or 0 for _, s in stats)
    return {
        "requests": sum(s.requests for _, s in stats), "output_tokens": out_tokens,
        "seconds": round(seconds, 2), "output_tokens_per_s": round(out_tokens / seconds, 1),
        "prompt_tokens": prompt_tokens, "cached_prompt_tokens": cached,
        "prefix_cache_hit_rate": round(cached / prompt_tokens, 3) if prompt_tokens else 0.0,
        "stages": {desc: {"requests": s.requests, "prompt_tokens": s.prompt_tokens,
                          "cached_prompt_tokens": s.cached_prompt_tokens,
                          "output_tokens": s.output_tokens, "seconds": round(s.seconds, 2),
                          "output_tokens_per_s": round(s.output_tokens_per_s, 1)}
                   for desc, s in stats},
    }


def run_plain(engine, records, requests: int, tokens_each: int) -> dict:
    from vllm import SamplingParams

    chats = [[{"role": "user", "content": records[i % len(records)].prompt}]
             for i in range(requests)]
    params = SamplingParams(max_tokens=tokens_each, min_tokens=tokens_each, ignore_eos=True,
                            temperature=0.7, top_p=0.95)
    started = time.perf_counter()
    outputs = engine.llm.chat(chats, params, use_tqdm=True)
    seconds = time.perf_counter() - started
    out_tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    return {"requests": requests, "output_tokens": out_tokens, "seconds": round(seconds, 2),
            "output_tokens_per_s": round(out_tokens / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--constitution", default=str(REPO / "constitution/3h.yaml"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", default=None, help="Also write the figures to this file.")
    args = parser.parse_args()

    from selfalign.constitution import load_constitution
    from selfalign.engine import resolve_model
    from selfalign.engine.vllm_engine import VLLMEngine

    constitution = load_constitution([args.constitution])
    records = load_prompts(args.prompts)
    started = time.perf_counter()
    engine = VLLMEngine(resolve_model(args.model), seed=0, max_model_len=4096)
    start_s = time.perf_counter() - started
    pipeline = run_pipeline(engine, constitution, records, args.max_tokens)
    tokens_each = max(1, round(pipeline["output_tokens"] / pipeline["requests"]))
    plain = run_plain(engine, records, pipeline["requests"], tokens_each)
    engine.close()
    report = {"model": engine.model, "engine_start_s": round(start_s, 1),
              "prompts": args.prompts, "max_tokens": args.max_tokens,
              "pipeline": pipeline, "plain_chat": plain,
              "pipeline_vs_plain": round(pipeline["output_tokens_per_s"]
                                         / plain["output_tokens_per_s"], 3)}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
