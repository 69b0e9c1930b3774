"""The engine interface every stage talks to, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

Message = dict[str, str]
Conversation = list[Message]


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample completions; the same for every request of one stage call."""

    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class Completion:
    """One assistant turn, or the reason this request could not be answered (`error` set)."""

    text: str
    prompt_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = "stop"
    cached_tokens: int = 0  # prompt tokens served from the prefix cache
    error: str | None = None  # short reason code, e.g. "too_long"; text is "" then

    @classmethod
    def failed(cls, reason: str, prompt_tokens: int = 0) -> "Completion":
        return cls(text="", prompt_tokens=prompt_tokens, finish_reason="error", error=reason)


@dataclass(frozen=True)
class StageStats:
    """What one batched engine call cost: for progress lines and the manifest."""

    requests: int
    prompt_tokens: int
    output_tokens: int
    seconds: float
    cached_prompt_tokens: int | None = None  # where the backend reports prefix-cache hits

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds if self.seconds > 0 else 0.0


class EngineFailure(RuntimeError):
    """The engine as a whole broke (not one request): the run must stop."""


class Engine(Protocol):
    """Answers a batch of conversations in one call, so the backend can batch them."""

    name: str
    model: str

    def chat(self, conversations: Sequence[Conversation], sampling: SamplingSettings,
             desc: str = "") -> list[Completion]:
        """One completion per conversation, in order; failed requests carry `error`."""
        ...

    def reseed(self, seed: int) -> None:
        """Reset the sampler so the next call draws the same numbers on every run."""
        ...

    def describe(self) -> dict:
        """Backend, model and settings, for the manifest."""
        ...

    def close(self) -> None:
        ...
