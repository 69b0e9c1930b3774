"""Connecting a `generate --ray` run to Ray, and sizing its workers before any prompt is read.

Every check here fails within seconds and before `--out` is touched: Ray missing, an address that
does not answer, a cluster that wants a token this process lacks (auth.py), a cluster that
cannot hold one worker. Left to itself Ray would wait (for a head that never answers, or for
resources no node has) instead of saying what is wrong.

A quiet run keeps Ray's own start-up lines (its "ray" logger) to errors and the workers' output
off the terminal, and its workers get the run's quiet settings (driver.py,
`worker_runtime_env`);
`--verbose` leaves Ray as it is and brings every worker's line back.
"""

from __future__ import annotations

import logging
import math
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from selfalign.errors import UserError
from selfalign.generate.ray.auth import WHERE_TOKENS_GO, authenticate, is_auth_failure
from selfalign.generate.settings import LOCAL_RAY, GenerateSettings
from selfalign.quiet import verbose_requested

RAY_EXTRA = "pip install 'selfalign[ray]'"
CONNECT_TIMEOUT_S = 5.0
# A local cluster carries only shards of prompts and ledger entries through its object store.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 ** 2


@dataclass(frozen=True)
class Placement:
    """One worker's resources, and the node it is pinned to (None: wherever Ray finds room)."""

    cpus: float
    gpus: float
    node_id: str | None = None


