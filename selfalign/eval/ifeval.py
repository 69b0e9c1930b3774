"""`eval --ifeval FILE`: both models answer a prompt file in IFEval's format (key, prompt,
instruction_id_list, kwargs), and the four figures IFEval reports are computed for each.

The four figures (arXiv 2311.07911): the share of prompts whose reply follows every one of its
instructions, and the share of instructions followed over all prompts, each strict (the reply as
it is) and loose (the reply with its first or last line or its `*`s set aside). An answer the
engine failed to give is left out and counted under `failed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from selfalign.checks import Check, loose_verdict
from selfalign.checks.instructions import IFEVAL_ID_FIELD, carries_instructions, instruction_checks
from selfalign.engine.base import Completion
from selfalign.errors import UserError
from selfalign.eval.checks import pass_rate
from selfalign.prompts.sources import FieldMap, read_prompts
from selfalign.records import PromptRecord, Reject

FIGURES = ("prompt_strict", "instruction_strict", "prompt_loose", "instruction_loose")


@dataclass(frozen=True)
class InstructedPrompt:
    """One prompt of the file and the checks of its instructions, in the file's order."""

    record: PromptRecord
    checks: tuple[Check, ...]


def load_ifeval(path: str) -> list[InstructedPrompt]:
    """Every prompt of the file with its checks; UserError names the file and line of any row
    that cannot be read or lists an unknown instruction."""
    prompts = []
    for item in read_prompts([path], FieldMap(id=IFEVAL_ID_FIELD)):
        if isinstance(item, Reject):
            raise UserError(f"--ifeval {item.source}:{item.line}: {item.detail or item.reason}")
        where = f"--ifeval {item.source}:{item.line}"
        if not carries_instructions(item.metadata):
            raise UserError(f"{where}: no `instruction_id_list`; --ifeval reads IFEval's format, "
                            f"one JSON object a line with key, prompt, instruction_id_list and "
                            f"kwargs")
        prompts.append(InstructedPrompt(item, tuple(instruction_checks(item.metadata, where))))
    if not prompts:
        raise UserError(f"--ifeval {path}: no prompts")
    return prompts


def follows(prompt: InstructedPrompt, reply: str) -> dict[str, list[bool]]:
    """Per instruction, strict and loose: whether the reply follows it."""
    text = prompt.record.prompt
    return {"strict": [check.verify(reply, text).passed for check in prompt.checks],
            "loose": [loose_verdict(check, reply, text).passed for check in prompt.checks]}


def ifeval_figures(prompts: Sequence[InstructedPrompt], answers: Sequence[Completion]) -> dict:
    """The four figures for one model's answers (in the order of `prompts`)."""
    verdicts = [follows(p, a.text) for p, a in zip(prompts, answers, strict=True)
                if a.error is None]
    figures = {"prompts": len(verdicts), "failed": len(prompts) - len(verdicts)}
    for view in ("strict", "loose"):
        per_prompt = [v[view] for v in verdicts]
        figures[f"prompt_{view}"] = pass_rate(sum(all(v) for v in per_prompt), len(per_prompt))
        figures[f"instruction_{view}"] = pass_rate(sum(sum(v) for v in per_prompt),
                                                   sum(len(v) for v in per_prompt))
    return {name: figures[name] for name in ("prompts", "failed", *FIGURES)}
