"""A scripted stand-in engine for fast unit tests of stages and the runner.

It answers from the conversation it is given, deterministically, so tests can pin exact rows.
It lives in tests/ on purpose: the CLI cannot choose it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from selfalign.engine.base import Completion, EngineFailure, SamplingSettings


@dataclass
class ScriptedEngine:
    name: str = "scripted"
    model: str = "scripted-stand-in"
    too_long_marker: str = "TOO-LONG"  # a conversation containing this is refused like vLLM would
    fail_on_call: int | None = None  # the whole engine breaks on this call (1-based)
    on_call: Callable[[int], None] | None = None  # hook, e.g. to send a signal mid-run
    echo_revision: bool = False  # "revise" by repeating the answer: chosen == rejected
    record_calls: bool = True  # off for long streams, where keeping every call would grow memory
    calls: list[tuple[str, list[list[dict]]]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)

    def chat(self, conversations, sampling: SamplingSettings, desc: str = ""):
        self.calls.append((desc, [list(c) for c in conversations] if self.record_calls else []))
        if self.on_call:
            self.on_call(len(self.calls))
        if self.fail_on_call is not None and len(self.calls) >= self.fail_on_call:
            raise EngineFailure("scripted engine failure")
        return [self._answer(c, desc) for c in conversations]

    def _answer(self, conversation, desc: str) -> Completion:
        tokens = sum(len(m["content"].split()) for m in conversation)
        if any(self.too_long_marker in m["content"] for m in conversation):
            return Completion.failed("too_long", tokens)
        # Stage by the label the stages give each call: generate / critique rN / revise rN.
        if desc == "generate":
            text = f"first answer to: {conversation[-1]['content']}"
        elif desc.startswith("critique"):
            text = f"critique of: {conversation[-2]['content']}"
        else:
            answer = conversation[-4]["content"]  # answer, critique request, critique, revise request
            text = answer if self.echo_revision else (
                f"Sure, here is a revised response:\nrevised({answer})")
        return Completion(text=text, prompt_tokens=tokens, output_tokens=len(text.split()),
                          finish_reason="stop", cached_tokens=tokens // 2)

    def reseed(self, seed: int) -> None:
        self.seeds.append(seed)

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.model}

    def close(self) -> None:
        pass
