"""The checks as an RL reward (`--reward checks`): a completion earns the share of its prompt's
checks it passes, a dense figure between 0 and 1 that needs no model to compute.

A prompt's checks: its own instruction list when its row is in IFEval's format
(`instruction_id_list` + `kwargs`), otherwise every check of the --principles (each principle's,
then the constitution's), since RL has no per-prompt principle draw to follow. Of those, only the
checks whose `when:` the prompt matches (selfalign.checks.when): the reward is the share of the
APPLICABLE checks passed, and a prompt none of whose checks applies gets None, which TRL leaves
out of the reward (and the watch leaves out of its pass rate).
"""

from __future__ import annotations

from typing import Any, Sequence

from selfalign.checks import Check
from selfalign.checks.instructions import carries_instructions, instruction_checks
from selfalign.checks.when import prompt_fields
from selfalign.errors import UserError
from selfalign.records import PromptRecord

REWARD_NAME = "checks"  # metrics: rewards/checks/mean


def prompt_checks(records: Sequence[PromptRecord],
                  principles: Sequence[str]) -> dict[str, tuple[Check, ...]]:
    """Each prompt's checks by id; UserError for a prompt left with none, or a bad row."""
    shared: tuple[Check, ...] = ()
    if principles:
        from selfalign.constitution import load_constitution
        from selfalign.eval.checks import applying_checks

        constitution = load_constitution(list(principles))
        shared = tuple(applying_checks(constitution, constitution.principles)[1])
    by_prompt = {}
    for record in records:
        if carries_instructions(record.metadata):
            checks = tuple(instruction_checks(record.metadata,
                                              f"--prompts {record.source}:{record.line}"))
        else:
            checks = shared
        if not checks:  # no check at all, before `when:`: a mistake in the command
            where = (f"--principles {', '.join(principles)} lists no `checks:`" if principles
                     else "no --principles were given")
            raise UserError(f"--reward checks: prompt {record.id!r} ({record.source}:"
                            f"{record.line}) has no checks: it has no `instruction_id_list` and "
                            f"{where}")
        fields = prompt_fields(record)
        by_prompt[record.id] = tuple(check for check in checks if check.applies(fields))
    return by_prompt


class ChecksReward:
    """Reward function `f(prompts, completions, prompt_id, **kw) -> shares` for TRL, which hands
    a callable the dataset's extra columns (here `prompt_id`) aligned with the completions."""

    __name__ = REWARD_NAME

    def __init__(self, checks: dict[str, tuple[Check, ...]], texts: dict[str, str]):
        self.checks, self.texts = checks, texts

    def passes(self, prompt_id: str, reply: str) -> list[bool]:
        return [check.verify(reply, self.texts[prompt_id]).passed
                for check in self.checks[prompt_id]]

    def __call__(self, prompts, completions, prompt_id: Sequence[str],
                 **_: Any) -> list[float | None]:
        shares: list[float | None] = []
        for pid, completion in zip(prompt_id, completions, strict=True):
            passed = self.passes(pid, reply_text(completion))
            shares.append(sum(passed) / len(passed) if passed else None)  # None: none applies
        return shares

    def pass_rate(self, prompt_ids: Sequence[str], replies: Sequence[str]) -> float | None:
        """The share of prompts whose reply passes every one of its checks (as eval counts),
        over the prompts with a check that applies; None when no prompt has one."""
        passed = [all(self.passes(pid, reply)) for pid, reply in zip(prompt_ids, replies,
                                                                     strict=True)
                  if self.checks[pid]]
        return sum(passed) / len(passed) if passed else None


def reply_text(completion) -> str:
    """The reply of a conversational completion (a message list) or a plain one."""
    return completion[-1]["content"] if isinstance(completion, list) else completion


def checks_reward(records: Sequence[PromptRecord], principles: Sequence[str]) -> ChecksReward:
    return ChecksReward(prompt_checks(records, principles), {r.id: r.prompt for r in records})
