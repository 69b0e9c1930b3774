"""`generate --ray` on two Ray nodes on one machine (a head and a second raylet, one CPU each,
one worker on each): the second node is removed mid-run, and the run completes on the head."""

from __future__ import annotations

import threading
import time
from functools import partial

import pytest

from selfalign.store.ledger import read_ledger

from ray_helpers import OBJECT_STORE_BYTES, WORKER_ENV, output_rows, run_ray, scripted
from run_helpers import run_scripted, write_constitution, write_prompts

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

PROMPTS = 16
SHARD_SIZE = 2


@pytest.fixture(scope="module")
def two_nodes():
    node_args = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES}
    cluster = cluster_utils.Cluster(initialize_head=True,
                                    head_node_args={**node_args, "include_dashboard": False})
    second = cluster.add_node(**node_args)
    ray.init(address=cluster.address, runtime_env=WORKER_ENV)
    yield cluster, second
    ray.shutdown()
    cluster.shutdown()


def remove_when(cluster, node, out, shards: int) -> threading.Thread:
    """Remove `node` once the ledger holds `shards` entries: both workers are busy then."""
    def watch():
        deadline = time.monotonic() + 120
        while len(read_ledger(out)) < shards and time.monotonic() < deadline:
            time.sleep(0.05)
        cluster.remove_node(node)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_lost_node_loses_nothing(two_nodes, tmp_path):
    cluster, second = two_nodes
    manifest_path = write_constitution(tmp_path / "c")
    prompts = write_prompts(tmp_path / "p.jsonl", [
        {"id": f"p{i}", "prompt": f"Question {i}: why is the sky blue?"} for i in range(PROMPTS)])
    out = tmp_path / "out"
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    remover = remove_when(cluster, second, out, shards=2)
    lines: list[str] = []
    manifest = run_ray(manifest_path, prompts, out, partial(scripted, delay=0.3, capacity=1),
                       workers=2, shard_size=SHARD_SIZE, log=lines.append)
    remover.join(timeout=60)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 1  # the node did go
    reference = tmp_path / "reference"
    run_scripted(manifest_path, prompts, reference, shard_size=SHARD_SIZE)
    assert output_rows(out) == output_rows(reference)  # nothing lost, nothing twice
    assert len(output_rows(out)["traces"]) == PROMPTS
    workers = manifest["ray"]["workers"]
    assert sorted(w["lost"] for w in workers) == [0, 1], lines
    survivor = next(w for w in workers if w["lost"] == 0)
    assert survivor["shards"] > PROMPTS // SHARD_SIZE // 2  # it finished the lost node's share
    assert sum(w["shards"] for w in workers) == len(read_ledger(out)) == PROMPTS // SHARD_SIZE
