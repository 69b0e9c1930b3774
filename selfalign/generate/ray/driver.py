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
never recorded writes the same rows (per-request seeds); an attempt given up on that answers
after all is handed to the run like any other, which refuses it (and removes its files) when
its shard was recorded meanwhile. The driver drives the run through the
same interface as the local executor (`run.Run`: its shards, `record`); the run assembles the
final files.

Only this package imports Ray; a single-machine run never does.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from dataclasses import replace

import ray
from ray.exceptions import ActorDiedError, RayActorError, RayError, RayTaskError

from selfalign.engine.base import EngineFailure
from selfalign.errors import UserError
from selfalign.generate.engines import EngineFactory, open_prompt_count
from selfalign.generate.ray.causes import ray_cause
from selfalign.generate.ray.progress import ClusterProgress
from selfalign.generate.ray.worker import ShardWorker
from selfalign.generate.shards import Shard
from selfalign.generate.stops import SignalFlag
from selfalign.quiet import configure_output, inherited_environment, verbose_requested
from selfalign.store.assemble import busy_seconds
from selfalign.store.ledger import writing

MAX_RESTARTS = 3  # per worker; each restart loads the model again
LOST_WAIT_S = 900.0  # with no worker live, how long to wait for a lost one to come back
RESTART_BACKOFF_S = 1.0  # between asking a restarting worker whether it is up again
CLOSE_TIMEOUT_S = 10.0  # engines closing politely at the end of a run
LOG_FORWARD_S = 2.0  # with --verbose, how long the workers' last lines get to reach the driver
# A shard's deadline when --shard-timeout is not given: this many times the slowest shard seen
# so far, and never less than the floor (the first shards of a run have nothing to go by).
SHARD_TIMEOUT_FACTOR = 5.0
SHARD_TIMEOUT_FLOOR_S = 300.0


@ray.remote
class WorkerActor(ShardWorker):
    """The Ray shell around ShardWorker; resources and restarts are set per run."""

    def __init__(self, *args) -> None:
        configure_output()  # as the command does: quiet unless the run is verbose (runtime env)
        super().__init__(*args)


def worker_runtime_env() -> dict:
    """What each worker process starts with: the run's quiet (or verbose) settings, which a
    process started by a raylet does not inherit from this one."""
    return {"env_vars": inherited_environment()}


class _Worker:
    """The driver's view of one actor: its state, the shards it holds, what it has done."""

    def __init__(self, index: int, handle) -> None:
        self.index, self.handle = index, handle
        self.state = "starting"  # starting → live → lost → (starting → live) | dead
        self.placed = False  # the actor exists on a node (its ping came back)
        self.in_flight: dict = {}  # call → (shard, when it was sent)
        self.nodes: list[str] = []
        self.starts = self.losses = 0
        self.lost_since: float | None = None
        self.start_again_at: float | None = None
        # What it did, small: per recorded shard its time span only, never the entry.
        self.shards = self.prompts = self.output_tokens = 0
        self.spans: list[dict] = []
        self.snapshot: dict = {}
        self.snapshot_pending = False

    @property
    def node(self) -> str:
        return self.nodes[-1] if self.nodes else "?"

    def recorded(self, entry: dict) -> None:
        self.shards += 1
        self.prompts += entry["prompts"]
        self.output_tokens += entry["output_tokens"]
        self.spans.append({"finished_at": entry["finished_at"], "seconds": entry["seconds"]})

    def summary(self) -> dict:
        return {"worker": self.index, "nodes": self.nodes, "shards": self.shards,
                "prompts": self.prompts, "output_tokens": self.output_tokens,
                "engine_seconds": round(busy_seconds(self.spans), 3),
                "restarts": max(0, self.starts - 1), "lost": self.losses}


