"""The driver of `generate --ray`: hands shards to engine-owning Ray actors, keeps the ledger.

Why Ray Core actors, not Ray Data LLM: `ray.data.llm` runs one LLM pass per processor, and each
chained processor gets its own pool of vLLM replicas. Answer, critique and revision could then
not share one engine and its prefix cache, critique rounds would have to be unrolled into fixed
stages, and one conversation's turns would land on different replicas; it also has no documented
CPU support, and waits ten minutes for a GPU stage it cannot place. Here an actor owns one engine
(built as a single-machine run builds it) and runs the existing per-conversation flow over whole
shards, so per-request seeds, the judge's log-probabilities and the prefix cache stay in one
engine, and the ledger stays the only record of what is done. This is how SkyRL's engine actors
and distilabel's RayPipeline feed engines too.

The loop: the driver reads the prompt stream lazily and keeps each live worker a few shards
ahead (two, or more when shards are smaller than the engine's batch), so driver memory and
Ray's object store stay flat however long the input. It takes whichever call finishes first
(`ray.wait`), appends that shard's ledger entry, and hands out the next. A worker that dies is
restarted by Ray (`max_restarts`, which rebuilds its engine), and the shards it held go to live
workers at once: the driver resends work itself instead of letting Ray retry calls, because a
shard whose ledger entry is written is never run again. A shard rerun because its first run was
never recorded writes the same rows (per-request seeds). The final assembly is the
single-machine run's (`runner.finish_run`).

Only this module, cluster.py and the actor's code import Ray; a single-machine run never does.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter, deque
from typing import Iterator

import ray
from ray.exceptions import ActorDiedError, RayActorError, RayError, RayTaskError

from selfalign.engine.base import EngineFailure
from selfalign.errors import UserError
from selfalign.generate.ray.cluster import Cluster, worker_runtime_env
from selfalign.generate.ray.worker import ShardWorker
from selfalign.generate.run_state import append_ledger, writing
from selfalign.generate.runner import (EngineFactory, Plan, finish_run, has_prompt_to_generate,
                                       open_prompt_count, prompt_total, read_shards, run_here,
                                       shard_line, until_first_prompt)
from selfalign.generate.shards import Shard
from selfalign.generate.writers import busy_seconds
from selfalign.quiet import configure_output

MAX_RESTARTS = 3  # per worker; each restart loads the model again
LOST_WAIT_S = 900.0  # with no worker live, how long to wait for a lost one to come back
RESTART_BACKOFF_S = 1.0  # between asking a restarting worker whether it is up again
PROGRESS_S = 10.0
CLOSE_TIMEOUT_S = 30.0


@ray.remote
class WorkerActor(ShardWorker):
    """The Ray shell around ShardWorker; resources and restarts are set per run."""

    def __init__(self, *args) -> None:
        configure_output()  # as the command does: quiet unless the run is verbose (runtime env)
        super().__init__(*args)


class _Worker:
    """The driver's view of one actor: its state, the shards it holds, what it has done."""

    def __init__(self, index: int, handle) -> None:
        self.index, self.handle = index, handle
        self.state = "starting"  # starting → live → lost → (starting → live) | dead
        self.in_flight: dict = {}  # call → shard
        self.nodes: list[str] = []
        self.starts = self.losses = 0
        self.lost_since: float | None = None
        self.start_again_at: float | None = None
        self.entries: list[dict] = []
        self.snapshot: dict = {}
        self.snapshot_pending = False

    def summary(self) -> dict:
        return {"worker": self.index, "nodes": self.nodes, "shards": len(self.entries),
                "prompts": sum(e["prompts"] for e in self.entries),
                "output_tokens": sum(e["output_tokens"] for e in self.entries),
                "engine_seconds": round(busy_seconds(self.entries), 3),
                "restarts": max(0, self.starts - 1), "lost": self.losses}


def run_on_ray(cluster: Cluster, plan: Plan, make_engine: EngineFactory, manifest: dict,
               done: dict, log) -> dict:
    """Every unfinished shard on the cluster's workers, then the single-machine final assembly."""
    stream = read_shards(plan.settings)
    peeked = until_first_prompt(stream, done)
    if not has_prompt_to_generate(peeked, done):
        # Every row left was rejected: the single-machine run records those shards and fails
        # as an empty run would, and no worker (so no model) starts anywhere.
        log("nothing for a model to generate: no Ray worker is started")
        return asyncio.run(run_here(plan, make_engine, manifest, done, log))
    actor = WorkerActor.options(num_cpus=cluster.cpus_per_worker,
                                num_gpus=cluster.gpus_per_worker,
                                max_restarts=MAX_RESTARTS, max_task_retries=0,
                                runtime_env=worker_runtime_env())
    workers = [_Worker(i, actor.remote(plan, make_engine, manifest["started"]))
               for i in range(cluster.workers)]
    driver = _Driver(plan, workers, done, log, itertools.chain(peeked, stream))
    try:
        driver.run()
    finally:
        _stop(workers)
    manifest.update(driver.engines)
    manifest["ray"] = {"address": cluster.address, "workers": [w.summary() for w in workers]}
    return finish_run(plan, manifest)


