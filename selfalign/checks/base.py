"""What a check is: a kind with typed arguments and one method that gives a verdict on a reply.

A check is a judge that is never wrong about what it checks. Each kind is one small class named
after it (`NumberOfWords` for `length_constraints:number_words`), declaring its arguments once:
the registry builds the JSON Schema, `checks list` and the docs from those declarations, so the
instruction a model is shown and the rule that checks it cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping


@dataclass(frozen=True)
class Verdict:
    """Whether a reply passes, and why, in words a person and a revision turn can read
    ("Your reply has 57 words; it must have fewer than 40.")."""

    passed: bool
    message: str


@dataclass(frozen=True)
class Argument:
    """One argument of a kind: its JSON type, whether it must be given, and what it means."""

    type: str  # a JSON Schema type: "string", "integer", "number", "boolean", "array"
    help: str
    required: bool = True
    choices: tuple[Any, ...] = ()  # allowed values, when the argument is one of a few
    items: str | None = None  # element type of an "array"
    minimum: float | None = None
    default: Any = None


class CheckArgumentError(ValueError):
    """A check's mapping is wrong; `field` names the key (`kind` or an argument)."""

    def __init__(self, field: str | None, message: str):
        self.field = field
        super().__init__(message)


class Check:
    """Base of every kind. Subclasses set `kind`, `arguments`, `example` and `verify`."""

    kind: ClassVar[str]
    arguments: ClassVar[dict[str, Argument]] = {}
    example: ClassVar[dict[str, Any]] = {}  # arguments that make a sensible example
    summary: ClassVar[str] = ""  # one line for `checks list`
    when: Any = None  # selfalign.checks.when.When: the prompts it applies to (None: every one)

    def __init__(self, **args: Any):
        self.args = dict(args)

    def applies(self, prompt: Mapping[str, Any]) -> bool:
        """Whether this check applies to a prompt with these fields (its `when:`)."""
        return self.when is None or self.when.matches(prompt)

    def verify(self, reply: str, prompt: str) -> Verdict:
        """The strict verdict on `reply`, an answer to `prompt`."""
        raise NotImplementedError

    def instruction(self) -> str:
        """What the check asks, worded as an instruction a model can be given."""
        raise NotImplementedError

    def loose_can_pass(self, strict: Verdict) -> bool:
        """Whether a view of the reply with lines or `*`s taken out could pass when the reply
        itself gave `strict`; a kind that knows it cannot (a count that only shrinks) says so
        and spares loose scoring seven checks."""
        return True

    def spec(self) -> dict[str, Any]:
        """The mapping this check was built from, as a principle file writes it."""
        when = {"when": self.when.spec()} if self.when is not None else {}
        return {"kind": self.kind, **self.args, **when}

    def __repr__(self) -> str:
        return f"Check({self.spec()!r})"


def spec_arguments(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments of a check mapping: everything but `kind` and `when`."""
    return {key: value for key, value in spec.items() if key not in ("kind", "when")}
