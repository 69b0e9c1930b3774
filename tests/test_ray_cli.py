"""`selfalign generate --ray HOST:PORT` against a cluster started the way the many-machines guide
says: `ray start --head`, then `ray start --address` for a second node, token authentication
on. The run finds the token where Ray keeps it, stays as quiet as a single-machine run, and a
cluster it cannot authenticate to is named as such, not as a missing one."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from selfalign.quiet import QUIET_ENVIRONMENT

from run_helpers import write_prompts

ray = pytest.importorskip("ray")

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 60
PROMPTS = [{"id": f"p{i}", "prompt": f"Question {i}: how do I calm a barking dog?"}
           for i in range(4)]
# Every line a quiet run prints is one of the run's own: set-up, progress, shards, summary.
OWN_LINE = re.compile(r"Ray: |\[ *\d+s\] prompts |shard \d+: |done: |rejects by reason: |"
                      r"tokens: |written to |checks: ")


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_node(args: list[str], env: dict) -> subprocess.Popen:
    """`ray start ... --block` in its own process group: ending the group ends this node's
    processes and no one else's (`ray stop` would end every Ray process of the user)."""
    return subprocess.Popen([RAY, "start", "--block", "--disable-usage-stats", "--num-cpus", "1",
                             "--object-store-memory", str(200 * 1024 ** 2),
                             "--dashboard-agent-listen-port", str(free_port()),
                             "--metrics-export-port", str(free_port()), *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop_node(node: subprocess.Popen) -> None:
    for sig, wait_s in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(node.pid, sig)
        except ProcessLookupError:
            return
        try:
            node.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            pass


def wait_for_nodes(address: str, env: dict, count: int, nodes: list) -> None:
    """Until the cluster lists `count` live nodes (asked with the token, as a user would)."""
    check = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
             "print(sum(n['Alive'] for n in ray.nodes()))")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(node.poll() is not None for node in nodes):
            raise RuntimeError("a `ray start` ended early")
        result = subprocess.run([sys.executable, "-c", check, address], env=env,
                                capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if result.returncode == 0 and result.stdout.split()[-1:] == [str(count)]:
            return
        time.sleep(1)
    raise RuntimeError(f"the cluster at {address} did not list {count} nodes in time")


@pytest.fixture(scope="module")
def cluster():
    """A head and a second node, one CPU each, that want a token (the test's own, never the
    machine's), in a temporary folder of their own; stopped at the end."""
    token = uuid.uuid4().hex
    root = Path(tempfile.mkdtemp(prefix="sa-ray-", dir="/tmp"))  # short: Ray's socket paths
    port = free_port()
    env = {**os.environ, "HOME": str(root / "home"), "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": token, "PYTHONPATH": str(REPO)}  # workers import this tree
    for name in ("RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS", "SELFALIGN_VERBOSE", *QUIET_ENVIRONMENT):
        env.pop(name, None)  # nodes started from a plain shell, not this test session's
    nodes = [start_node(["--head", "--port", str(port), "--temp-dir", str(root / "ray"),
                         "--include-dashboard", "false", "--dashboard-port", str(free_port()),
                         "--ray-client-server-port", str(free_port())], env)]
    address = f"127.0.0.1:{port}"
    try:
        wait_for_nodes(address, env, 1, nodes)
        nodes.append(start_node(["--address", address], env))
        wait_for_nodes(address, env, 2, nodes)
        yield address, token, root
    finally:
        for node in reversed(nodes):
            stop_node(node)
        shutil.rmtree(root, ignore_errors=True)


def client_env(home: Path, token_file: str | None = None, **extra: str) -> dict:
    """A newcomer's shell: no RAY_AUTH_* set, a home of its own (with the token, if given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH_", "RAY_ADDRESS"))}
    # Nor what an earlier in-process command of this test session set for itself (quiet.py
    # sets these in os.environ): a newcomer's shell has none of them.
    for name in ("SELFALIGN_VERBOSE", *QUIET_ENVIRONMENT):
        env.pop(name, None)
    home.mkdir(parents=True, exist_ok=True)
    if token_file is not None:
        (home / ".ray").mkdir(exist_ok=True)
        (home / ".ray" / "auth_token").write_text(token_file + "\n")
    return {**env, "HOME": str(home), "PYTHONPATH": str(REPO), **extra}


def generate(address: str, env: dict, out: Path, prompts: Path, model: Path, *first: str,
             timeout: float = 240) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "selfalign.cli", *first, "generate", "--ray", address,
               "--backend", "transformers", "--model", str(model),
               "--principles", str(REPO / "constitution" / "harmless.yaml"),
               "--prompts", str(prompts), "--out", str(out), "--max-tokens", "6",
               "--temperature", "0", "--shard-size", "1"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def lines_of(result: subprocess.CompletedProcess) -> list[str]:
    """The run's lines, its log (stderr) before its summary (stdout)."""
    return [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]


def test_a_run_finds_the_token_in_its_home_and_stays_quiet(cluster, tiny_model_dir, tmp_path):
    address, token, _ = cluster
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS)
    env = client_env(tmp_path / "home", token_file=token)
    result = generate(address, env, tmp_path / "out", prompts, tiny_model_dir)
    lines = lines_of(result)
    assert result.returncode == 0, "\n".join(lines[-40:])
    assert lines[0] == (f"Ray: the cluster at {address} asks for a token; using the one in "
                        f"~/.ray/auth_token (as RAY_AUTH_MODE=token would)")
    assert lines[1] == f"Ray: 2 worker(s), one per node, each 1 CPU(s) and 0 GPU(s), on {address}"
    assert [line for line in lines if not OWN_LINE.match(line)] == []  # nothing from Ray or libs
    assert sum(line.startswith("shard ") for line in lines) == len(PROMPTS)  # one per shard
    traces = [row for f in sorted((tmp_path / "out" / "traces").glob("*.parquet"))
              for row in pq.read_table(f).to_pylist()]
    assert sorted(t["prompt_id"] for t in traces) == [p["id"] for p in PROMPTS]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["ray"]["address"] == address and len(manifest["ray"]["workers"]) == 2


def test_verbose_brings_the_workers_lines_back(cluster, tiny_model_dir, tmp_path):
    address, token, _ = cluster
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS)  # both workers take shards
    env = client_env(tmp_path / "home", RAY_AUTH_TOKEN=token)
    result = generate(address, env, tmp_path / "out", prompts, tiny_model_dir, "--verbose")
    lines = lines_of(result)
    assert result.returncode == 0, "\n".join(lines[-40:])
    assert "using the one in RAY_AUTH_TOKEN" in lines[0]
    assert any("Connecting to existing Ray cluster" in line for line in lines)  # Ray's own
    # What a worker printed, forwarded by Ray: the engine's loading bar, shown when verbose.
    assert any("(WorkerActor pid=" in line for line in lines), "\n".join(lines)
    assert any("Loading weights" in line for line in lines)


