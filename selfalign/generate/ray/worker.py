"""One worker of a `generate --ray` run, without Ray: an engine and the flow, over given shards.

driver.py wraps this class in a Ray actor; tests can drive it directly. It builds the engine
a single-machine run builds (`engines.build_engines`, so every engine flag keeps its meaning),
runs the same `ShardScheduler` over each shard it is sent, writes the shard's files into `--out`
with `write_shard` (each file atomically: temporary name, then rename), and returns only the
ledger entry. Rows never travel back through Ray, and the driver alone appends the ledger.

Several shards may run at once on one worker: they share its engine, which batches whatever is
in flight, so there is no drain at a shard boundary.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket

from selfalign.errors import UserError
from selfalign.generate.engines import (EngineFactory, build_engines, describe_engines,
                                        open_prompt_count, tracked)
from selfalign.generate.flow import ShardScheduler
from selfalign.generate.plan import Plan, make_recipe
from selfalign.generate.progress import RunProgress
from selfalign.generate.shards import Shard, write_shard
from selfalign.store.layout import MANIFEST, shard_dir


class ShardWorker:
    """Owns one engine (and the judge's, if another model judges) for the worker's lifetime."""

    def __init__(self, plan: Plan, make_engine: EngineFactory, run_started: float) -> None:
        self.plan, self.make_engine, self.run_started = plan, make_engine, run_started
        self.node = socket.gethostname()
        self.engines: list = []
        self.start_error: str | None = None
        self.recipe = make_recipe(plan)
        # The same counters a single-machine run shows; the driver sums them over workers.
        self.progress = RunProgress(None, stream=io.StringIO(), interval=float("inf"))
        self._starting = asyncio.Lock()

    def ping(self) -> str:
        """Answers once the actor exists on a node: placement, apart from the engine's start."""
        return self.node

    async def start(self) -> dict:
        """Check `--out` and build the engine, once per process (again after a restart).

        A failure is returned, not raised: a worker that can never start (a bad model path, a
        folder this node does not see) must stop the run once, not be restarted by Ray forever.
        """
        async with self._starting:
            if not self.engines and self.start_error is None:
                try:
                    self._check_output_folder()
                    self.engines = build_engines(self.plan, self.make_engine)
                except Exception as err:  # noqa: BLE001 - reported to the driver, which stops
                    self.start_error = str(err) if isinstance(err, UserError) else (
                        f"{type(err).__name__}: {err}")
        described = describe_engines(self.engines) if self.engines else {}
        capacity = self.engines[0].capacity if self.engines else 0
        return {"node": self.node, "pid": os.getpid(), "error": self.start_error,
                "capacity": capacity, **described}

    def _check_output_folder(self) -> None:
        """This node must see the driver's `--out` (the same folder, not a local namesake)."""
        out = self.plan.out
        try:
            started = json.loads((out / MANIFEST).read_text(encoding="utf-8"))["started"]
        except (OSError, ValueError, KeyError):
            started = None
        if started != self.run_started:
            raise UserError(f"node {self.node} does not see this run's output folder {out}: "
                            f"--out must be a folder every node sees (a shared file system), "
                            f"at the same path on each")
        probe = shard_dir(out) / f".write-probe-{self.node}-{os.getpid()}"
        try:
            probe.write_text("ok")
            probe.unlink()
        except OSError as err:
            raise UserError(f"node {self.node} cannot write to output folder {out}: "
                            f"{err.strerror}") from None

    async def run_shard(self, shard: Shard) -> dict:
        """Run one shard through the flow, write its files, return its ledger entry."""
        if not self.engines:
            await self.start()
            if self.start_error:
                raise RuntimeError(self.start_error)
        engine, judge = self.engines[0], self.engines[-1]
        entries: list[dict] = []

        def write(done: Shard, samples: list, seconds: float) -> None:
            entries.append(write_shard(shard_dir(self.plan.out), done, samples, self.plan.model,
                                       seconds, ranked=self.plan.settings.feedback == "rank"))

        open_prompts = open_prompt_count(engine.capacity, self.plan.settings.samples)
        scheduler = ShardScheduler(self.recipe, tracked(engine, self.progress), write,
                                   open_prompts, on_prompt_done=self.progress.prompt_done,
                                   judge=tracked(judge, self.progress))
        await scheduler.run([shard])
        return entries[0]

    def snapshot(self) -> dict:
        """Live counts for the run's progress line: requests in flight and done per stage."""
        return {"in_flight": dict(self.progress.in_flight), "done": dict(self.progress.done)}

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
        self.engines = []
