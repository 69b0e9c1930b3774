"""Checks behave the same whatever runs the model: through the openai backend (a local stand-in
server) and on Ray workers, a run with checks gives what a single process gives."""

from __future__ import annotations

from functools import partial

import pyarrow.parquet as pq
import pytest

from openai_stand_in import StandInServer, default_reply
from run_helpers import run_scripted, write_prompts
from selfalign.engine import make_engine, model_resolver
from selfalign.generate.plan import plan_run
from selfalign.generate.run import run_generate
from selfalign.generate.settings import GenerateSettings

# The stand-in server's revision lacks "Your reply"; asked again with the check's message, it
# writes a revision that has it (one that repeated the message would be an echo, rejected).
PRINCIPLE = """name: echo
critique_request: CRIT
revision_request: REV
checks:
  - kind: regex
    pattern: Your reply
"""
MESSAGE = "Your reply must match the pattern 'Your reply'."


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "echo.yaml").write_text(PRINCIPLE)
    prompts = [{"id": f"q{i}", "prompt": f"Question {i}?"} for i in range(3)]
    return tmp_path / "echo.yaml", write_prompts(tmp_path / "p.jsonl", prompts)


def fixed_on_retry(request: dict) -> str:
    last = request["messages"][-1]["content"]
    return "Your reply, fixed at last." if MESSAGE in last else default_reply(request["messages"])


def openai_run(inputs, out, url, retries):
    principle, prompts = inputs
    settings = GenerateSettings(principles=[str(principle)], prompts=[str(prompts)], out=str(out),
                                backend="openai", base_url=[url], model="stand-in",
                                check_retries=retries)
    return run_generate(plan_run(settings, model_resolver(settings)), make_engine,
                        log=lambda message: None)


def test_the_openai_backend_retries_and_rejects_like_any_engine(inputs, tmp_path):
    with StandInServer(reply=fixed_on_retry) as server:
        kept = openai_run(inputs, tmp_path / "kept", server.url, retries=1)
        failed = openai_run(inputs, tmp_path / "failed", server.url, retries=0)
    assert kept["counts"]["pairs"] == {"train": 3} and kept["counts"]["rejects"] == {}
    assert kept["counts"]["checks"]["checks"]["echo/regex"]["kept_pass_rate"] == 1.0
    traces = pq.read_table(tmp_path / "kept" / "traces").to_pylist()
    assert all(t["final"] == "Your reply, fixed at last." for t in traces)
    assert [len(t["check_retries"]) for t in traces] == [1, 1, 1]
    assert failed["counts"]["rejects"] == {"check_failed": 3}
    assert failed["counts"]["checks"]["retries"] == 0


def wordy_engine(settings, model):
    from test_checks_in_a_run import Wordy

    return Wordy(record_calls=False)


def test_ray_workers_write_the_rows_of_a_single_process_run(tmp_path):
    ray = pytest.importorskip("ray")
    from ray_helpers import OBJECT_STORE_BYTES, WORKER_ENV, output_rows, run_ray
    from test_checks_in_a_run import MANIFEST, PRINCIPLE as BRIEF, PROMPTS

    (tmp_path / "brief.yaml").write_text(BRIEF)
    (tmp_path / "c.yaml").write_text(MANIFEST)
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS)
    reference, _ = run_scripted(tmp_path / "c.yaml", prompts, tmp_path / "one",
                                engine=wordy_engine(None, None), shard_size=1)
    ray.init(num_cpus=2, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
             runtime_env=WORKER_ENV)
    try:
        manifest = run_ray(tmp_path / "c.yaml", prompts, tmp_path / "ray", partial(wordy_engine),
                           workers=2, shard_size=1)
    finally:
        ray.shutdown()
    assert output_rows(tmp_path / "ray") == output_rows(tmp_path / "one")
    assert manifest["counts"]["checks"] == reference["counts"]["checks"]
    assert manifest["counts"]["rejects"] == {"check_failed": 1}
