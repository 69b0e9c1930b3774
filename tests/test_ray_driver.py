"""The Ray driver's fault handling, driven without a cluster: a stand-in for `ray` (calls that
answer when the test says, on a clock the test moves) and a real run (`run.Run`: its ledger,
its shard files), so what reaches `Run.record` and what is given up is the run's own doing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from selfalign.generate.plan import plan_run
from selfalign.generate.run import Run
from selfalign.generate.settings import GenerateSettings
from selfalign.store.ledger import read_ledger
from selfalign.store.shard_files import recorded_file

from run_helpers import write_constitution, write_prompts

ray = pytest.importorskip("ray")
driver = pytest.importorskip("selfalign.generate.ray.driver")

PROMPTS = [{"id": f"n{i}", "prompt": f"Tell me fact number {i}."} for i in range(12)]
SHARDS = list(range(6))  # of two prompts; each worker holds two at a time
KINDS = ("prefs", "sft", "traces")


class Clock:
    """The driver's clock: it moves only when nothing is ready to answer."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


class Call:
    def __init__(self, ready_at: float, answer):
        self.ready_at, self.answer = ready_at, answer


class StandInRay:
    """`ray` as the driver uses it. A call's answer is a value, an exception to raise, or a
    function of nothing giving either (run when the call is answered, so that a shard's files
    are written when its attempt finishes)."""

    def __init__(self, clock: Clock):
        self.clock, self.killed = clock, []

    def wait(self, calls, num_returns=1, timeout=None):
        ready = [c for c in calls if c.ready_at <= self.clock.now]
        if ready:
            first = min(ready, key=lambda c: c.ready_at)
            return [first], [c for c in calls if c is not first]
        upcoming = [c.ready_at for c in calls]
        self.clock.now = min(upcoming + [self.clock.now + (timeout or 1.0)])
        return [], list(calls)

    def get(self, call, *args, **kwargs):
        answer = call.answer() if callable(call.answer) else call.answer
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def kill(self, handle, no_restart=True):
        self.killed.append(handle.index)


class Method:
    def __init__(self, handle, name):
        self.handle, self.name = handle, name

    def remote(self, *args):
        return self.handle.behave(self.name, *args)


class StandInWorker:
    """An actor handle; `shard_answer(worker, shard, attempt, now)` says when a shard call
    answers and with what (`attempt`: 1 for the shard's first call on any worker)."""

    def __init__(self, index: int, clock: Clock, run: Run, shard_answer, tried: list[int]):
        self.index, self.clock, self.run, self.shard_answer = index, clock, run, shard_answer
        self.attempts: list[int] = []  # the shards sent to this worker
        self.tried = tried  # the shards sent to any worker

    def __getattr__(self, name):
        return Method(self, name)

    def behave(self, name, *args):
        now = self.clock.now
        if name == "start":
            return Call(now, {"node": f"node-{self.index}", "pid": 1, "error": None,
                              "capacity": 1, "engine": {"name": "stand-in"}})
        if name == "run_shard":
            shard = args[0]
            self.attempts.append(shard.index)
            self.tried.append(shard.index)
            return self.shard_answer(self, shard, self.tried.count(shard.index), now)
        return Call(now, "node" if name == "ping" else {})

    def writes(self, shard):
        """The shard's files, written by this attempt when it answers; its ledger entry."""
        return lambda: self.run.write_shard(shard, [], 0.1)


class Placement:
    cpus, gpus, node_id = 1.0, 0.0, None


class Cluster:
    placements = [Placement(), Placement()]
    address = "stand-in"

    def describe_free(self) -> str:
        return "nothing"


@pytest.fixture
def make_run(tmp_path):
    manifest = write_constitution(tmp_path / "c")
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS)

    def make(**settings) -> Run:
        plan = plan_run(GenerateSettings(principles=[str(manifest)], prompts=[str(prompts)],
                                         out=str(tmp_path / "out"), shard_size=2, **settings),
                        resolve_model=lambda model: "scripted-model")
        return Run(plan, {"started": time.time()}, {}, lines.append)

    lines: list[str] = []
    make.lines = lines
    return make


def drive(run: Run, shard_answer, monkeypatch) -> tuple[list[StandInWorker], StandInRay]:
    clock = Clock()
    stand_in = StandInRay(clock)
    monkeypatch.setattr(driver, "ray", stand_in)
    monkeypatch.setattr(driver, "time", clock)
    tried: list[int] = []
    workers = [StandInWorker(i, clock, run, shard_answer, tried) for i in range(2)]
    driver._Driver(run, [driver._Worker(i, w) for i, w in enumerate(workers)], Cluster()).drive()
    return workers, stand_in