def refused(address: str, env: dict, tmp_path: Path) -> list[str]:
    """A run that must stop before reading anything: its output, checked to be one line."""
    prompts = write_prompts(tmp_path / "p.jsonl", PROMPTS[:1])
    started = time.monotonic()
    result = generate(address, env, tmp_path / "out", prompts, tmp_path / "no-model",
                      timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    assert time.monotonic() - started < 30  # not Ray's 20 s of retries and then some
    assert not (tmp_path / "out").exists()
    return lines_of(result)


def test_no_token_at_hand_is_one_line_that_says_where_it_goes(cluster, tmp_path):
    address, _, _ = cluster
    lines = refused(address, client_env(tmp_path / "home"), tmp_path)
    assert lines == [f"error: --ray {address}: the Ray cluster there asks for an authentication "
                     f"token and none was found here: put the cluster's token (`ray "
                     f"get-auth-token` on the head prints it) in RAY_AUTH_TOKEN, in a file named "
                     f"by RAY_AUTH_TOKEN_PATH, or in ~/.ray/auth_token, and set "
                     f"RAY_AUTH_MODE=token"]


def test_another_cluster_s_token_is_named_with_where_it_was_found(cluster, tmp_path):
    address, _, _ = cluster
    path = tmp_path / "old-token"
    path.write_text("not-this-clusters-token\n")
    env = client_env(tmp_path / "home", RAY_AUTH_TOKEN_PATH=str(path))
    [line] = refused(address, env, tmp_path)
    assert line.startswith(f"error: --ray {address}: the Ray cluster there refuses the token in "
                           f"{path} (it is another cluster's): put the cluster's token")


def test_a_mode_the_user_set_is_respected(cluster, tmp_path):
    address, token, _ = cluster
    env = client_env(tmp_path / "home", token_file=token, RAY_AUTH_MODE="disabled")
    assert refused(address, env, tmp_path) == [
        f"error: --ray {address}: the Ray cluster there asks for an authentication token, but "
        f"RAY_AUTH_MODE=disabled here: set RAY_AUTH_MODE=token (the token in ~/.ray/auth_token "
        f"is this cluster's)"]


def test_a_dead_address_still_says_nothing_answers(tmp_path):
    port = free_port()  # bound and released: nothing listens there now
    [line] = refused(f"127.0.0.1:{port}", client_env(tmp_path / "home"), tmp_path)
    assert line.startswith(f"error: --ray 127.0.0.1:{port}: nothing answers at 127.0.0.1:{port}")
    assert "(ray start --head)" in line


# -- where the token is looked for (no cluster) ----------------------------------------------

def test_the_token_is_looked_for_in_ray_s_order(tmp_path):
    from selfalign.errors import UserError
    from selfalign.generate.ray.auth import Token, find_token

    home = tmp_path / "home"
    assert find_token({}, home) is None
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("")
    assert find_token({}, home) is None  # an empty file is no token
    (home / ".ray" / "auth_token").write_text("from-home\n")
    assert find_token({}, home) == Token("from-home", "~/.ray/auth_token")
    named = tmp_path / "named"
    named.write_text("  from-named-file \n")
    assert find_token({"RAY_AUTH_TOKEN_PATH": str(named)}, home) == Token("from-named-file",
                                                                         str(named))
    both = {"RAY_AUTH_TOKEN_PATH": str(named), "RAY_AUTH_TOKEN": "from-variable"}
    assert find_token(both, home) == Token("from-variable", "RAY_AUTH_TOKEN")
    # A named file that cannot be read is a mistake to report, not a reason to fall back.
    with pytest.raises(UserError, match=r"^RAY_AUTH_TOKEN_PATH=\S+/missing: cannot read the "
                                        r"Ray token there \(No such file or directory\)$"):
        find_token({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")}, home)
    named.write_text("\n")
    with pytest.raises(UserError, match="the file is empty"):
        find_token({"RAY_AUTH_TOKEN_PATH": str(named)}, home)


@pytest.mark.parametrize("verbose", [False, True])
def test_workers_start_with_the_run_s_choice(monkeypatch, verbose):
    import warnings

    from selfalign import quiet
    from selfalign.generate.ray.driver import worker_runtime_env

    for name in (quiet.VERBOSE_ENV, *quiet.QUIET_ENVIRONMENT):
        monkeypatch.setenv(name, "")  # set, then removed: undone after the test
        monkeypatch.delenv(name)
    with warnings.catch_warnings():
        quiet.configure_output(verbose)
        env_vars = worker_runtime_env()["env_vars"]
    if verbose:  # "1" even where the node's own environment says otherwise
        assert env_vars == {"SELFALIGN_VERBOSE": "1", "VLLM_LOGGING_LEVEL": "INFO"}
    else:
        assert env_vars == {"SELFALIGN_VERBOSE": "0", "VLLM_LOGGING_LEVEL": "ERROR",
                            "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                            "TORCH_CPP_LOG_LEVEL": "ERROR", "PYTHONWARNINGS": "ignore"}


def test_ray_s_own_refusal_is_recognised_through_the_error_it_was_raised_from():
    """What `ray.init` raised, measured against the cluster above with the token check skipped:
    a ConnectionError raised from the GCS client's RuntimeError that names InvalidAuthToken."""
    from selfalign.generate.ray.auth import is_auth_failure

    def raised(inner: Exception) -> ConnectionError:
        try:
            try:
                raise inner
            except RuntimeError as err:
                raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from err
        except ConnectionError as outer:
            return outer

    refused = RuntimeError("Failed to connect to GCS. Last connection error: ... Unauthenticated: "
                           "RPC error: InvalidAuthToken: Authentication token is missing")
    assert is_auth_failure(raised(refused))
    assert not is_auth_failure(raised(RuntimeError("Failed to connect to GCS. Deadline")))
    assert is_auth_failure(ray.exceptions.AuthenticationError("no token was found"))
