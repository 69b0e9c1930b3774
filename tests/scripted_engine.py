"""A scripted stand-in engine for fast unit tests of stages, the flow and the runner.

It answers from the request it is given, deterministically, so tests can pin exact rows. It
lives in tests/ on purpose: the CLI cannot choose it.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Callable

from selfalign.engine.base import Completion, EngineFailure, Request


def asks(request: Request, stage: str, text: str) -> bool:
    """Whether this request is `stage` ("answer", "critique r1", ...) of the prompt with `text`."""
    return request.stage == stage and any(text in m["content"] for m in request.messages
                                          if m["role"] == "user")


def even_odds(request: Request) -> dict[str, float]:
    return {option: math.log(1 / len(request.options)) for option in request.options}


@dataclass
class ScriptedEngine:
    name: str = "scripted"
    model: str = "scripted-stand-in"
    capacity: int = 64
    too_long_marker: str = "TOO-LONG"  # a request containing this is refused like vLLM would
    fail_when: Callable[[Request], bool] | None = None  # the whole engine breaks on such a request
    on_call: Callable[[Request], None] | None = None  # hook, e.g. to send a signal mid-run
    echo_revision: bool = False  # "revise" by repeating the answer: chosen == rejected
    vary_by_seed: bool = False  # first answers end in "#<seed % 97>", so samples differ
    record_calls: bool = True  # off for long streams, where keeping every request would grow memory
    # Log-probabilities of the options of a multiple-choice request (a judge question).
    option_logprobs: Callable[[Request], dict[str, float]] = even_odds
    delay: Callable[[Request], float] | None = None  # seconds to "think", to shuffle finish order
    calls: list[Request] = field(default_factory=list)
    count: int = 0
    in_flight: int = 0
    most_in_flight: int = 0

    async def complete(self, request: Request) -> Completion:
        self.count += 1
        if self.record_calls:
            self.calls.append(request)
        if self.on_call:
            self.on_call(request)
        if self.fail_when is not None and self.fail_when(request):
            raise EngineFailure("scripted engine failure")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay(request) if self.delay else 0)
            return self._answer(request)
        finally:
            self.in_flight -= 1

    def _answer(self, request: Request) -> Completion:
        conversation = request.messages
        tokens = sum(len(m["content"].split()) for m in conversation)
        if any(self.too_long_marker in m["content"] for m in conversation):
            return Completion.failed("too_long", tokens)
        if request.options:
            logprobs = self.option_logprobs(request)
            best = max(logprobs, key=logprobs.get, default="")  # {}: a judge with no logprobs
            return Completion(text=best, prompt_tokens=tokens, output_tokens=1,
                              option_logprobs=logprobs)
        if request.stage == "answer":
            text = f"first answer to: {conversation[-1]['content']}"
            if self.vary_by_seed:
                text += f" #{request.seed % 97}"
        elif request.stage.startswith("critique"):
            text = f"critique of: {conversation[-2]['content']}"
        elif request.stage.startswith("revise"):
            answer = conversation[-4]["content"]  # answer, critique request, critique, revise request
            text = answer if self.echo_revision else (
                f"Sure, here is a revised response:\nrevised({answer})")
        else:
            text = f"reply to: {conversation[-1]['content']}"
        return Completion(text=text, prompt_tokens=tokens, output_tokens=len(text.split()),
                          finish_reason="stop", cached_tokens=tokens // 2)

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.model}

    def close(self) -> None:
        pass
