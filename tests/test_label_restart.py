"""The real server (`selfalign label serve`) killed with SIGKILL mid-session and started again:
every acknowledged label is there, and labelling goes on where it stopped."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from label_helpers import bearer, synthetic_run, write_tasks

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "selfalign.cli", "label", "serve",
                                str(run), "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
        if process.poll() is not None:
            raise AssertionError(process.stdout.read().decode())
    process.kill()
    raise AssertionError("the server did not start in 60 s")


def test_labels_survive_sigkill_and_labelling_resumes(tmp_path):
    from selfalign.label.project import open_project

    run = synthetic_run(tmp_path / "run", 40)
    write_tasks(run)
    token = open_project(run, log=lambda m: None).db.add_labeller("pat")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(run, port)
    acknowledged = []
    try:
        with httpx.Client(base_url=base, headers=bearer(token), timeout=10) as client:
            for _ in range(15):
                item = client.get("/api/next").json()["item"]
                ack = client.post("/api/labels", json={"item": item, "answer": "b"})
                assert ack.status_code == 201
                acknowledged.append(ack.json()["item"])
            shown_before_kill = client.get("/api/next").json()["item"]
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)
    server = start_server(run, port)
    try:
        with httpx.Client(base_url=base, headers=bearer(token), timeout=10) as client:
            labels = client.get("/api/labels").json()["labels"]
            assert [l["item"] for l in labels] == acknowledged
            assert all(l["answer"] == {"preferred": l["answer"]["preferred"]} for l in labels)
            # The item on screen at the kill is the one handed out again; then new ones follow.
            assert client.get("/api/next").json()["item"] == shown_before_kill
            assert client.post("/api/labels", json={"item": shown_before_kill,
                                                    "answer": "a"}).status_code == 201
            following = client.get("/api/next").json()["item"]
            assert following not in acknowledged + [shown_before_kill]
    finally:
        server.terminate()
        server.wait(10)