class _Driver:
    def __init__(self, plan: Plan, workers: list[_Worker], done: dict, log,
                 stream: Iterator[Shard]) -> None:
        self.plan, self.workers, self.done, self.log = plan, workers, done, log
        self.stream = stream
        self.stream_ended = False
        self.resend: deque[Shard] = deque()
        self.calls: dict = {}  # call → (kind, worker)
        self.shards_per_worker = 2
        self.engines: dict = {}
        self.progress = _ClusterProgress(plan, done, log)

    def run(self) -> None:
        for worker in self.workers:
            self._start(worker)
        while True:
            self._hand_out()
            if self.stream_ended and not self.resend and not any(
                    w.in_flight for w in self.workers):
                self.progress.show(self.workers, force=True)
                return
            self._check_someone_can_work()
            finished, _ = ray.wait(list(self.calls), num_returns=1, timeout=RESTART_BACKOFF_S)
            for call in finished:
                self._settle(call)
            self._restart_lost()
            self._ask_for_snapshots()
            self.progress.show(self.workers)

    # -- handing out shards ------------------------------------------------------------------

    def _hand_out(self) -> None:
        live = [w for w in self.workers if w.state == "live"]
        while live:
            worker = min(live, key=lambda w: len(w.in_flight))
            if len(worker.in_flight) >= self.shards_per_worker:
                return
            shard = self._next_shard()
            if shard is None:
                return
            call = worker.handle.run_shard.remote(shard)
            worker.in_flight[call] = shard
            self.calls[call] = ("shard", worker)

    def _next_shard(self) -> Shard | None:
        while self.resend:
            shard = self.resend.popleft()
            if shard.index not in self.done:
                return shard
        while not self.stream_ended:
            shard = next(self.stream, None)
            if shard is None:
                self.stream_ended = True
            elif shard.index not in self.done:
                return shard
        return None

    # -- what comes back ---------------------------------------------------------------------

    def _settle(self, call) -> None:
        kind, worker = self.calls.pop(call)
        if kind == "start":
            self._started(worker, call)
        elif kind == "shard":
            self._shard_done(worker, call)
        else:
            worker.snapshot_pending = False
            try:
                worker.snapshot = ray.get(call)
            except RayError:
                pass  # a lost worker: the shard calls say so

    def _started(self, worker: _Worker, call) -> None:
        try:
            info = ray.get(call)
        except ActorDiedError as err:
            return self._dead(worker, err)
        except RayActorError:
            worker.start_again_at = time.monotonic() + RESTART_BACKOFF_S
            return
        if info["error"]:
            raise EngineFailure(f"Ray worker {worker.index} on node {info['node']} could not "
                                f"start: {info['error']}")
        worker.state, worker.lost_since = "live", None
        worker.starts += 1
        worker.nodes.append(info["node"])
        if worker.starts > 1:
            self.log(f"Ray worker {worker.index} is back on node {info['node']}")
        if not self.engines:
            self.engines = {k: v for k, v in info.items() if k in ("engine", "judge_engine")}
        # A few shards ahead, or more when shards are smaller than the engine's batch: as many
        # open prompts as a single-machine run keeps, so the engine never runs dry.
        wanted = open_prompt_count(info["capacity"], self.plan.settings.samples)
        self.shards_per_worker = max(self.shards_per_worker,
                                     math.ceil(wanted / self.plan.settings.shard_size) + 1)

    def _shard_done(self, worker: _Worker, call) -> None:
        shard = worker.in_flight.pop(call, None)
        try:
            entry = ray.get(call)
        except RayActorError as err:
            if shard is not None:  # the first of its calls to fail: the worker is lost
                worker.in_flight[call] = shard
                self._lost(worker, err)
            return
        except RayTaskError as err:  # the flow failed on the worker, as it would here
            if isinstance(err.cause, (EngineFailure, UserError)):
                raise type(err.cause)(f"Ray worker {worker.index}: {err.cause}") from None
            if isinstance(err.cause, OSError):  # the shard's files could not be written
                with writing(self.plan.out, f"a shard on Ray worker {worker.index}"):
                    raise err.cause from None
            raise
        if entry["shard"] in self.done:
            return  # a lost worker's late answer for a shard that was sent again
        with writing(self.plan.out, f"the ledger entry of shard {entry['shard']}"):
            append_ledger(self.plan.out, entry)
        self.done[entry["shard"]] = entry
        worker.entries.append(entry)
        self.progress.shard_done(entry)
        self.log(shard_line(entry) + f" (worker {worker.index})")

    # -- faults ------------------------------------------------------------------------------

    def _lost(self, worker: _Worker, err: RayError) -> None:
        """Its shards go to live workers now; Ray restarts it, and it is asked when it is up."""
        shards = [s for s in worker.in_flight.values() if s.index not in self.done]
        self.resend.extend(sorted(shards, key=lambda s: s.index))
        for call in worker.in_flight:
            self.calls.pop(call, None)
        worker.in_flight.clear()
        worker.losses += 1
        worker.state, worker.lost_since = "lost", time.monotonic()
        worker.start_again_at = time.monotonic()
        node = worker.nodes[-1] if worker.nodes else "?"
        self.log(f"Ray worker {worker.index} on node {node} was lost "
                 f"({type(err).__name__}); {len(shards)} shard(s) go to other workers")

    def _dead(self, worker: _Worker, err: RayError) -> None:
        worker.state = "dead"
        self.log(f"Ray worker {worker.index} is gone for good ({type(err).__name__})")

    def _restart_lost(self) -> None:
        now = time.monotonic()
        for worker in self.workers:
            if worker.start_again_at is not None and now >= worker.start_again_at:
                worker.start_again_at = None
                self._start(worker)

    def _start(self, worker: _Worker) -> None:
        self.calls[worker.handle.start.remote()] = ("start", worker)

    def _check_someone_can_work(self) -> None:
        states = Counter(w.state for w in self.workers)
        if states["live"] or states["starting"]:
            return
        lost_for = min((time.monotonic() - w.lost_since for w in self.workers
                        if w.state == "lost"), default=None)
        if lost_for is None or lost_for > LOST_WAIT_S:
            raise EngineFailure(f"no Ray worker is left to run the remaining shards "
                                f"({states['dead']} gone for good, {states['lost']} lost and not "
                                f"back after {LOST_WAIT_S:.0f}s)")

    def _ask_for_snapshots(self) -> None:
        if not self.progress.due():
            return
        for worker in self.workers:
            if worker.state == "live" and not worker.snapshot_pending:
                worker.snapshot_pending = True
                self.calls[worker.handle.snapshot.remote()] = ("snapshot", worker)