@dataclass
class Cluster:
    """A connected cluster and the workers a run will place on it."""

    address: str
    placements: list[Placement]
    owned: bool  # started by this run (a local cluster): stopped when it ends

    @property
    def workers(self) -> int:
        return len(self.placements)

    def describe_free(self) -> str:
        """What each live node has free now, for messages about workers that cannot be placed."""
        import ray

        return _describe(_free_nodes(ray))

    def executor(self):
        """The executor that runs a generate run's shards on this cluster's workers."""
        from selfalign.generate.ray.driver import RayExecutor

        return RayExecutor(self)

    def disconnect(self) -> None:
        if self.owned:
            import ray

            ray.shutdown()


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(f"--ray needs Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


def connect(settings: GenerateSettings, log=print, **init_options) -> Cluster:
    """Join (or start) the cluster and check it can hold the workers asked for.

    A process already connected to Ray (a notebook, a test) keeps its connection.
    """
    ray = import_ray()
    owned = not ray.is_initialized()
    if owned:
        _init(ray, settings.ray, init_options, log)
    try:
        cluster = _size_workers(ray, settings, owned)
    except BaseException:
        if owned:
            ray.shutdown()
        raise
    sizes = sorted({(p.cpus, p.gpus) for p in cluster.placements})
    each = " or ".join(f"{cpus:g} CPU(s) and {gpus:g} GPU(s)" for cpus, gpus in sizes)
    pinned = ", one per node" if all(p.node_id for p in cluster.placements) else ""
    log(f"Ray: {cluster.workers} worker(s){pinned}, each {each}, on {settings.ray}")
    return cluster


def _init(ray, address: str, init_options: dict, log) -> None:
    if not verbose_requested():
        # Ray's own lines keep to errors, and the workers' output stays in their log files on
        # each node: vLLM's engine processes, spawned inside a worker, print import-time notices
        # before any setting of the run reaches them. A failure still comes back to the driver
        # (the failed call's error, Ray's reports of dead workers).
        init_options = {"logging_level": logging.ERROR, "log_to_driver": False, **init_options}
    if address == LOCAL_RAY:
        # Ray's "local" starts a cluster of the run's own, whatever the `ray_current_cluster`
        # file in Ray's temporary folder names: a head killed without `ray stop` leaves it
        # behind, and `ray.init()` without an address would try to join that dead head.
        options = {"address": "local", "include_dashboard": False,
                   "object_store_memory": LOCAL_OBJECT_STORE_BYTES, **init_options}
        try:
            ray.init(**options)
        except Exception as err:  # noqa: BLE001 - whatever Ray raises, one line that says why
            raise UserError(f"--ray: could not start a Ray cluster on this machine: "
                            f"{_first_line(err)}. Check the free memory, and the free space "
                            f"in Ray's temporary folder (RAY_TMPDIR, /tmp/ray by default); "
                            f"`ray stop` ends clusters left running here") from None
        return
    head = _check_answers(address)
    if head is not None:
        authenticate(address, *head, log)
    try:
        ray.init(address=address, **init_options)
    except Exception as err:  # noqa: BLE001 - whatever Ray raises, one line that says why
        if is_auth_failure(err):
            raise UserError(f"--ray {address}: the Ray cluster there refuses this process's "
                            f"authentication token, or it has none: {WHERE_TOKENS_GO}"
                            ) from None
        raise UserError(f"--ray {address}: cannot connect to a Ray cluster there: "
                        f"{_first_line(err)}. Start one (ray start --head) or give its "
                        f"address: auto on a node of the cluster, ray://HEAD:10001 from outside"
                        ) from None


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(err).__name__


def _check_answers(address: str) -> tuple[str, int] | None:
    """Ray retries an address that does not answer for a long time; a socket says it at once.

    Returns the head's GCS host and port (None for `auto`, and for `ray://`, whose server is
    not the GCS).
    """
    if address == "auto":
        return None  # Ray reads the running cluster's address from this node, and fails fast
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise UserError(f"--ray {address}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise UserError(f"--ray {address}: nothing answers at {host}:{port} ({err}). Is the "
                        f"cluster's head running (ray start --head), and is the port open?"
                        ) from None
    return (host, port) if parts.scheme == "gcs" else None


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    free: dict  # resource → amount free now


def _free_nodes(ray) -> list[Node]:
    """Live nodes with what they have free now (what other jobs hold is not ours to count on)."""
    alive = [n for n in ray.nodes() if n.get("Alive")]
    try:
        from ray._private.state import available_resources_per_node

        free = available_resources_per_node()
    except Exception:  # noqa: BLE001 - a developer API; the totals are the fallback
        free = {}
    return [Node(n["NodeID"], n.get("NodeManagerAddress") or n["NodeID"][:8],
                 free.get(n["NodeID"], n.get("Resources", {}))) for n in alive]


def _size_workers(ray, settings: GenerateSettings, owned: bool) -> Cluster:
    nodes = _free_nodes(ray)
    gpus = gpus_per_worker(settings, ray.cluster_resources().get("GPU", 0))
    if settings.ray_cpus_per_worker is None and gpus == 0:
        placements, asked = _one_per_node(nodes), "1 CPU on one node"
    else:
        cpus = settings.ray_cpus_per_worker or 1.0
        asked = f"{cpus:g} CPU(s) and {gpus:g} GPU(s) on one node"
        fits = workers_that_fit([n.free for n in nodes], cpus, gpus)
        placements = [Placement(cpus, gpus)] * fits
    if not placements:
        raise UserError(f"the Ray cluster cannot hold one worker: each needs {asked}; it has "
                        f"{_describe(nodes)}. Lower --ray-cpus-per-worker, "
                        f"--ray-gpus-per-worker or --tensor-parallel-size, or add larger nodes")
    if settings.ray_workers is not None and settings.ray_workers > len(placements):
        what = "one per node" if placements[0].node_id else f"of {asked}"
        raise UserError(f"--ray-workers {settings.ray_workers}: the Ray cluster holds "
                        f"{len(placements)} worker(s) {what}; it has {_describe(nodes)}. Give "
                        f"--ray-cpus-per-worker to place several on one node")
    return Cluster(settings.ray, placements[:settings.ray_workers or len(placements)], owned)


def _one_per_node(nodes: list[Node]) -> list[Placement]:
    """Without GPUs a vLLM CPU engine wants a node's cores to itself (its OpenMP threads), and
    one engine per CPU would hold as many KV caches: one worker per node, with the CPUs it has
    free, the roomiest nodes first."""
    roomy = sorted((n for n in nodes if n.free.get("CPU", 0) >= 1),
                   key=lambda n: -n.free["CPU"])
    return [Placement(float(math.floor(n.free["CPU"] + 1e-9)), 0.0, n.id) for n in roomy]


def gpus_per_worker(settings: GenerateSettings, cluster_gpus: float) -> float:
    """A worker holds the GPUs its engine uses: tensor × data parallel size, on a GPU cluster."""
    if settings.ray_gpus_per_worker is not None:
        return settings.ray_gpus_per_worker
    if settings.backend == "openai" or not cluster_gpus:
        return 0.0
    return float(settings.tensor_parallel_size * settings.data_parallel_size)


def workers_that_fit(nodes: list[dict], cpus: float, gpus: float) -> int:
    """Workers the nodes hold together; one worker's resources are always on one node."""
    total = 0
    for resources in nodes:
        fit = math.floor(resources.get("CPU", 0) / cpus + 1e-9)
        if gpus > 0:
            fit = min(fit, math.floor(resources.get("GPU", 0) / gpus + 1e-9))
        total += fit
    return total


def _describe(nodes: list[Node]) -> str:
    if not nodes:
        return "no live node"
    shown = [f"{n.name} {n.free.get('CPU', 0):g} CPU(s), {n.free.get('GPU', 0):g} GPU(s) free"
             for n in nodes[:5]]
    more = f" and {len(nodes) - 5} more" if len(nodes) > 5 else ""
    return f"{len(nodes)} node(s): " + "; ".join(shown) + more
