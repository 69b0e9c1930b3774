"""`generate --ray` without an address starts a cluster of its own, whatever a head that died
without `ray stop` left in Ray's temporary folder, and every failure of `ray.init` is one line
that says what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from selfalign.errors import UserError
from selfalign.generate.ray import cluster as ray_cluster

from ray_helpers import TESTS
from run_helpers import write_constitution, write_prompts

ray = pytest.importorskip("ray")

# A run through the code `generate --ray` uses (connect, plan_run, run_generate), with the
# scripted engine, which the command line never offers.
DRIVER = """
import json, sys
from ray_helpers import WORKER_ENV, scripted
from selfalign.generate.plan import plan_run
from selfalign.generate.ray.cluster import connect
from selfalign.generate.run import run_generate
from selfalign.generate.settings import GenerateSettings

settings = GenerateSettings(principles=[sys.argv[1]], prompts=[sys.argv[2]], out=sys.argv[3],
                            ray="local", ray_workers=1, ray_cpus_per_worker=1.0, shard_size=2)
cluster = connect(settings, log=print, runtime_env=WORKER_ENV)
try:
    manifest = run_generate(plan_run(settings, resolve_model=lambda m: "scripted-model"),
                            scripted, log=print, cluster=cluster)
finally:
    cluster.disconnect()
print("RAY", json.dumps(manifest["ray"]["address"]), manifest["status"])
"""


def test_a_stale_current_cluster_file_does_not_stop_a_local_run(tmp_path):
    manifest = write_constitution(tmp_path / "c")
    prompts = write_prompts(tmp_path / "p.jsonl", [{"id": f"q{i}", "prompt": f"Fact {i}?"}
                                                   for i in range(4)])
    # A short folder of its own: Ray's socket paths must stay under 108 characters, and the
    # file must not touch the Ray folder other processes on this machine use.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text("127.0.0.1:1\n")  # a dead head
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp),
           "PYTHONPATH": f"{TESTS.parent}{os.pathsep}{TESTS}"}
    env.pop("RAY_ADDRESS", None)
    result = subprocess.run([sys.executable, "-c", DRIVER, str(manifest), str(prompts),
                             str(tmp_path / "out")], env=env, capture_output=True, text=True,
                            timeout=300)
    subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert 'RAY "local" complete' in result.stdout
    rows = json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["prompts"]
    assert rows == 4


class RayThatFails:
    """`ray` whose init raises what Ray raises, over several lines."""

    def __init__(self, error: BaseException):
        self.error, self.exceptions = error, ray.exceptions
        self.asked: dict = {}

    def init(self, **options):
        self.asked = options
        raise self.error


@pytest.mark.parametrize("error", [
    ValueError("When connecting to an existing cluster, object_store_memory must not be "
               "provided.\nsecond line"),
    RuntimeError("\nFailed to start the raylet.\nSee /tmp/ray/session_latest/logs"),
    OSError(28, "No space left on device"),
    Exception("Node temp_dir was not found in NodeInfo."),
])
def test_every_failure_to_start_a_local_cluster_is_one_line_saying_what_to_do(error):
    fake = RayThatFails(error)
    with pytest.raises(UserError) as failed:
        ray_cluster._init(fake, "local", {}, log=lambda line: None)
    message = str(failed.value)
    assert "\n" not in message and fake.asked["address"] == "local"
    assert message.startswith("--ray: could not start a Ray cluster on this machine: ")
    assert message.endswith("`ray stop` ends clusters left running here")
    first = [line for line in str(error).splitlines() if line.strip()][0]
    assert f": {first.strip().rstrip('.')}. Check" in message


def test_a_failure_to_join_an_address_is_one_line_too():
    fake = RayThatFails(RuntimeError("Could not read 'session_name' from GCS\nmore detail"))
    with pytest.raises(UserError) as failed:
        ray_cluster._init(fake, "auto", {}, log=lambda line: None)
    assert str(failed.value) == (
        "--ray auto: cannot connect to a Ray cluster there: Could not read 'session_name' from "
        "GCS. Start one (ray start --head) or give its address: auto on a node of the cluster, "
        "ray://HEAD:10001 from outside")