def test_a_late_answer_to_a_recorded_shard_is_refused_by_the_run_and_its_files_removed(
        make_run, monkeypatch):
    """Worker 0 holds shards 0 and 1; Ray reports shard 1's call as "may or may not have run"
    (ActorUnavailableError), so the worker counts as lost and both shards are sent again. Shard
    0's first call was running all along and answers at 5 s, after its second attempt was
    recorded: it reaches the run, which refuses it and removes its files."""
    run = make_run()
    late: dict = {}

    def answer(worker, shard, attempt, now):
        if (shard.index, attempt) == (0, 1):
            def written():
                late["entry"] = worker.writes(shard)()
                return late["entry"]
            return Call(now + 5, written)
        if (shard.index, attempt) == (1, 1):
            return Call(now + 1, ray.exceptions.ActorUnavailableError("node unreachable", None))
        return Call(now + (6 if shard.index == 2 else 1), worker.writes(shard))

    workers, _ = drive(run, answer, monkeypatch)
    ledger = read_ledger(run.plan.out)
    assert sorted(ledger) == SHARDS and "entry" in late  # the late answer came in
    assert ledger[0]["attempt"] != late["entry"]["attempt"]  # the resent attempt's
    for kind in KINDS:
        assert not recorded_file(run.plan.out, late["entry"], kind).exists()
        assert recorded_file(run.plan.out, ledger[0], kind).exists()
    assert sum(line.startswith("shard 0:") for line in make_run.lines) == 1


def test_a_late_answer_before_the_resent_one_is_recorded_and_the_resent_one_refused(
        make_run, monkeypatch):
    """Shard 0 passes its deadline (10 s); its first attempt answers at 11.5 s, before the
    attempt sent again: the late one is recorded, the resent one refused with its files."""
    run = make_run(shard_timeout=10.0)
    entries: list[dict] = []

    def answer(worker, shard, attempt, now):
        def written():
            entries.append(worker.writes(shard)())
            return entries[-1]
        if shard.index == 0:
            return Call(now + (11.5 if attempt == 1 else 5), written)
        return Call(now + 1, written)

    _, stand_in = drive(run, answer, monkeypatch)
    assert stand_in.killed == [0]  # the worker that overran, restarted by Ray
    ledger = read_ledger(run.plan.out)
    first, resent = [e for e in entries if e["shard"] == 0]
    assert sorted(ledger) == SHARDS and ledger[0]["attempt"] == first["attempt"]
    for kind in KINDS:
        assert not recorded_file(run.plan.out, resent, kind).exists()
    assert [line.endswith("(worker 0, a late answer)") for line in make_run.lines
            if line.startswith("shard 0:")] == [True]


def test_shard_attempts_2_gives_up_after_two_attempts(make_run, monkeypatch):
    run = make_run(shard_attempts=2)

    def answer(worker, shard, attempt, now):
        if shard.index == 1:  # takes its worker down every time
            return Call(now + 1, ray.exceptions.ActorUnavailableError("node lost", None))
        return Call(now + 1, worker.writes(shard))

    workers, _ = drive(run, answer, monkeypatch)
    assert sum(w.attempts.count(1) for w in workers) == 2
    assert [line for line in make_run.lines if "giving up" in line] == [
        "shard 1: giving up after 2 attempt(s); its 2 prompt(s) go to rejects.parquet as "
        "shard_failed"]
    assert sorted(read_ledger(run.plan.out)) == SHARDS


def test_a_deadline_blames_the_shard_that_overran_not_every_shard_its_worker_held(
        make_run, monkeypatch):
    """Worker 0 holds shard 0 (sent at 0 s, overruns) and shard 4 (sent at 1 s, within its
    time at the 11 s check); with one attempt allowed, a blamed shard is given up at once:
    shard 0 only, and shard 4 is sent again."""
    run = make_run(shard_timeout=10.0, shard_attempts=1)

    def answer(worker, shard, attempt, now):
        if shard.index == 0:
            return Call(now + 1000, worker.writes(shard))
        if shard.index == 4 and attempt == 1:
            return Call(now + 50, worker.writes(shard))
        return Call(now + 1, worker.writes(shard))

    workers, _ = drive(run, answer, monkeypatch)
    assert workers[0].attempts[:3] == [0, 1, 4]
    assert [line for line in make_run.lines if "giving up" in line] == [
        "shard 0: giving up after 1 attempt(s); its 2 prompt(s) go to rejects.parquet as "
        "shard_failed"]
    assert sum(w.attempts.count(4) for w in workers) == 2  # resent, not given up
    assert sorted(read_ledger(run.plan.out)) == SHARDS