class RayExecutor:
    """Runs a run's unfinished shards on the cluster's workers; returns the manifest's engine
    entries and its `ray` section. `cluster`: a connected `ray.cluster.Cluster`."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster

    def run(self, run, make_engine: EngineFactory) -> dict:
        placements = self.cluster.placements
        workers = []
        for index, placement in enumerate(placements):
            plan = _plan_for_worker(run.plan, index, len(placements))
            options = dict(num_cpus=placement.cpus, num_gpus=placement.gpus,
                           max_restarts=MAX_RESTARTS, max_task_retries=0,
                           runtime_env=worker_runtime_env())
            if placement.node_id:
                from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

                options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                    placement.node_id, soft=False)
            handle = WorkerActor.options(**options).remote(plan, make_engine,
                                                           run.manifest["started"])
            workers.append(_Worker(index, handle))
        driver = _Driver(run, workers, self.cluster)
        interrupted = False
        try:
            with driver.flag.installed():
                driver.drive()
        except BaseException as err:
            interrupted = True
            if isinstance(err, (ConnectionError, RayError)):
                raise EngineFailure(_ray_failure(err)) from None
            raise
        finally:
            # A stop (a signal, an error) abandons shards in flight: they are not recorded, and
            # resume redoes them. Only a finished run waits for the engines to close politely.
            _stop(workers, polite=not interrupted)
        return {**driver.engines,
                "ray": {"address": self.cluster.address,
                        "workers": [w.summary() for w in workers]}}


def _plan_for_worker(plan, index: int, workers: int):
    """Servers are shared: each worker gets its part of --max-concurrency, so that all the
    workers together keep what the flag says in flight."""
    settings = plan.settings
    if settings.backend != "openai":
        return plan
    share = settings.max_concurrency // workers + (index < settings.max_concurrency % workers)
    return replace(plan, settings=replace(settings, max_concurrency=max(1, share)))


def _ray_failure(err: BaseException) -> str:
    if isinstance(err, ConnectionError):
        return (f"lost the connection to the Ray cluster ({ray_cause(err)}); check that its "
                f"head is up and reachable")
    return f"Ray failed: {ray_cause(err)}"


class _Driver:
    def __init__(self, run, workers: list[_Worker], cluster) -> None:
        self.run, self.workers, self.cluster = run, workers, cluster
        self.plan, self.done, self.log = run.plan, run.done, run.log
        settings = run.plan.settings
        self.shard_timeout, self.attempts = settings.shard_timeout, settings.shard_attempts
        self.start_timeout = settings.ray_start_timeout
        self.stream = run.shards()
        self.stream_ended = False
        self.resend: deque[Shard] = deque()
        self.failures: dict[int, list[str]] = {}  # shard → why each failed attempt failed
        self.slowest = 0.0  # the longest a recorded shard took, sent to answered
        self.calls: dict = {}  # call → (kind, worker)
        self.shards_per_worker = 2
        self.engines: dict = {}
        self.flag = SignalFlag()
        self.progress = ClusterProgress(run.prompt_total, run.done, run.log)
        self.started = time.monotonic()

    def drive(self) -> None:
        for worker in self.workers:
            self.calls[worker.handle.ping.remote()] = ("ping", worker)
            self._start(worker)
        while True:
            self.flag.raise_if_set()
            self._hand_out()
            if self.stream_ended and not self.resend and not any(
                    w.in_flight for w in self.workers):
                self.progress.show(self.workers, force=True)
                return
            self._check_placed()
            self._check_someone_can_work()
            finished, _ = ray.wait(list(self.calls), num_returns=1, timeout=RESTART_BACKOFF_S)
            for call in finished:
                self._settle(call)
            self._check_deadlines()
            self._restart_lost()
            self._ask_for_snapshots()
            self.progress.show(self.workers)

    # -- handing out shards ------------------------------------------------------------------

    def _hand_out(self) -> None:
        while True:
            # A shard that failed before goes alone to an idle worker, and that worker gets
            # nothing else meanwhile: if it kills its worker again, no other shard is blamed.
            live = [w for w in self.workers if w.state == "live" and not self._isolating(w)]
            if not live:
                return
            worker = min(live, key=lambda w: len(w.in_flight))
            if len(worker.in_flight) >= self.shards_per_worker:
                return
            shard = self._next_shard(alone=not worker.in_flight)
            if shard is None:
                return
            call = worker.handle.run_shard.remote(shard)
            worker.in_flight[call] = (shard, time.monotonic())
            self.calls[call] = ("shard", worker)

    def _isolating(self, worker: _Worker) -> bool:
        return any(shard.index in self.failures for shard, _ in worker.in_flight.values())

    def _next_shard(self, alone: bool) -> Shard | None:
        for _ in range(len(self.resend)):
            shard = self.resend.popleft()
            if shard.index in self.done:
                continue
            if shard.index in self.failures and not alone:
                self.resend.append(shard)  # waits for an idle worker
                continue
            return shard
        if not self.stream_ended:
            shard = next(self.stream, None)  # the run yields only shards not yet recorded
            if shard is not None:
                return shard
            self.stream_ended = True
        return None

    # -- what comes back ---------------------------------------------------------------------

    def _settle(self, call) -> None:
        kind, worker = self.calls.pop(call)
        if kind == "start":
            self._started(worker, call)
        elif kind == "shard":
            self._shard_done(worker, call)
        elif kind == "late":
            self._late_answer(worker, call)
        elif kind == "ping":
            try:
                ray.get(call)
                worker.placed = True
            except RayActorError as err:
                self._dead(worker, err)
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
        worker.state, worker.lost_since, worker.placed = "live", None, True
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
        shard, sent = worker.in_flight.pop(call, (None, None))
        try:
            entry = ray.get(call)
        except RayActorError as err:
            if shard is not None:  # the first of its calls to fail: the worker is lost
                worker.in_flight[call] = (shard, sent)
                self._lost(worker, ray_cause(err))
            return
        except RayTaskError as err:  # the flow failed on the worker, as it would here
            cause = err.cause
            if isinstance(cause, (EngineFailure, UserError)):
                raise type(cause)(f"Ray worker {worker.index}: {cause}") from None
            if isinstance(cause, (ConnectionError, TimeoutError)):  # OSErrors, not the disk's
                raise EngineFailure(f"Ray worker {worker.index} on node {worker.node}: "
                                    f"{type(cause).__name__}: {cause}") from None
            if isinstance(cause, OSError):  # the shard's files could not be written
                with writing(self.plan.out, f"a shard on Ray worker {worker.index}"):
                    raise cause from None
            raise
        if shard is None:
            return  # cannot be: a call given up on is settled as a late answer
        if not self.run.record(entry, where=f" (worker {worker.index})"):
            return  # a resent attempt, after a late answer was recorded: refused, files removed
        self.slowest = max(self.slowest, time.monotonic() - sent)
        worker.recorded(entry)
        self.progress.shard_done(entry)

    def _late_answer(self, worker: _Worker, call) -> None:
        """A call given up on (its worker was lost, or it passed its deadline) that answered
        after all: its entry goes to the run like any other, which refuses it and removes its
        files when the shard was recorded meanwhile, and records it otherwise."""
        try:
            entry = ray.get(call)
        except RayError:
            return  # the usual end of a given-up call: its worker was killed or lost
        if self.run.record(entry, where=f" (worker {worker.index}, a late answer)"):
            worker.recorded(entry)
            self.progress.shard_done(entry)

    # -- faults ------------------------------------------------------------------------------

    def _lost(self, worker: _Worker, cause: str, culprit: int | None = None) -> None:
        """Its shards go to live workers now; Ray restarts it, and it is asked when it is up.
        Each shard it held has a failed attempt against it (the `culprit` alone, when known)."""
        shards = sorted((s for s, _ in worker.in_flight.values() if s.index not in self.done),
                        key=lambda s: s.index)
        for call in worker.in_flight:
            if call in self.calls:  # still listened to: a late answer is settled, not lost
                self.calls[call] = ("late", worker)
        worker.in_flight.clear()
        worker.losses += 1
        worker.state, worker.lost_since = "lost", time.monotonic()
        worker.start_again_at = time.monotonic()
        named = ", ".join(str(s.index) for s in shards) or "none"
        self.log(f"Ray worker {worker.index} on node {worker.node} was lost while running "
                 f"shard(s) {named}: {cause}")
        for shard in shards:
            if culprit is None or shard.index == culprit:
                self.failures.setdefault(shard.index, []).append(cause)
            if len(self.failures.get(shard.index, [])) >= self.attempts:
                self._give_up(shard)
            else:
                self.resend.append(shard)

    def _give_up(self, shard: Shard) -> None:
        causes = self.failures[shard.index]
        cause = f"{len(causes)} attempt(s) failed, the last: {causes[-1]}"
        self.log(f"shard {shard.index}: giving up after {len(causes)} attempt(s); its "
                 f"{len(shard.records)} prompt(s) go to rejects.parquet as shard_failed")
        self.run.give_up(shard, cause)

    def _check_deadlines(self) -> None:
        deadline = self.shard_timeout or max(SHARD_TIMEOUT_FLOOR_S,
                                             SHARD_TIMEOUT_FACTOR * self.slowest)
        now = time.monotonic()
        for worker in self.workers:
            late = [s for s, sent in worker.in_flight.values() if now - sent > deadline]
            if late and worker.state == "live":
                cause = f"no answer within {deadline:.0f}s (--shard-timeout)"
                self._lost(worker, cause, culprit=late[0].index)
                ray.kill(worker.handle, no_restart=False)  # Ray starts it again

    def _dead(self, worker: _Worker, err: RayError) -> None:
        worker.state = "dead"
        self.log(f"Ray worker {worker.index} on node {worker.node} is gone for good: "
                 f"{ray_cause(err)}")

    def _restart_lost(self) -> None:
        now = time.monotonic()
        for worker in self.workers:
            if worker.start_again_at is not None and now >= worker.start_again_at:
                worker.start_again_at = None
                self._start(worker)

    def _start(self, worker: _Worker) -> None:
        self.calls[worker.handle.start.remote()] = ("start", worker)

    def _check_placed(self) -> None:
        """Ray waits without end for resources no node has free: give placement a deadline."""
        if time.monotonic() - self.started < self.start_timeout:
            return
        waiting = [w for w in self.workers if not w.placed and w.state == "starting"]
        if not waiting or any(w.state == "live" for w in self.workers):
            for worker in waiting:  # the run goes on with the workers it has
                worker.state = "dead"
                self.log(f"Ray worker {worker.index} was not placed on any node within "
                         f"{self.start_timeout:.0f}s; going on without it")
            return
        asked = sorted({(p.cpus, p.gpus) for p in self.cluster.placements})
        raise EngineFailure(
            f"no Ray worker was placed on a node within {self.start_timeout:.0f}s "
            f"(--ray-start-timeout): each asks "
            + " or ".join(f"{c:g} CPU(s) and {g:g} GPU(s)" for c, g in asked)
            + f"; the cluster has {self.cluster.describe_free()}. Other jobs may hold them: "
              f"wait, or lower --ray-cpus-per-worker / --ray-gpus-per-worker")

    def _check_someone_can_work(self) -> None:
        states = Counter(w.state for w in self.workers)
        if states["live"] or states["starting"]:
            return
        lost_for = min((time.monotonic() - w.lost_since for w in self.workers
                        if w.state == "lost"), default=None)
        if lost_for is None or lost_for > LOST_WAIT_S:
            left = sorted({s.index for s in self.resend} - set(self.done))
            raise EngineFailure(f"no Ray worker is left to run the remaining shards "
                                f"({states['dead']} gone for good, {states['lost']} lost and not "
                                f"back after {LOST_WAIT_S:.0f}s); shards not done: "
                                f"{_some(left)}. The lines above say why each worker went")

    def _ask_for_snapshots(self) -> None:
        if not self.progress.due():
            return
        for worker in self.workers:
            if worker.state == "live" and not worker.snapshot_pending:
                worker.snapshot_pending = True
                self.calls[worker.handle.snapshot.remote()] = ("snapshot", worker)


def _some(indexes: list[int]) -> str:
    shown = ", ".join(map(str, indexes[:10]))
    return shown + (f" and {len(indexes) - 10} more" if len(indexes) > 10 else "") or "none"


def _stop(workers: list[_Worker], polite: bool) -> None:
    """End the actors; after a finished run, first let the engines close (vLLM's engine
    process goes with them), briefly."""
    if polite:
        live = [w.handle.close.remote() for w in workers if w.state == "live"]
        try:
            ray.wait(live, num_returns=len(live), timeout=CLOSE_TIMEOUT_S)
        except RayError:
            pass
        if verbose_requested():  # Ray forwards workers' lines with a lag: let the last arrive
            time.sleep(LOG_FORWARD_S)
    for worker in workers:
        try:
            ray.kill(worker.handle, no_restart=True)
        except RayError:
            pass
