"""Any OpenAI-compatible chat-completions server (`vllm serve`, SGLang, TGI, llama.cpp's server,
hosted APIs), or a fleet of them: each request goes to the server with the fewest in flight.

Requests use the `openai` package's async client with its own retries off: connection errors,
timeouts, 429 and 5xx are retried here with exponential backoff and full jitter (a Retry-After
header is honoured), so a fleet is not hit in lockstep. A request that still fails becomes a
failed Completion (a reject with its reason) and the run goes on; when a request runs out of
retries for want of a connection and no server answers any more, the run stops (EngineFailure)
and can be resumed.
The API key is read from the environment variable named by the user and is never stored.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from dataclasses import dataclass

from selfalign.engine.base import Completion, EngineFailure, Request
from selfalign.engine.provenance import model_name
from selfalign.errors import UserError

BACKOFF_FIRST = 0.5  # seconds before the first retry; doubles each time
BACKOFF_MOST = 30.0
DOWN_AFTER = 3  # a server is passed over while this many requests in a row lost the connection
TOP_LOGPROBS = 20  # vLLM's server caps top_logprobs at --max-logprobs, 20 by default


def api_key(env_name: str | None) -> str:
    if not env_name:
        return os.environ.get("OPENAI_API_KEY", "EMPTY")  # local servers accept any key
    key = os.environ.get(env_name)
    if not key:
        raise UserError(f"--api-key-env {env_name}: that environment variable is not set")
    return key


def check_servers(base_urls: list[str], model: str | None, api_key_env: str | None,
                  timeout: float = 30.0) -> str:
    """Ask every server which models it serves; the model to use, or an error naming the URL.

    With no `--model`, a fleet that serves exactly one model (the same everywhere) uses that one.
    """
    import openai

    key = api_key(api_key_env)
    served_by_url = {}
    for url in base_urls:
        client = openai.OpenAI(base_url=url, api_key=key, timeout=timeout, max_retries=1)
        try:
            served_by_url[url] = [m.id for m in client.models.list()]
        except openai.APIStatusError as err:
            raise UserError(f"--base-url {url}: the server answered HTTP {err.status_code} to "
                            f"GET /models: {_short(err)}") from None
        except openai.APIError as err:
            raise UserError(f"--base-url {url}: cannot reach an OpenAI-compatible server there "
                            f"({_short(err)}). Is it running, and does the URL end in /v1?") \
                from None
        finally:
            client.close()
    if model is None:
        names = {name for served in served_by_url.values() for name in served}
        if len(names) != 1:
            raise UserError(f"no --model given and the servers serve {sorted(names) or 'none'}; "
                            f"pass --model with one of them")
        return names.pop()
    for url, served in served_by_url.items():
        if model not in served:
            raise UserError(f"--base-url {url} does not serve --model {model!r}; it serves: "
                            f"{', '.join(served) or 'nothing'}")
    return model


def check_logprobs(base_urls: list[str], model: str, api_key_env: str | None,
                   options: tuple[str, ...], timeout: float = 60.0) -> None:
    """Ask each server one multiple-choice question; refuse one that returns no logprobs."""
    import openai

    key = api_key(api_key_env)
    question = [{"role": "user", "content": f"Answer with one letter: {' or '.join(options)}."}]
    for url in base_urls:
        client = openai.OpenAI(base_url=url, api_key=key, timeout=timeout, max_retries=1)
        try:
            response = client.chat.completions.create(model=model, messages=question,
                                                      max_tokens=1, temperature=0.0,
                                                      logprobs=True, top_logprobs=TOP_LOGPROBS)
        except openai.APIError as err:
            raise UserError(f"judge at {url}: a request with logprobs=True, top_logprobs="
                            f"{TOP_LOGPROBS} failed: {_short(err)}") from None
        finally:
            client.close()
        if _option_logprobs(response.choices[0], options) is None:
            raise UserError(f"judge at {url} ({model}) returned no log-probabilities; a judge "
                            f"needs `logprobs`/`top_logprobs` (vLLM, SGLang and OpenAI give "
                            f"them)")


@dataclass
class _Server:
    url: str
    client: object
    in_flight: int = 0
    lost_in_a_row: int = 0  # requests in a row that ended without a connection


class OpenAIEngine:
    name = "openai"

    def __init__(self, base_urls: list[str], model: str, api_key_env: str | None = None,
                 max_concurrency: int = 64, timeout: float = 600.0, max_retries: int = 6) -> None:
        import openai

        key = api_key(api_key_env)
        self.model = model
        self.capacity = max_concurrency
        self.timeout, self.max_retries = timeout, max_retries
        self.servers = [_Server(url, openai.AsyncOpenAI(base_url=url, api_key=key,
                                                        timeout=timeout, max_retries=0))
                        for url in base_urls]
        self._slots: asyncio.Semaphore | None = None  # made inside the running loop
        self._turn = 0
        self.retries = 0

    # -- the Engine protocol -------------------------------------------------------------

    async def complete(self, request: Request) -> Completion:
        import openai

        if self._slots is None:
            self._slots = asyncio.Semaphore(self.capacity)
        async with self._slots:
            last_error: Exception | None = None
            for attempt in range(self.max_retries + 1):
                if attempt:
                    self.retries += 1
                    await asyncio.sleep(self._backoff(attempt, last_error))
                server = self._pick()
                server.in_flight += 1
                try:
                    response = await server.client.chat.completions.create(
                        **self._arguments(request))
                except openai.APIConnectionError as err:  # timeouts too
                    server.lost_in_a_row += 1
                    last_error = err
                    continue
                except (openai.RateLimitError, openai.InternalServerError) as err:
                    server.lost_in_a_row, last_error = 0, err
                    continue
                except openai.APIStatusError as err:  # other 4xx: the request itself is refused
                    server.lost_in_a_row = 0
                    return Completion.failed(_refusal_reason(err))
                finally:
                    server.in_flight -= 1
                server.lost_in_a_row = 0
                return self._to_completion(response, request)
            if isinstance(last_error, openai.APIConnectionError) and not await self._any_up():
                raise EngineFailure(f"no server answers any more: "
                                    f"{', '.join(s.url for s in self.servers)} (last error: "
                                    f"{_short(last_error)})") from last_error
            return Completion.failed(f"server_error: {self.max_retries} retries, last: "
                                     f"{_kind(last_error)}: {_short(last_error)}")

    def describe(self) -> dict:
        import openai

        return {"backend": self.name, "model": model_name(self.model),
                "base_urls": [s.url for s in self.servers], "openai_version": openai.__version__,
                "max_concurrency": self.capacity, "request_timeout": self.timeout,
                "max_retries": self.max_retries}

    def close(self) -> None:
        self.servers = []  # the clients' connection pools close with the event loop

    # -- helpers -------------------------------------------------------------------------

    def _pick(self) -> _Server:
        """The live server with the fewest requests in flight; ties go round robin."""
        live = [s for s in self.servers if s.lost_in_a_row < DOWN_AFTER] or self.servers
        self._turn += 1
        ordered = live[self._turn % len(live):] + live[:self._turn % len(live)]
        return min(ordered, key=lambda s: s.in_flight)

    async def _any_up(self) -> bool:
        """Whether any server still lists its models: a request that ran out of retries on a
        live fleet is one reject; on a dead one the run must stop and be resumed later."""
        for server in self.servers:
            try:
                await server.client.models.list(timeout=min(self.timeout, 10.0))
                return True
            except Exception:  # noqa: BLE001 - any failure means "not up"
                continue
        return False

    def _backoff(self, attempt: int, error: Exception | None) -> float:
        ceiling = min(BACKOFF_MOST, BACKOFF_FIRST * 2 ** (attempt - 1))
        after = _retry_after(error)
        return max(after or 0.0, random.uniform(0, ceiling))

    def _arguments(self, request: Request) -> dict:
        arguments = dict(model=self.model, messages=request.messages)
        if request.seed is not None:
            arguments["seed"] = request.seed
        if request.options:
            return dict(arguments, max_tokens=1, temperature=0.0, logprobs=True,
                        top_logprobs=TOP_LOGPROBS)
        sampling = request.sampling
        return dict(arguments, max_tokens=sampling.max_tokens, temperature=sampling.temperature,
                    top_p=sampling.top_p)

    @staticmethod
    def _to_completion(response, request: Request) -> Completion:
        choice = response.choices[0]
        usage = response.usage
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        option_logprobs = _option_logprobs(choice, request.options) if request.options else None
        return Completion(text=choice.message.content or "",
                          prompt_tokens=usage.prompt_tokens if usage else 0,
                          output_tokens=usage.completion_tokens if usage else 0,
                          finish_reason=choice.finish_reason or "stop",
                          cached_tokens=(getattr(details, "cached_tokens", None) or 0),
                          option_logprobs=option_logprobs)


def _option_logprobs(choice, options: tuple[str, ...]) -> dict[str, float] | None:
    """Each option's log-probability at the first answer position, from `top_logprobs`.

    Spellings of one option (" A", "A") are added up. An option absent from the top list gets
    the smallest listed log-probability: an upper bound, which keeps the renormalised preference
    conservative rather than certain.
    """
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    top = content[0].top_logprobs or []
    floor = min((t.logprob for t in top), default=-100.0)
    found: dict[str, list[float]] = {o: [] for o in options}
    for entry in top:
        key = entry.token.strip().strip("()")
        if key in found:
            found[key].append(entry.logprob)
    return {o: _logsumexp(v) if v else floor for o, v in found.items()}


def _logsumexp(values: list[float]) -> float:
    most = max(values)
    return most + math.log(sum(math.exp(v - most) for v in values))


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(float(value), BACKOFF_MOST) if value else None
    except ValueError:
        return None


def _refusal_reason(err) -> str:
    text = _short(err).lower()
    if "context length" in text or "maximum context" in text or "too long" in text:
        return "too_long"
    return f"http_{err.status_code}: {_short(err)}"


def _kind(err: Exception | None) -> str:
    status = getattr(err, "status_code", None)
    return f"http_{status}" if status else "connection"


def _short(err: Exception | None) -> str:
    return " ".join(str(err).split())[:200]
