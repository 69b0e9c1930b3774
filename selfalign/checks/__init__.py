"""Checks: rules a reply can be verified against by code, with no judge.

IFEval's 25 verifiable instructions (arXiv 2311.07911) and selfalign's own rules, one small class
per kind. Principle files list them under `checks:`; `generate` runs them on every answer and
revision, `eval` and `train rl --reward checks` score with them, `selfalign checks score` scores
any file of replies.

    build_check(spec) -> Check          a principle's `- kind: ...` mapping, validated
    check.verify(reply, prompt)         strict Verdict(passed, message)
    loose_verdict(check, reply, prompt) IFEval's loose verdict (eight views of the reply)
"""

from selfalign.checks.base import Argument, Check, CheckArgumentError, Verdict
from selfalign.checks.registry import (CONSTITUTION, build_check, check_ids, check_kinds,
                                      checks_from_instructions, loose_verdict, shared_not_held)

__all__ = ["CONSTITUTION", "Argument", "Check", "CheckArgumentError", "Verdict", "build_check",
           "check_ids", "check_kinds", "checks_from_instructions", "loose_verdict",
           "shared_not_held"]
