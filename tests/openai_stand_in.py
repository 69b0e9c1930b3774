"""A stand-in OpenAI-compatible server for tests: answers like the scripted engine, and can be
told to fail, rate-limit, stall or drop a share of requests. It listens on 127.0.0.1 only.

`reply` and `judge` replace its answers (a reply's text; a judge question's `top_logprobs`), so
a test can script a model whose verdict depends on what it is shown.

Which requests misbehave is decided by a sha256 of the request body and its attempt number, so a
run sees the same faults every time, and a retried request can succeed.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

# The judge's answer when no `judge` is given: P(A) = 0.8, P(B) = 0.2, whatever it is shown.
DEFAULT_TOP_LOGPROBS = [("A", -0.2231), ("B", -1.6094)]


def default_reply(messages: list[dict]) -> str:
    """"reply to: <last turn>" for a request with one user turn (a first answer); a request with
    more (a critique, revision or retry request) is answered with the last turn's words in
    reverse order, so the text still shows what was asked without copying it: a revision that
    copies its request is rejected as an echo."""
    last = messages[-1]["content"]
    turn = sum(m["role"] == "user" for m in messages)
    if turn == 1:
        return f"reply to: {last}"
    return f"reply to turn {turn}: {' '.join(reversed(last.split()))}"


@dataclass
class Faults:
    fail: float = 0.0  # share of attempts answered 500
    rate_limit: float = 0.0  # share answered 429 (Retry-After: 0)
    stall: float = 0.0  # share that hang for `stall_seconds` before answering
    stall_seconds: float = 5.0
    always_fail_marker: str = "ALWAYS-500"  # requests containing it fail on every attempt
    drop: float = 0.0  # share whose connection is closed without an answer
    limited_attempts: int = 0  # the first this many attempts of every request get 429
    retry_after: str = "0"  # the Retry-After header of a 429


@dataclass
class StandInServer:
    model: str = "stand-in"
    faults: Faults = field(default_factory=Faults)
    seen: Counter = field(default_factory=Counter)  # outcome -> count
    seeds: list = field(default_factory=list)
    # body digest -> attempts so far; share one between the servers of a fleet, so a request
    # retried on another server draws its next outcome, not the same one again
    attempts: Counter = field(default_factory=Counter)
    port: int = 0  # 0: any free port
    stop_after: int | None = None  # go away (close the socket) after this many completions
    api_key: str | None = None  # when set, other keys get 401
    reply: Callable[[dict], str] | None = None  # request body -> reply text
    judge: Callable[[dict], list[tuple[str, float]]] | None = None  # -> top (token, logprob)
    logprobs: bool = True  # False: a server that ignores `logprobs=True`
    arrivals: list = field(default_factory=list)  # (monotonic time, outcome, asked for logprobs)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.answered = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "StandInServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- behaviour ---------------------------------------------------------------------------

    def outcome(self, body: bytes, text: str) -> str:
        digest = hashlib.sha256(body).hexdigest()
        with self.lock:
            self.attempts[digest] += 1
            attempt = self.attempts[digest]
        if self.faults.always_fail_marker in text:
            return "fail"
        if attempt <= self.faults.limited_attempts:
            return "rate_limit"
        draw = int(hashlib.sha256(f"{digest}/{attempt}".encode()).hexdigest()[:8], 16) / 2**32
        for name, share in (("fail", self.faults.fail), ("rate_limit", self.faults.rate_limit),
                            ("stall", self.faults.stall), ("drop", self.faults.drop)):
            if draw < share:
                return name
            draw -= share
        return "ok"

    def completion(self, request: dict) -> dict:
        messages = request["messages"]
        last = messages[-1]["content"]
        if request.get("logprobs"):
            pairs = self.judge(request) if self.judge else DEFAULT_TOP_LOGPROBS
            top = [{"token": token, "logprob": logprob, "bytes": None} for token, logprob in pairs]
            best = max(top, key=lambda t: t["logprob"])
            logprobs = {"content": [{**best, "top_logprobs": top}]} if self.logprobs else None
            text = best["token"]
        else:
            logprobs, text = None, self.reply(request) if self.reply else default_reply(messages)
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        return {"id": "cmpl-stand-in", "object": "chat.completion", "created": int(time.time()),
                "model": self.model,
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": logprobs,
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()),
                          "total_tokens": prompt_tokens + len(text.split())}}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [
                        {"id": server.model, "object": "model", "owned_by": "tests"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if server.api_key and self.headers.get("Authorization") != \
                        f"Bearer {server.api_key}":
                    self._send(401, {"error": {"message": "bad key"}})
                    return
                request = json.loads(body)
                outcome = server.outcome(body, json.dumps(request["messages"]))
                with server.lock:
                    server.seen[outcome] += 1
                    server.seeds.append(request.get("seed"))
                    server.arrivals.append((time.monotonic(), outcome,
                                            bool(request.get("logprobs"))))
                if request.get("model") != server.model:
                    self._send(404, {"error": {"message": f"model {request.get('model')} "
                                                          f"does not exist"}})
                elif outcome == "fail":
                    self._send(500, {"error": {"message": "stand-in failure"}})
                elif outcome == "rate_limit":
                    self._send(429, {"error": {"message": "slow down"}},
                               {"Retry-After": server.faults.retry_after})
                elif outcome == "drop":
                    self.close_connection = True  # hang up without a word
                else:
                    if outcome == "stall":
                        time.sleep(server.faults.stall_seconds)
                    try:
                        self._send(200, server.completion(request))
                    except (BrokenPipeError, ConnectionResetError):
                        return  # the client gave up on a stalled request
                    with server.lock:
                        server.answered += 1
                        leave = server.stop_after is not None and \
                            server.answered == server.stop_after
                    if leave:
                        threading.Thread(target=server.stop, daemon=True).start()

        return Handler