def _stop(workers: list[_Worker]) -> None:
    """Close the engines politely (vLLM's engine process goes with them), then end the actors."""
    live = [w.handle.close.remote() for w in workers if w.state == "live"]
    try:
        ray.wait(live, num_returns=len(live), timeout=CLOSE_TIMEOUT_S)
    except RayError:
        pass
    for worker in workers:
        ray.kill(worker.handle, no_restart=True)


class _ClusterProgress:
    """One status line for the whole run: prompts and pairs from the ledger, tok/s over this
    session, requests in flight and done per stage summed over the workers' snapshots."""

    def __init__(self, plan: Plan, done: dict, log) -> None:
        self.log, self.total = log, prompt_total(plan.settings)
        self.prompts = sum(e["prompts"] for e in done.values())
        self.pairs = sum(sum(e["pairs"].values()) for e in done.values())
        self.output_tokens = 0
        self.started = self.last_shown = time.monotonic()

    def shard_done(self, entry: dict) -> None:
        self.prompts += entry["prompts"]
        self.pairs += sum(entry["pairs"].values())
        self.output_tokens += entry["output_tokens"]

    def due(self) -> bool:
        return time.monotonic() - self.last_shown >= PROGRESS_S

    def show(self, workers: list[_Worker], force: bool = False) -> None:
        if not (force or self.due()):
            return
        now = time.monotonic()
        in_flight, done = Counter(), Counter()
        for worker in workers:
            if worker.state == "live":
                in_flight.update(worker.snapshot.get("in_flight", {}))
                done.update(worker.snapshot.get("done", {}))
        stages = ", ".join(f"{s} {in_flight[s]}/{done[s]}" for s in done) or "-"
        of = f"/{self.total}" if self.total is not None else ""
        live = sum(w.state == "live" for w in workers)
        rate = self.output_tokens / max(now - self.started, 1e-9)
        self.log(f"[{now - self.started:7.0f}s] prompts {self.prompts}{of}, pairs {self.pairs}, "
                 f"{rate:.0f} tok/s, workers {live}/{len(workers)} live, "
                 f"in flight/done: {stages}")
        self.last_shown = now
