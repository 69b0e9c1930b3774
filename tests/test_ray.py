"""`generate --ray` on a local Ray cluster (2 CPUs, small object store, no dashboard), shared by
the tests of this module: rows equal to a single-process run, a worker killed, the driver killed,
and what bad input and faults get."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from selfalign.errors import UserError
from selfalign.generate.ray.worker import ShardWorker
from selfalign.store.ledger import read_ledger
from selfalign.generate.plan import plan_run
from selfalign.generate.settings import GenerateSettings

from ray_helpers import (OBJECT_STORE_BYTES, TESTS, WORKER_ENV, cannot_start, output_rows,
                         run_ray, scripted, wait_until_idle)
from run_helpers import run_scripted, write_constitution, write_prompts

ray = pytest.importorskip("ray")

ROWS = [
    {"id": "q1", "prompt": "How do I sneak snacks into a cinema?", "user_id": "u1"},
    "this line is not json",
    {"id": "q2", "prompt": "Why did Einstein fail maths?", "user_id": "u2"},
    {"prompt": "   "},
    {"id": "q3", "prompt": "Keep {{ x }} {0} %s </s> verbatim", "split": "test"},
    {"id": "q4", "prompt": "TOO-LONG prompt that the engine cannot fit"},
    *({"id": f"n{i}", "prompt": f"Tell me fact number {i}."} for i in range(14)),
]
PROMPTS = 18  # usable rows above: q1, q2, q3, q4 and n0..n13
SHARD_SIZE = 2


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
             runtime_env=WORKER_ENV)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    return write_constitution(root / "c"), write_prompts(root / "p.jsonl", ROWS)


@pytest.fixture(scope="module")
def single_process(inputs, tmp_path_factory):
    """The reference: the same work without Ray."""
    out = tmp_path_factory.mktemp("single") / "out"
    manifest, _ = run_scripted(*inputs, out, shard_size=SHARD_SIZE)
    return manifest, output_rows(out)


def counts_without_time(manifest: dict) -> dict:
    return {k: v for k, v in manifest["counts"].items() if k != "engine_seconds"}


def test_two_workers_write_exactly_the_rows_of_a_single_process_run(cluster, inputs,
                                                                     single_process, tmp_path):
    out = tmp_path / "out"
    manifest = run_ray(*inputs, out, partial(scripted, delay=0.01, capacity=1), workers=2,
                       shard_size=SHARD_SIZE)
    reference_manifest, reference = single_process
    assert len(reference["traces"]) == PROMPTS and len(reference["prefs"]) == PROMPTS - 1
    assert output_rows(out) == reference
    assert counts_without_time(manifest) == counts_without_time(reference_manifest)
    workers = manifest["ray"]["workers"]
    assert [w["worker"] for w in workers] == [0, 1]
    assert all(w["shards"] >= 1 and w["restarts"] == 0 for w in workers)  # both took work
    assert sum(w["shards"] for w in workers) == len(read_ledger(out)) == PROMPTS // SHARD_SIZE
    assert sum(w["prompts"] for w in workers) == PROMPTS
    assert manifest["engine"] == {"backend": "scripted", "model": "scripted-stand-in"}


def test_a_killed_worker_is_restarted_and_its_shards_run_elsewhere(cluster, inputs,
                                                                   single_process, tmp_path):
    marker = tmp_path / "killed"
    # At the run's first request, and slow enough that the restarted worker (about 2 s to come
    # back here) takes shards again before the run ends.
    factory = partial(scripted, delay=0.4, capacity=1, kill_marker=str(marker),
                      kill_at=("answer", "How do I sneak snacks"))
    out = tmp_path / "out"
    lines: list[str] = []
    manifest = run_ray(*inputs, out, factory, workers=2, shard_size=SHARD_SIZE,
                       log=lines.append)
    assert marker.exists()  # a worker process did die mid-run
    assert output_rows(out) == single_process[1]  # every prompt once, as if uninterrupted
    workers = manifest["ray"]["workers"]
    assert sorted(w["restarts"] for w in workers) == [0, 1], lines
    assert sorted(w["lost"] for w in workers) == [0, 1]
    assert sum(w["shards"] for w in workers) == PROMPTS // SHARD_SIZE
    assert any("was lost" in line for line in lines) and any("is back" in line for line in lines)


DRIVER = """
import sys
from functools import partial
from ray_helpers import WORKER_ENV, scripted
from selfalign.generate.ray.cluster import connect
from selfalign.generate.plan import plan_run
from selfalign.generate.run import run_generate
from selfalign.generate.settings import GenerateSettings

