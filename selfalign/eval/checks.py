"""Judge-free figures: both models' answers scored with the constitution's checks.

Which checks apply to a prompt: those of the principles drawn for it (the same draw the judge
uses, so a prompt is judged and checked under the same principles) and the constitution's own
(a manifest's `checks:`, which apply to every prompt). A prompt none of whose principles has a
check is not counted.

A check whose `when:` the prompt does not match (selfalign.checks.when) does not apply to it: it
is not run, is neither passed nor failed, and is counted under `not_applicable`.

How the figures count: over the paired prompts, those both models answered. `overall` counts a
prompt as passed when its answer passes every check that applies to it; `by_check` counts each
check over the prompts it applies to. The difference is the candidate's rate minus the
baseline's, and McNemar's exact test (two-sided, on the prompts where exactly one model passed)
asks whether it could be chance.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from selfalign.checks import CONSTITUTION, Check, check_ids, shared_not_held
from selfalign.checks.when import prompt_fields
from selfalign.constitution import Constitution, Principle
from selfalign.eval.outcomes import sign_test_p, wilson_interval
from selfalign.eval.results import MODEL_ROLES, PromptResult

COUNTED = ("over the prompts both models answered; overall: a prompt passes when its answer "
           "passes every check that applies to it; by_check: each check over the prompts it "
           "applies to; interval: Wilson score, 95%; mcnemar_p: exact, two-sided")

Draw = Callable[[Constitution, int, str, str, int], list[Principle]]


def applying_checks(constitution: Constitution,
                    principles: Sequence[Principle]) -> tuple[list[str], list[Check]]:
    """The ids and checks of `principles` (each's own) and then the constitution's, less any
    a principle already holds (selfalign.checks.shared_not_held)."""
    ids: list[str] = []
    checks: list[Check] = []
    for p in principles:
        ids += check_ids(p.name, p.checks)
        checks += p.checks
    shared = tuple(getattr(constitution, "checks", ()))
    shared_ids, shared = shared_not_held(check_ids(CONSTITUTION, shared), shared, checks)
    return ids + shared_ids, checks + shared


def has_checks(constitution: Constitution) -> bool:
    return bool(getattr(constitution, "checks", ())) or any(
        getattr(p, "checks", ()) for p in constitution.principles)


def score_checks(results: Iterable[PromptResult], constitution: Constitution, draw: Draw,
                 seed: int, pair_key: str, per_prompt: int) -> None:
    """Fill in each result's check ids and, per answered model, which of its checks pass."""
    for result in results:
        record = result.record
        principles = draw(constitution, seed, record.id, pair_key, per_prompt)
        ids, checks = applying_checks(constitution, principles)
        fields = prompt_fields(record)
        applies = [check.applies(fields) for check in checks]
        result.checks_not_applicable = tuple(i for i, ok in zip(ids, applies) if not ok)
        ids = [i for i, ok in zip(ids, applies) if ok]
        checks = [check for check, ok in zip(checks, applies) if ok]
        result.check_ids = tuple(ids)
        for role in MODEL_ROLES:
            if checks and result.answered(role):
                reply = result.answer(role).text
                result.check_passes[role] = tuple(check.verify(reply, record.prompt).passed
                                                  for check in checks)


def checks_block(results: Sequence[PromptResult]) -> dict | None:
    """eval.json's `checks`: overall and per check, both models, or None when nothing applied."""
    paired = [r for r in results
              if r.check_ids and all(role in r.check_passes for role in MODEL_ROLES)]
    if not paired:
        return None
    not_applicable: dict[str, int] = {}
    for r in results:
        for check_id in r.checks_not_applicable:
            not_applicable[check_id] = not_applicable.get(check_id, 0) + 1
    overall = paired_figures([(all(r.check_passes["baseline"]), all(r.check_passes["candidate"]))
                              for r in paired])
    by_check: dict[str, list[tuple[bool, bool]]] = {}
    for r in paired:
        for index, check_id in enumerate(r.check_ids):
            by_check.setdefault(check_id, []).append(
                (r.check_passes["baseline"][index], r.check_passes["candidate"][index]))
    return {"prompts": len(paired),
            "unpaired": sum(1 for r in results if r.check_ids) - len(paired),
            "counted": COUNTED,
            "overall": overall,
            "by_check": {check_id: paired_figures(pairs) for check_id, pairs in by_check.items()},
            "not_applicable": {"prompts_with_none_applicable": sum(
                                   1 for r in results if r.checks_not_applicable and not r.check_ids),
                               "by_check": dict(sorted(not_applicable.items()))}}


def paired_figures(pairs: Sequence[tuple[bool, bool]]) -> dict:
    """Both models' pass rates over the same prompts, from (baseline passed, candidate passed)
    per prompt, with their difference and McNemar's exact p."""
    baseline = pass_rate(sum(b for b, _ in pairs), len(pairs))
    candidate = pass_rate(sum(c for _, c in pairs), len(pairs))
    candidate_only = sum(1 for b, c in pairs if c and not b)
    baseline_only = sum(1 for b, c in pairs if b and not c)
    return {"baseline": baseline, "candidate": candidate,
            "difference": round(candidate["rate"] - baseline["rate"], 6),
            "candidate_only": candidate_only, "baseline_only": baseline_only,
            "mcnemar_p": significant(mcnemar_p(candidate_only, baseline_only))}


def pass_rate(passed: int, total: int) -> dict:
    """A share with its Wilson 95% interval; rate None when there is nothing to count."""
    rate = passed / total if total else None
    return {"passed": passed, "total": total,
            "rate": None if rate is None else round(rate, 6),
            "interval": [round(x, 6) for x in wilson_interval(passed, total)] if total else None}


def mcnemar_p(candidate_only: int, baseline_only: int) -> float:
    """McNemar's exact test: under no difference each discordant prompt is a fair coin, so it is
    the two-sided binomial (sign) test of one count against the other."""
    return sign_test_p(candidate_only, baseline_only)


def significant(p: float) -> float:
    """A p-value kept to six significant digits: rounding to decimals would print a p of 1e-35
    (117 discordant prompts one way, none the other) as 0."""
    return float(f"{p:.6g}")
