"""What checks cost a run: the same work with checks and without, on one vLLM engine.

One engine (the embedded SmolLM2-135M-Instruct, or --model) runs the product's flow (answer,
critique, revise; shards, ledger and shard files) over the same prompts under two copies of
one constitution that differ only in checks: with them (the principles' `brief` check and two
manifest checks, run on every first answer and revision) and without. `--check-retries 0`, so
both variants send exactly the same requests with the same seeds; the benchmark checks that
they produced the same output tokens. A warm-up run comes first (it fills the prefix cache),
then the two variants alternate, so load on a shared machine falls on both alike.

`--when` adds a third variant: the same checks, each with `when: {behavior: [comply, refuse]}`,
on prompts all marked `comply` (`--behavior comply` in every variant), so every check still
applies and gives the same verdicts: what it adds is the cost of deciding that a check applies.
It also times `check_text` alone on one sample, with and without `when:`, many times over.

    .venv/bin/python benchmarks/bench_checks_run.py --prompts 24 --max-tokens 64 --repeats 3
    .venv/bin/python benchmarks/bench_checks_run.py --prompts 12 --repeats 2 --when
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MANIFEST = """principles: [../helpful/*.yaml, brief.yaml]
rounds: 1
{checks}"""
MANIFEST_CHECKS = """checks:
  - kind: regex
    pattern: (?i)as an ai (language )?model
    must: not_match
  - kind: length_constraints:number_words
    relation: less than
    num_words: 300
"""
WHEN = "    when: {behavior: [comply, refuse]}\n"  # matches every prompt of the benchmark


def write_constitutions(tmp: Path) -> dict[str, Path]:
    """Two manifests over the same principles; only `checks:` differ (brief.yaml keeps its
    name and weight without its check, so the draws are the same)."""
    helpful = tmp / "helpful"
    helpful.mkdir()
    for path in (REPO / "principles" / "helpful").glob("*.yaml"):
        (helpful / path.name).write_text(path.read_text())
    brief = (REPO / "principles" / "checked" / "brief.yaml").read_text()
    manifests = {}
    when_checks = MANIFEST_CHECKS.replace("\n  - kind: length", "\n" + WHEN.rstrip("\n")
                                          + "\n  - kind: length") + WHEN
    for variant, checks in (("with", MANIFEST_CHECKS), ("without", ""), ("when", when_checks)):
        folder = tmp / variant
        folder.mkdir()
        text = {"with": brief, "when": brief + WHEN,
                "without": brief.split("\nchecks:")[0] + "\n"}[variant]
        (folder / "brief.yaml").write_text(text)
        (folder / "c.yaml").write_text(MANIFEST.format(checks=checks))
        manifests[variant] = folder / "c.yaml"
    return manifests


def sample_prompts(path: Path, count: int) -> None:
    lines = (REPO / "selfalign" / "data" / "sample_prompts.jsonl").read_text().splitlines()
    path.write_text("\n".join((lines * (count // len(lines) + 1))[:count]) + "\n")


class CheckTimer:
    """Time spent in the flow's check_text (the checks themselves), and the verdicts given."""

    def __init__(self) -> None:
        self.seconds, self.verdicts = 0.0, 0

    def install(self) -> None:
        from selfalign.generate import flow

        real = flow.check_text

        def timed(sample, checks, *args):
            started = time.perf_counter()
            try:
                return real(sample, checks, *args)
            finally:
                self.seconds += time.perf_counter() - started
                self.verdicts += len(checks)

        flow.check_text = timed


async def one_run(engine, manifest: Path, prompts: Path, out: Path, args) -> dict:
    from selfalign.engine import resolve_model
    from selfalign.generate.local import LocalExecutor
    from selfalign.generate.plan import plan_run
    from selfalign.generate.run import Run
    from selfalign.generate.settings import GenerateSettings
    from selfalign.store.ledger import read_ledger

    settings = GenerateSettings(principles=[str(manifest)], prompts=[str(prompts)], out=str(out),
                                model=args.model, max_tokens=args.max_tokens,
                                temperature=args.temperature, shard_size=args.shard_size,
                                check_retries=0, behavior="comply")
    plan = plan_run(settings, resolve_model)
    started = time.perf_counter()
    await LocalExecutor.run_on(Run(plan, {"started": time.time()}, {}, log=lambda m: None),
                               [engine])
    seconds = time.perf_counter() - started
    ledger = read_ledger(out).values()
    return {"seconds": seconds, "output_tokens": sum(e["output_tokens"] for e in ledger)}


async def main_async(args) -> dict:
    from selfalign.engine import resolve_model
    from selfalign.engine.vllm_engine import VLLMEngine

    tmp = Path(tempfile.mkdtemp(prefix="selfalign-bench-checks-"))
    manifests = write_constitutions(tmp)
    prompts = tmp / "prompts.jsonl"
    sample_prompts(prompts, args.prompts)
    model = resolve_model(args.model)
    started = time.perf_counter()
    engine = VLLMEngine(model, seed=0, cpu_kv_cache_gib=args.kv_cache_gib)
    report = {"model": model, "engine_start_s": round(time.perf_counter() - started, 1),
              "prompts": args.prompts, "max_tokens": args.max_tokens, "runs": []}
    timer = CheckTimer()
    timer.install()
    await one_run(engine, manifests["without"], prompts, tmp / "warm-up", args)
    order = ["with", "without", *(["when"] if args.when else [])] * args.repeats
    for index, variant in enumerate(order):
        before_s, before_v = timer.seconds, timer.verdicts
        result = await one_run(engine, manifests[variant], prompts, tmp / f"{index}-{variant}",
                               args)
        report["runs"].append({"variant": variant, "seconds": round(result["seconds"], 2),
                               "output_tokens": result["output_tokens"],
                               "check_seconds": round(timer.seconds - before_s, 4),
                               "verdicts": timer.verdicts - before_v})
        print("run:", json.dumps(report["runs"][-1]), file=sys.stderr, flush=True)
    engine.close()
    if args.when:
        report["check_text_alone"] = time_check_text(manifests)
    return summarize(report)


def time_check_text(manifests: dict[str, Path], calls: int = 20000) -> dict:
    """µs per `check_text` call on one sample's text, with and without `when:` (no engine)."""
    from selfalign.checks import CONSTITUTION, check_ids
    from selfalign.constitution import load_constitution
    from selfalign.records import PromptRecord
    from selfalign.stages.check import NamedCheck, check_text
    from selfalign.stages.sample import Sample

    record = PromptRecord(id="p", prompt="How do I bake bread?", metadata={"behavior": "comply"})
    text = "Mix flour, water, salt and yeast; knead, let it rise, then bake it for 40 minutes."
    result = {}
    for variant in ("with", "when"):
        constitution = load_constitution([manifests[variant]])
        owned = [(CONSTITUTION, constitution.checks),
                 *((p.name, p.checks) for p in constitution.principles)]
        named = [NamedCheck(i, c) for owner, checks in owned
                 for i, c in zip(check_ids(owner, checks), checks)]
        best = float("inf")
        for _ in range(5):  # the fastest of five: the least disturbed by other work
            sample = Sample(record, 0)
            started = time.perf_counter()
            for _ in range(calls):
                check_text(sample, named, text, 1, 0)
            best = min(best, time.perf_counter() - started)
        result[variant] = {"checks": len(named), "verdicts": len(sample.verdicts) // calls,
                           "us_per_call": round(1e6 * best / calls, 2)}
    result["when_extra_us_per_call"] = round(result["when"]["us_per_call"]
                                             - result["with"]["us_per_call"], 2)
    return result


def summarize(report: dict) -> dict:
    runs = report["runs"]
    by = {v: [r for r in runs if r["variant"] == v] for v in ("with", "without", "when")}
    by = {v: group for v, group in by.items() if group}
    tokens = {r["output_tokens"] for r in runs}
    report["same_work"] = len(tokens) == 1  # same seeds, same requests: same tokens
    for variant, group in by.items():
        report[f"{variant}_seconds_median"] = round(statistics.median(r["seconds"] for r in group), 2)
    report["ratio_of_medians"] = round(report["with_seconds_median"]
                                       / report["without_seconds_median"], 3)
    pairs = zip(by["with"], by["without"])
    report["ratios_per_pair"] = [round(w["seconds"] / o["seconds"], 3) for w, o in pairs]
    checked = by["with"]
    report["check_seconds_per_run"] = round(statistics.mean(r["check_seconds"] for r in checked), 4)
    report["check_share_of_run"] = round(sum(r["check_seconds"] for r in checked)
                                         / sum(r["seconds"] for r in checked), 5)
    verdicts = sum(r["verdicts"] for r in checked)
    report["microseconds_per_verdict"] = round(
        1e6 * sum(r["check_seconds"] for r in checked) / max(verdicts, 1), 1)
    if "when" in by:
        when = by["when"]
        report["when_check_seconds_per_run"] = round(
            statistics.mean(r["check_seconds"] for r in when), 4)
        report["when_check_share_of_run"] = round(sum(r["check_seconds"] for r in when)
                                                  / sum(r["seconds"] for r in when), 5)
        report["when_microseconds_per_verdict"] = round(
            1e6 * sum(r["check_seconds"] for r in when)
            / max(sum(r["verdicts"] for r in when), 1), 1)
        report["when_ratio_to_with"] = round(report["when_seconds_median"]
                                             / report["with_seconds_median"], 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--shard-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant")
    parser.add_argument("--kv-cache-gib", type=float, default=2.0)
    parser.add_argument("--model", default=None)
    parser.add_argument("--when", action="store_true",
                        help="add the variant whose checks carry `when:` (see the docstring)")
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