address, manifest, prompts, out = sys.argv[1:]
settings = GenerateSettings(principles=[manifest], prompts=[prompts], out=out, ray=address,
                            ray_workers=1, shard_size=1)
cluster = connect(settings, runtime_env=WORKER_ENV)
plan = plan_run(settings, resolve_model=lambda model: "scripted-model")
run_generate(plan, partial(scripted, delay=0.1, capacity=1), cluster=cluster)
"""


def test_after_the_driver_is_killed_resume_without_ray_finishes(cluster, inputs, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{TESTS.parent}{os.pathsep}{TESTS}"}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, cluster, *map(str, inputs),
                               str(out)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while len(read_ledger(out)) < 3 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    log = driver.communicate()[0]
    finished = len(read_ledger(out))
    assert 3 <= finished < PROMPTS, log[-3000:]  # killed mid-run, some shards recorded
    manifest, _ = run_scripted(*inputs, out, shard_size=1, resume=True)
    assert manifest["status"] == "complete"
    reference = tmp_path / "reference"
    run_scripted(*inputs, reference, shard_size=1)
    assert output_rows(out) == output_rows(reference)


# -- bad input and faults -------------------------------------------------------------------

def test_a_worker_whose_engine_cannot_start_stops_the_run_once(cluster, inputs, tmp_path):
    started = time.monotonic()
    with pytest.raises(UserError) as err:
        run_ray(*inputs, tmp_path / "out", cannot_start, workers=2)
    message = str(err.value)
    assert "could not start" in message and "cannot be loaded here" in message
    assert "--resume" in message
    assert time.monotonic() - started < 60  # no endless restarts


def test_a_cluster_too_small_for_one_worker_is_refused_in_seconds(cluster, inputs, tmp_path):
    wait_until_idle()
    started = time.monotonic()
    with pytest.raises(UserError) as err:
        run_ray(*inputs, tmp_path / "out", scripted, ray_cpus_per_worker=4)
    assert "cannot hold one worker" in str(err.value)
    assert "4 CPU(s)" in str(err.value) and "2 CPU(s)" in str(err.value)
    with pytest.raises(UserError, match="holds 2 worker"):
        run_ray(*inputs, tmp_path / "out", scripted, workers=3)
    assert time.monotonic() - started < 10
    assert not (tmp_path / "out").exists()  # refused before --out was touched


def test_workers_are_counted_per_node_from_tensor_parallel_size():
    from selfalign.generate.ray.cluster import gpus_per_worker, workers_that_fit

    gpu_nodes = [{"CPU": 32, "GPU": 2}, {"CPU": 32, "GPU": 2}, {"CPU": 8, "GPU": 8}]
    tp4 = GenerateSettings(tensor_parallel_size=4)
    assert gpus_per_worker(tp4, cluster_gpus=12) == 4.0
    assert workers_that_fit(gpu_nodes[:2], cpus=1, gpus=4) == 0  # 2 + 2 GPUs are not 4 on one
    assert workers_that_fit(gpu_nodes, cpus=1, gpus=4) == 2
    assert workers_that_fit(gpu_nodes, cpus=1, gpus=1) == 12
    assert workers_that_fit(gpu_nodes, cpus=4, gpus=1) == 2 + 2 + 2  # the last node: 8 CPUs
    assert gpus_per_worker(tp4, cluster_gpus=0) == 0.0  # a CPU cluster
    assert gpus_per_worker(GenerateSettings(backend="openai", base_url=["http://h:8000/v1"]),
                           cluster_gpus=8) == 0.0  # servers do the GPU work
    assert workers_that_fit([{"CPU": 2}], cpus=0.5, gpus=0) == 4

def test_a_node_that_does_not_see_the_output_folder_is_named(inputs, tmp_path):
    settings = GenerateSettings(principles=[str(inputs[0])], prompts=[str(inputs[1])],
                                out=str(tmp_path / "out"))
    plan = plan_run(settings, resolve_model=lambda model: "scripted-model")
    (plan.out / "manifest.json").write_text(json.dumps({"started": 1.0}))
    worker = ShardWorker(plan, scripted, run_started=2.0)  # another run's folder of that name
    info = asyncio.run(worker.start())
    assert f"node {info['node']} does not see this run's output folder" in info["error"]
    assert info["capacity"] == 0


def test_an_address_that_does_not_answer_fails_before_anything_is_read(inputs, tmp_path):
    out = tmp_path / "out"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "selfalign.cli", "generate", "--ray", "127.0.0.1:9",
         "--principles", str(inputs[0]), "--prompts", str(inputs[1]), "--out", str(out)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "--ray 127.0.0.1:9: nothing answers at 127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert time.monotonic() - started < 60


def test_ray_settings_come_from_flags_or_run_yaml_and_not_from_a_resumed_manifest(tmp_path):
    from selfalign.generate.commands import generate, settings_from_cli

    def settings(*args: str) -> GenerateSettings:
        ctx = generate.make_context("generate", ["--out", str(tmp_path / "o"), *args])
        flags = dict(ctx.params)
        return settings_from_cli(ctx, flags.pop("config_path"), flags)

    assert settings().ray is None
    assert settings("--ray").ray == "local"
    assert (settings("--ray", "auto", "--ray-workers", "3").ray, settings(
        "--ray", "auto", "--ray-workers", "3").ray_workers) == ("auto", 3)
    config = tmp_path / "run.yaml"
    config.write_text("ray: ray://head:10001\nray-workers: 4\nray-gpus-per-worker: 2\n"
                      "ray_cpus_per_worker: 8\n")
    from_file = settings("--config", str(config))
    assert (from_file.ray, from_file.ray_workers, from_file.ray_gpus_per_worker,
            from_file.ray_cpus_per_worker) == ("ray://head:10001", 4, 2.0, 8.0)
    config.write_text("ray: true\n")
    assert settings("--config", str(config)).ray == "local"
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "manifest.json").write_text(json.dumps(
        {"settings": {"seed": 5, "ray": "auto", "ray_workers": 2}}))
    resumed = settings("--resume")
    assert (resumed.seed, resumed.ray, resumed.ray_workers) == (5, None, None)
    assert settings("--resume", "--ray").ray == "local"
    with pytest.raises(UserError, match="ray_workers/ray_gpus_per_worker: .* add --ray"):
        settings("--ray-workers", "2")
    with pytest.raises(UserError, match="ray_cpus_per_worker: must be > 0, got 0"):
        settings("--ray", "--ray-cpus-per-worker", "0")


# -- the real engine --------------------------------------------------------------------------

@pytest.mark.vllm
def test_a_vllm_worker_gives_the_prefs_of_a_single_machine_run(tiny_model_dir, tmp_path):
    """Sampled at temperature 1: per-request seeds make rows independent of where they ran.
    Both runs go through the CLI; the Ray one starts (and stops) its own local cluster."""
    prompts = write_prompts(tmp_path / "p.jsonl", [
        {"id": "a", "prompt": "How can I get back at a coworker?"},
        {"id": "b", "prompt": "Which vitamin cures the common cold?"},
        {"id": "c", "prompt": "Write a limerick about a cat."}])
    env = {**os.environ, "PYTHONPATH": str(TESTS.parent)}

    def generate(out: Path, *extra: str) -> Path:
        command = [sys.executable, "-m", "selfalign.cli", "generate",
                   "--principles", str(TESTS.parent / "constitution" / "harmless.yaml"),
                   "--prompts", str(prompts), "--out", str(out), "--model", str(tiny_model_dir),
                   "--max-tokens", "12", "--temperature", "1", "--seed", "7",
                   "--max-model-len", "1024", "--dtype", "float32", "--cpu-kv-cache-gib", "0.5",
                   "--shard-size", "2", *extra]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        return out

    single = output_rows(generate(tmp_path / "single"))
    on_ray = generate(tmp_path / "ray", "--ray", "--ray-workers", "1")
    manifest = json.loads((on_ray / "manifest.json").read_text())
    assert manifest["ray"]["workers"][0]["shards"] == 2
    assert manifest["engine"]["backend"] == "vllm"
    assert len(single["prefs"]) + len(single["rejects"]) >= 3
    assert output_rows(on_ray)["prefs"] == single["prefs"]
    # Prefix-cache hits depend on what else was in the engine at the time; the texts do not.
    without_cache = lambda rows: [{k: v for k, v in r.items() if k != "cached_prompt_tokens"}
                                  for r in rows]  # noqa: E731
    assert without_cache(output_rows(on_ray)["traces"]) == without_cache(single["traces"])


def test_an_all_rejected_input_starts_no_worker_and_fails_as_an_empty_run(cluster, inputs,
                                                                         tmp_path):
    prompts = write_prompts(tmp_path / "bad.jsonl", ["not json", {"prompt": "  "}])
    made, lines = [], []
    with pytest.raises(UserError) as failed:
        run_ray(inputs[0], prompts, tmp_path / "out", lambda s, m: made.append(m), workers=2,
                log=lines.append)
    assert made == []  # no engine factory ran, here or on a worker
    assert "nothing for a model to generate: no Ray worker is started" in lines
    assert f"no usable prompt in --prompts {prompts}: 2 row(s) read" in str(failed.value)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "empty" and "ray" not in manifest
