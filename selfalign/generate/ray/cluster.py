"""Connecting a `generate --ray` run to Ray, and sizing its workers before any prompt is read.

Every check here fails within seconds and before `--out` is touched: Ray missing, an address that
does not answer, a cluster that wants a token this process lacks (auth.py), a cluster that
cannot hold one worker. Left to itself Ray would wait (for a head that never answers, or for
resources no node has) instead of saying what is wrong.

A quiet run keeps Ray's own start-up lines (its "ray" logger) to errors and the workers' output
off the terminal, and its workers get the run's quiet settings (`worker_runtime_env`);
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
from selfalign.quiet import inherited_environment, verbose_requested

RAY_EXTRA = "pip install 'selfalign[ray]'"
CONNECT_TIMEOUT_S = 5.0
# A local cluster carries only shards of prompts and ledger entries through its object store.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 ** 2


@dataclass
class Cluster:
    """A connected cluster and the workers a run will place on it."""

    address: str
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    owned: bool  # started by this run (a local cluster): stopped when it ends

    def run(self, plan, make_engine, manifest: dict, done: dict, log) -> dict:
        from selfalign.generate.ray.driver import run_on_ray

        return run_on_ray(self, plan, make_engine, manifest, done, log)

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
    log(f"Ray: {cluster.workers} worker(s), each {cluster.cpus_per_worker:g} CPU(s) and "
        f"{cluster.gpus_per_worker:g} GPU(s), on {settings.ray}")
    return cluster


def _init(ray, address: str, init_options: dict, log) -> None:
    if not verbose_requested():
        # Ray's own lines keep to errors, and the workers' output stays in their log files on
        # each node: vLLM's engine processes, spawned inside a worker, print import-time notices
        # before any setting of the run reaches them. A failure still comes back to the driver
        # (the failed call's error, Ray's reports of dead workers).
        init_options = {"logging_level": logging.ERROR, "log_to_driver": False, **init_options}
    if address == LOCAL_RAY:
        options = {"include_dashboard": False, "object_store_memory": LOCAL_OBJECT_STORE_BYTES,
                   **init_options}
        ray.init(**options)
        return
    head = _check_answers(address)
    if head is not None:
        authenticate(address, *head, log)
    try:
        ray.init(address=address, **init_options)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as err:
        if is_auth_failure(err):
            raise UserError(f"--ray {address}: the Ray cluster there refuses this process's "
                            f"authentication token, or it has none: {WHERE_TOKENS_GO}"
                            ) from None
        raise UserError(f"--ray {address}: cannot connect to a Ray cluster there: "
                        f"{str(err).splitlines()[0]}. Start one (ray start --head) or give its "
                        f"address: auto on a node of the cluster, ray://HEAD:10001 from outside"
                        ) from None


def worker_runtime_env() -> dict:
    """What each worker process starts with: the run's quiet (or verbose) settings, which a
    process started by a raylet does not inherit from this one."""
    return {"env_vars": inherited_environment()}


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


def _size_workers(ray, settings: GenerateSettings, owned: bool) -> Cluster:
    cpus = settings.ray_cpus_per_worker
    gpus = gpus_per_worker(settings, ray.cluster_resources().get("GPU", 0))
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    fits = workers_that_fit(nodes, cpus, gpus)
    asked = f"{cpus:g} CPU(s) and {gpus:g} GPU(s) on one node"
    if fits == 0:
        raise UserError(f"the Ray cluster cannot hold one worker: each needs {asked}; it has "
                        f"{_describe(nodes)}. Lower --ray-cpus-per-worker, "
                        f"--ray-gpus-per-worker or --tensor-parallel-size, or add larger nodes")
    if settings.ray_workers is not None and settings.ray_workers > fits:
        raise UserError(f"--ray-workers {settings.ray_workers}: the Ray cluster holds {fits} "
                        f"worker(s) of {asked}; it has {_describe(nodes)}")
    return Cluster(settings.ray, settings.ray_workers or fits, cpus, gpus, owned)


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


def _describe(nodes: list[dict]) -> str:
    if not nodes:
        return "no live node"
    shown = [f"{r.get('CPU', 0):g} CPU(s), {r.get('GPU', 0):g} GPU(s)" for r in nodes[:5]]
    more = f" and {len(nodes) - 5} more" if len(nodes) > 5 else ""
    return f"{len(nodes)} node(s): " + "; ".join(shown) + more
