"""Hand-made judgments, principles and a fake judge for the eval tests.

`FakeJudgment` carries the fields of `selfalign.stages.judge.Judgment`, which the eval reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from selfalign.constitution import Principle
from selfalign.engine.base import Request, SamplingSettings
from selfalign.eval.run import Judge

JUDGE_SAMPLING = SamplingSettings(max_tokens=1, temperature=0.0)


@dataclass(frozen=True)
class FakeJudgment:
    preference: float | None
    principle_ids: tuple[str, ...]
    position_consistent: bool
    first_position_probs: tuple[float, ...]
    prompt_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None


def principle(name: str, *tags: str) -> Principle:
    return Principle(name=name, critique_request="c", revision_request="r",
                     comparison=f"Which reply is better for {name}?", description=None,
                     tags=tuple(tags), weight=1.0, version=None, examples=(), path=f"{name}.yaml",
                     sha256="0" * 64)


def judgment(preference: float | None, consistent: bool = True, names=("p",),
             error: str | None = None) -> FakeJudgment:
    probs = () if preference is None else (preference, 1 - preference)
    return FakeJudgment(preference, tuple(names), consistent, probs, 10, 2, error)


def write_principles(folder: Path) -> Path:
    """Two principles with comparison questions: one harmless, one helpful."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, tag in (("no-harm", "harmless"), ("be-useful", "helpful")):
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\ntags: [{tag}]\ncritique_request: Critique it.\n"
            f"revision_request: Revise it.\ncomparison: Which reply is better?\n",
            encoding="utf-8")
    return folder


def write_prompts(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class FakeJudge:
    """Preferences from a table by prompt id; asks the engine once per order, as a judge does."""

    def __init__(self, preferences: dict[str, tuple[float | None, bool]],
                 principle_of: dict[str, str] | None = None):
        self.preferences = preferences
        self.principle_of = principle_of or {}
        self.calls: list[tuple] = []
        self.checked = 0

    def as_judge(self) -> Judge:
        return Judge(compare=self.compare, draw=self.draw, check=self.check)

    def check(self, constitution) -> None:
        self.checked += 1

    def draw(self, constitution, seed, prompt_id, pair_key, n):
        name = self.principle_of.get(prompt_id, constitution.principles[0].name)
        return [constitution.principle(name)][:n]

    async def compare(self, ask, context, first, second, principles, seed):
        self.calls.append((context, first, second, tuple(p.name for p in principles), seed))
        for a, b in ((first, second), (second, first)):
            await ask(Request(context + [{"role": "user", "content": f"(A) {a}\n(B) {b}"}],
                              JUDGE_SAMPLING, options=("A", "B"), stage="judge"))
        preference, consistent = self.preferences[context[-1]["content"]]
        if preference is None:
            return judgment(None, names=[p.name for p in principles], error="unreadable")
        return judgment(preference, consistent, [p.name for p in principles])
