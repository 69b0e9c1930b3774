"""Prompts for `train rl`: any source `generate` reads, as conversations, split into the rows that
train (the `train` split, or every row of a source without splits) and the held-out rows of the
reward-hacking watch (the `validation` split of a prepared folder)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from selfalign.errors import UserError
from selfalign.prompts.behavior import BEHAVIOR
from selfalign.prompts.sources import read_prompts
from selfalign.records import PromptRecord, Reject

TRAIN_SPLIT = "train"
HELD_OUT_SPLIT = "validation"


@dataclass
class RLPrompts:
    """Train and held-out prompts, with what was left out and why."""

    train: list[PromptRecord] = field(default_factory=list)
    held_out: list[PromptRecord] = field(default_factory=list)
    rejects: Counter = field(default_factory=Counter)  # reason → count
    other_splits: Counter = field(default_factory=Counter)  # split → rows not used

    def record(self) -> dict:
        return {"train": len(self.train), "held_out": len(self.held_out),
                "rejected": dict(self.rejects), "unused_splits": dict(self.other_splits)}


def load_prompts(paths: list[str], held_out_limit: int) -> RLPrompts:
    """Read every source; keep train rows, and up to `held_out_limit` validation rows."""
    if not paths:
        raise UserError("no --prompts given")
    prompts = RLPrompts()
    for item in read_prompts(paths):
        if isinstance(item, Reject):
            prompts.rejects[item.reason] += 1
        elif item.split == TRAIN_SPLIT:
            prompts.train.append(item)
        elif item.split == HELD_OUT_SPLIT and len(prompts.held_out) < held_out_limit:
            prompts.held_out.append(item)
        else:
            prompts.other_splits[item.split] += 1
    if not prompts.train:
        raise UserError(f"--prompts {', '.join(paths)}: no train prompts (rows per unused split: "
                        f"{dict(prompts.other_splits)}, rejected: {dict(prompts.rejects)})")
    return prompts


def dataset_rows(records: list[PromptRecord]) -> list[dict]:
    """TRL's conversational prompt-only rows; `prompt_id` and `behavior` (comply, refuse or
    None) reach the reward functions among their keyword arguments."""
    return [{"prompt": r.conversation(), "prompt_id": r.id, BEHAVIOR: r.metadata.get(BEHAVIOR)}
            for r in records]
