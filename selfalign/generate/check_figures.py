"""What checks did in a run: per principle and per check, the pass rate of first answers and of
kept revisions, the retries spent and their output tokens; and the run's yield.

A shard's tally (plain counts, so shards add up) goes into its ledger entry, from the workers
too; the run's figures are made from the ledger once every shard is in.

- first answers: a first answer counts under the principle drawn for its round 1; it passes a
  principle's line when it passes every check applied to it.
- kept revisions: the revision each round keeps once its retries are spent (the last try),
  under that round's principle.
- retries: each retry counts once under its round's principle, and once under every check that
  failed and so asked for it (a retry asked for two checks counts for both).
- not applicable: a check whose `when:` a prompt does not match is neither passed nor failed;
  it counts under `*_not_applicable` for each text it was not run on, and a text none of whose
  checks applied counts there under its principle instead of in its totals.
- echoes: a sample whose final revision went to rejects as `echoes_instruction` counts under its
  last round's principle.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

from selfalign.checks import CONSTITUTION
from selfalign.stages.echo import ECHOES_INSTRUCTION
from selfalign.stages.sample import CheckVerdict, Sample

_COUNTS = ("first_passed", "first_total", "kept_passed", "kept_total", "retries",
           "retry_output_tokens", "first_not_applicable", "kept_not_applicable", "echoed")


def _zero() -> dict[str, int]:
    return dict.fromkeys(_COUNTS, 0)


def shard_tally(samples: Sequence[Sample], statuses: Sequence[str] = ()
                ) -> dict[str, dict[str, dict[str, int]]]:
    """Counts by principle and by check id over one shard's samples (empty: no check ran);
    `statuses` are the samples' (generate/rows.py), for the echoes."""
    principles: dict[str, dict[str, int]] = defaultdict(_zero)
    checks: dict[str, dict[str, int]] = defaultdict(_zero)
    for sample, status in zip(samples, statuses):
        if status == ECHOES_INSTRUCTION:
            principles[_principle_of(sample, len(sample.rounds))]["echoed"] += 1
    for sample in samples:
        kept = kept_verdicts(sample)
        for round_index, verdicts in kept.items():
            owner = _principle_of(sample, max(round_index, 1))
            stage = _stage(round_index)
            _count(principles[owner], stage, all(v.passed for v in verdicts))
            for verdict in verdicts:
                _count(checks[verdict.check], stage, verdict.passed)
        for round_index, check in sample.not_applicable:
            checks[check][f"{_stage(round_index)}_not_applicable"] += 1
        for round_index in {r for r, _ in sample.not_applicable} - set(kept):
            owner = _principle_of(sample, max(round_index, 1))
            principles[owner][f"{_stage(round_index)}_not_applicable"] += 1
        for retry in sample.retries:
            for line in [principles[_principle_of(sample, retry.round)],
                         *(checks[check] for check in retry.failed)]:
                line["retries"] += 1
                line["retry_output_tokens"] += retry.output_tokens
    if not principles and not checks:
        return {}
    return {"principles": dict(principles), "checks": dict(checks)}


def kept_verdicts(sample: Sample) -> dict[int, list[CheckVerdict]]:
    """Per round (0: the first answer), the verdicts on the text the round kept (its last try)."""
    last: dict[int, int] = {}
    for verdict in sample.verdicts:
        last[verdict.round] = max(last.get(verdict.round, 0), verdict.attempt)
    kept: dict[int, list[CheckVerdict]] = defaultdict(list)
    for verdict in sample.verdicts:
        if verdict.attempt == last[verdict.round]:
            kept[verdict.round].append(verdict)
    return kept


def _stage(round_index: int) -> str:
    return "first" if round_index == 0 else "kept"


def _principle_of(sample: Sample, round_index: int) -> str:
    rounds = sample.rounds
    return rounds[round_index - 1].principle if len(rounds) >= round_index else CONSTITUTION


def _count(line: dict[str, int], stage: str, passed: bool) -> None:
    line[f"{stage}_total"] += 1
    line[f"{stage}_passed"] += int(passed)


def add_tallies(tallies: Iterable[dict]) -> dict[str, dict[str, dict[str, int]]]:
    """The run's counts: the shards' tallies added up."""
    total: dict[str, dict[str, dict[str, int]]] = {"principles": {}, "checks": {}}
    for tally in tallies:
        for group, lines in (tally or {}).items():
            for name, counts in lines.items():
                line = total[group].setdefault(name, _zero())
                for key in _COUNTS:
                    line[key] += counts.get(key, 0)
    return total


def run_check_figures(tallies: Iterable[dict], counts: dict) -> dict:
    """The manifest's `counts.checks`: rates per principle and per check, and the yield."""
    total = add_tallies(tallies)
    pairs = sum(counts["pairs"].values())
    return {
        "principles": {name: {**_rates(line), "echoes_rejected": line["echoed"]}
                       for name, line in sorted(total["principles"].items())},
        "checks": {name: _rates(line) for name, line in sorted(total["checks"].items())},
        "retries": sum(line["retries"] for line in total["principles"].values()),
        "retry_output_tokens": sum(line["retry_output_tokens"]
                                   for line in total["principles"].values()),
        "check_failed": counts["rejects"].get("check_failed", 0),
        ECHOES_INSTRUCTION: counts["rejects"].get(ECHOES_INSTRUCTION, 0),
        "pairs_per_prompt": ratio(pairs, counts["prompts"]),
        "output_tokens_per_pair": ratio(counts["output_tokens"], pairs),
    }


def _rates(line: dict[str, int]) -> dict:
    return {"first_answers": line["first_total"],
            "first_pass_rate": ratio(line["first_passed"], line["first_total"]),
            "kept_revisions": line["kept_total"],
            "kept_pass_rate": ratio(line["kept_passed"], line["kept_total"]),
            "retries": line["retries"], "retry_output_tokens": line["retry_output_tokens"],
            "first_not_applicable": line["first_not_applicable"],
            "kept_not_applicable": line["kept_not_applicable"]}


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
