"""Helpers for the Ray tests: engine factories Ray workers can import, and runs on a cluster.

Ray workers import these by name, so the clusters the tests start put tests/ on their
PYTHONPATH (`WORKER_ENV`). The CLI cannot reach them: it always passes `make_engine`.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq

from selfalign.engine.base import EngineFailure
from selfalign.generate.ray.cluster import connect
from selfalign.generate.plan import plan_run
from selfalign.generate.run import run_generate
from selfalign.generate.settings import GenerateSettings

from scripted_engine import ScriptedEngine, asks

TESTS = Path(__file__).resolve().parent
WORKER_ENV = {"env_vars": {"PYTHONPATH": f"{TESTS.parent}{os.pathsep}{TESTS}"}}
OBJECT_STORE_BYTES = 200 * 1024 ** 2
KINDS = ("prefs", "sft", "traces")


def scripted(settings, model, delay: float = 0.0, capacity: int = 64,
             kill_marker: str | None = None, kill_at: tuple[str, str] | None = None,
             vary: bool = False):
    """The scripted engine, optionally slow, optionally SIGKILLing its own process once: at the
    request `kill_at` = (stage, prompt text), if `kill_marker` does not exist yet."""
    engine = ScriptedEngine(capacity=capacity, record_calls=False, vary_by_seed=vary,
                            delay=(lambda request: delay) if delay else None)
    if kill_marker is not None:
        def die_once(request):
            if asks(request, *kill_at) and not os.path.exists(kill_marker):
                Path(kill_marker).write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)

        engine.on_call = die_once
    return engine


def cannot_start(settings, model):
    raise EngineFailure(f"model {model} cannot be loaded here")


def run_ray(manifest: Path, prompts: Path, out: Path, make_engine, workers: int | None = None,
            log=lambda message: None, **overrides) -> dict:
    """A whole run through the Ray driver on the cluster this process is connected to; workers
    of one CPU each unless told otherwise, so that two fit the tests' two-CPU cluster."""
    overrides.setdefault("ray_cpus_per_worker", 1.0)
    settings = GenerateSettings(principles=[str(manifest)], prompts=[str(prompts)], out=str(out),
                                ray="local", ray_workers=workers, **overrides)
    cluster = connect(settings, log=log)
    plan = plan_run(settings, resolve_model=lambda model: "scripted-model")
    return run_generate(plan, make_engine, log=log, cluster=cluster)


def wait_until_idle(cpus: float = 2, timeout: float = 20) -> None:
    """Workers of an earlier test are killed asynchronously; their CPUs come back soon after.
    Workers are sized on free resources, so a test that counts them starts from an idle cluster."""
    import ray

    deadline = time.monotonic() + timeout
    while ray.available_resources().get("CPU", 0) < cpus and time.monotonic() < deadline:
        time.sleep(0.2)


def output_rows(out: Path) -> dict[str, list[dict]]:
    """Every row of every output folder, and the rejects, in file order."""
    rows = {kind: [row for f in sorted((out / kind).glob("*.parquet"))
                   for row in pq.read_table(f).to_pylist()] for kind in KINDS}
    rows["rejects"] = pq.read_table(out / "rejects.parquet").to_pylist()
    return rows


def stalls_once(settings, model, marker: str, text: str, seconds: float,
                mark: str | None = None):
    """The scripted engine; the first answer to `text` in the whole cluster (the first to
    create `marker`) takes `seconds`, and with `mark` its text carries the mark, so that the
    attempt it belongs to writes other bytes than any other attempt at its shard."""
    engine = ScriptedEngine(record_calls=False)
    stalled: list = []  # the request objects themselves: ids are reused once they are freed

    def delay(request):
        if asks(request, "answer", text):
            try:
                with open(marker, "x"):
                    stalled.append(request)  # this request alone, not its seed
                    return seconds
            except FileExistsError:
                pass
        return 0.0

    engine.delay = delay
    if mark is not None:
        answer = engine._answer

        def marked(request):
            completion = answer(request)
            if any(request is s for s in stalled):
                completion = replace(completion, text=f"{completion.text} {mark}")
            return completion

        engine._answer = marked
    return engine


def kills_on(settings, model, text: str, count_file: str):
    """The scripted engine, whose process dies (SIGKILL) at every answer to `text`: a shard that
    takes its worker down each time it is tried. Each death is counted in `count_file`."""
    engine = ScriptedEngine(record_calls=False)

    def die(request):
        if asks(request, "answer", text):
            with open(count_file, "a") as handle:
                handle.write("x")
            os.kill(os.getpid(), signal.SIGKILL)

    engine.on_call = die
    return engine


def breaks_connection(settings, model, text: str):
    """The scripted engine, raising ConnectionError (an OSError) at an answer to `text`."""
    engine = ScriptedEngine(record_calls=False)

    def refuse(request):
        if asks(request, "answer", text):
            raise ConnectionError("the model server hung up")

    engine.on_call = refuse
    return engine
