"""A run's yield by expected behaviour: of the samples whose prompt should be declined, answered,
or does not say, how many became pairs and why the others did not.

A run that makes harmlessness data can look healthy overall and still keep few declines: the
should-refuse samples are the ones whose revisions fail their check most (a small model rarely
declines), so their yield is told apart. Shards tally `behaviour/status` counts into their ledger
entry (plain counts that add up across shards and workers); the run's figures are made from the
sum once every shard is in. Unmarked prompts count as `unmarked`.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from selfalign.generate.check_figures import kept_verdicts, ratio
from selfalign.prompts.behavior import BEHAVIOR
from selfalign.stages.sample import Sample

UNMARKED = "unmarked"
KEPT = ("pair", "ranked")  # a sample that gave pairs (rank mode: its answers were compared)


def shard_behaviors(samples: Sequence[Sample], statuses: Sequence[str]) -> dict[str, int]:
    """Counts over one shard, keyed `behaviour/status/<status>` (samples by how they ended) and
    `behaviour/checks/<first|kept>_<passed|total>`: the first answers, and the revisions the
    last round kept, with a check that applied, and how many of those passed all of theirs."""
    counts: Counter = Counter()
    for sample, status in zip(samples, statuses, strict=True):
        behavior = sample.record.metadata.get(BEHAVIOR) or UNMARKED
        counts[f"{behavior}/status/{status}"] += 1
        kept = kept_verdicts(sample)
        last = max(kept, default=0)
        for stage, verdicts in (("first", kept.get(0)), ("kept", kept.get(last) if last else None)):
            if verdicts:
                counts[f"{behavior}/checks/{stage}_total"] += 1
                counts[f"{behavior}/checks/{stage}_passed"] += all(v.passed for v in verdicts)
    return dict(counts)


def run_behaviors(tallies: Iterable[dict[str, int] | None]) -> dict[str, dict] | None:
    """Per behaviour: samples, kept (gave pairs), yield (kept / samples), the other samples by
    reason, and the pass rates of first answers and kept revisions over those a check applied
    to; None when no prompt of the run said what it expects."""
    total: Counter = Counter()
    for tally in tallies:
        total.update(tally or {})
    by: dict[str, dict] = {}
    checks: dict[str, Counter] = {}
    for key, n in sorted(total.items()):
        behavior, kind, name = key.split("/", 2)
        line = by.setdefault(behavior, {"kept": 0, "not_kept": {}})
        if kind == "checks":
            checks.setdefault(behavior, Counter())[name] += n
        elif name in KEPT:
            line["kept"] += n
        else:
            line["not_kept"][name] = line["not_kept"].get(name, 0) + n
    if set(by) <= {UNMARKED}:
        return None
    for behavior, line in by.items():
        line["samples"] = line["kept"] + sum(line["not_kept"].values())
        line["yield"] = ratio(line["kept"], line["samples"])
        seen = checks.get(behavior, Counter())
        for stage in ("first", "kept"):
            line[f"{stage}_checked"] = seen[f"{stage}_total"]
            line[f"{stage}_pass_rate"] = ratio(seen[f"{stage}_passed"], seen[f"{stage}_total"])
    return by


def behavior_section(figures: dict | None) -> str:
    """The card's table; empty when no prompt was marked."""
    if not figures:
        return ""
    rows = ["| expected behaviour | samples | first answers passed | kept revisions passed | "
            "kept | yield | not kept, by reason |", "|---|---|---|---|---|---|---|"]
    for behavior, line in figures.items():
        reasons = ", ".join(f"{reason} {n}" for reason, n in
                            sorted(line["not_kept"].items(), key=lambda kv: -kv[1])) or "none"
        rows.append(f"| {behavior} | {line['samples']} | "
                    f"{_share(line['first_pass_rate'], line['first_checked'])} | "
                    f"{_share(line['kept_pass_rate'], line['kept_checked'])} | {line['kept']} | "
                    f"{_share(line['yield'])} | {reasons} |")
    return ("## By expected behaviour\n\n"
            "Samples by what their prompt expects (`behavior`: refuse, comply, or unmarked), how "
            "many were kept as pairs, and why the others were not; and the share of first "
            "answers and of kept revisions (the last round's, after its retries) that passed "
            "every check applied to them, over those a check applied to (of N). A "
            "should-refuse sample is kept only if its revision passes the checks that apply "
            "to it (declines, with `decline-or-answer`'s refusal checks), so its yield is the "
            "share of declines the model could be brought to write.\n\n"
            + "\n".join(rows) + "\n\n")


def _share(rate: float | None, of: int | None = None) -> str:
    if rate is None:
        return "n/a"
    return f"{rate:.3f}" + (f" of {of}" if of is not None else "")
