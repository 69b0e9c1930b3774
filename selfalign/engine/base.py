"""The engine interface: one request in, one completion back, as soon as it is done.

Callers keep many requests in flight at once (one coroutine per conversation) and the engine
batches whatever is in flight; no caller waits for an unrelated request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from selfalign.errors import UserError

Message = dict[str, str]
Conversation = list[Message]


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample one completion."""

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
class Request:
    """One chat completion to make.

    `seed` makes a sampled answer depend only on the request, never on what else is in flight.
    `options` turns the request into a multiple-choice question: the engine returns the
    log-probability of each option (a string that must be one token) as the first token of the
    answer, in `Completion.option_logprobs`; the sampled text is then one token at most.
    `stage` labels the request for progress counters ("answer", "critique", "judge", ...).
    """

    messages: Conversation
    sampling: SamplingSettings
    seed: int | None = None
    options: tuple[str, ...] = ()
    stage: str = ""


@dataclass(frozen=True)
class Completion:
    """One assistant turn, or the reason this request could not be answered (`error` set)."""

    text: str
    prompt_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = "stop"
    cached_tokens: int = 0  # prompt tokens served from the prefix cache
    error: str | None = None  # short reason code, e.g. "too_long"; text is "" then
    option_logprobs: dict[str, float] | None = None  # for requests with `options`

    @classmethod
    def failed(cls, reason: str, prompt_tokens: int = 0) -> "Completion":
        return cls(text="", prompt_tokens=prompt_tokens, finish_reason="error", error=reason)


def option_token_ids(tokenizer, options: tuple[str, ...], model: str = "") -> list[int]:
    """The token id of each option of a multiple-choice request; an option the tokenizer does
    not keep as one token is refused, since the answer is read from one position."""
    ids = []
    for option in options:
        encoded = tokenizer.encode(option, add_special_tokens=False)
        if len(encoded) != 1:
            raise UserError(f"judge model {model}: its tokenizer splits the option letter "
                            f"{option!r} into {len(encoded)} tokens {encoded}; the judge reads "
                            f"one token per option. Choose another --judge-model")
        ids.append(encoded[0])
    return ids


class EngineFailure(RuntimeError):
    """The engine as a whole broke (not one request): the run must stop."""


class Engine(Protocol):
    """Answers requests one at a time, many in flight; batching is the backend's business."""

    name: str
    model: str
    capacity: int  # requests it can usefully run at once (for how much work callers keep open)

    async def complete(self, request: Request) -> Completion:
        """The completion of one request; a request that cannot be answered carries `error`.

        Raises EngineFailure only when the engine as a whole cannot go on.
        """
        ...

    def describe(self) -> dict:
        """Backend, model and settings, for the manifest."""
        ...

    def close(self) -> None:
        ...
