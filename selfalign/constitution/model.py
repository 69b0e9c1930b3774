"""Typed, frozen results of loading a constitution, and the deterministic principle draw."""

from __future__ import annotations

import bisect
import difflib
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from selfalign.checks import Check
from selfalign.errors import Problem, UserError
from selfalign.stable_hash import unit_hash


class ConstitutionError(UserError):
    """Every problem found while loading, one per line."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def unknown_name(kind: str, name: str, available: list[str]) -> str:
    """The message for a name that names nothing: nearest match first, then everything there is."""
    close = difflib.get_close_matches(name, available, n=1, cutoff=0.6)
    hint = f" Did you mean: {close[0]}?" if close else ""
    listing = ", ".join(sorted(available)) or "(none loaded)"
    return f"Unknown {kind} '{name}'.{hint} Available: {listing}"


@dataclass(frozen=True)
class Exemplar:
    """A worked few-shot conversation: prompt, flawed response, critique, revision."""

    name: str
    principle: str
    prompt: str
    response: str
    critique: str
    revision: str
    path: str
    # Earlier (role, text) turns of a multi-turn exemplar, user first, ending with the assistant.
    context: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Principle:
    """One principle file: the critique and revision requests the model is given."""

    name: str
    critique_request: str
    revision_request: str
    comparison: str | None
    description: str | None
    tags: tuple[str, ...]
    weight: float
    version: str | None
    examples: tuple[Exemplar, ...]
    path: str
    sha256: str
    # Rules code verifies on every answer and revision under this principle (selfalign.checks).
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Constitution:
    """The principles a run draws from, its shared few-shot exemplars and its settings."""

    principles: tuple[Principle, ...]
    exemplars: tuple[Exemplar, ...]
    system_prompt: str | None
    rounds: int | None
    files: dict[str, str]
    manifests: tuple[str, ...] = ()
    # Checks the manifests apply to every principle, beside each principle's own.
    checks: tuple[Check, ...] = ()
    # Cumulative weights, computed once so a draw is a binary search.
    _cumulative: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        cumulative = tuple(itertools.accumulate(p.weight for p in self.principles))
        object.__setattr__(self, "_cumulative", cumulative)

    def principle(self, name: str) -> Principle:
        for candidate in self.principles:
            if candidate.name == name:
                return candidate
        message = unknown_name("principle", name, [p.name for p in self.principles])
        where = ", ".join(self.manifests) or "constitution"
        raise ConstitutionError([Problem(where, None, None, message)])

    def draw(self, seed: int, prompt_id: str, round_index: int) -> Principle:
        """Weighted draw that depends only on its arguments, so a resumed run draws the same."""
        # sha256, not hash(): Python salts str hashes per process.
        unit = unit_hash(json.dumps([seed, str(prompt_id), round_index]))
        return self.principles[weighted_index(self._cumulative, unit)]

    def fewshot_messages(self) -> list[dict[str, str]]:
        """The exemplar turns that open every conversation (identical, so prefix caches reuse them)."""
        by_name = {p.name: p for p in self.principles}
        messages = []
        for ex in self.exemplars:
            principle = by_name[ex.principle]
            turns = (ex.prompt, ex.response, principle.critique_request, ex.critique,
                     principle.revision_request, ex.revision)
            messages += [{"role": role, "content": text} for role, text in ex.context]
            messages += [{"role": role, "content": text}
                         for role, text in zip(itertools.cycle(("user", "assistant")), turns)]
        return messages


def weighted_index(cumulative: Sequence[float], unit: float) -> int:
    """The index a number in [0, 1) falls on, given cumulative weights (a binary search)."""
    index = bisect.bisect_right(cumulative, unit * cumulative[-1])
    return min(index, len(cumulative) - 1)


def summarize(constitution: Constitution) -> str:
    """One line: principles per tag, exemplars, manifests."""
    tags = Counter(tag for p in constitution.principles for tag in (p.tags or ("untagged",)))
    per_tag = ", ".join(f"{tag} {count}" for tag, count in sorted(tags.items()))
    return (f"{_count(len(constitution.principles), 'principle')} ({per_tag}), "
            f"{_count(len(constitution.exemplars), 'exemplar')}, "
            f"{_count(len(constitution.manifests), 'manifest')}, "
            f"{_count(len(constitution.files), 'file')}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
