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

from selfalign.prompts.behavior import BEHAVIOR
from selfalign.stages.sample import Sample

UNMARKED = "unmarked"
KEPT = ("pair", "ranked")  # a sample that gave pairs (rank mode: its answers were compared)


def shard_behaviors(samples: Sequence[Sample], statuses: Sequence[str]) -> dict[str, int]:
    """`behaviour/status` → samples, over one shard."""
    return dict(Counter(f"{sample.record.metadata.get(BEHAVIOR) or UNMARKED}/{status}"
                        for sample, status in zip(samples, statuses, strict=True)))


def run_behaviors(tallies: Iterable[dict[str, int] | None]) -> dict[str, dict] | None:
    """Per behaviour: samples, kept (gave pairs), yield (kept / samples) and the other samples
    by reason; None when no prompt of the run said what it expects."""
    total: Counter = Counter()
    for tally in tallies:
        total.update(tally or {})
    by: dict[str, dict] = {}
    for key, n in sorted(total.items()):
        behavior, status = key.split("/", 1)
        line = by.setdefault(behavior, {"samples": 0, "kept": 0, "not_kept": {}})
        line["samples"] += n
        if status in KEPT:
            line["kept"] += n
        else:
            line["not_kept"][status] = line["not_kept"].get(status, 0) + n
    if set(by) <= {UNMARKED}:
        return None
    for line in by.values():
        line["yield"] = round(line["kept"] / line["samples"], 4)
    return by


def behavior_section(figures: dict | None) -> str:
    """The card's table; empty when no prompt was marked."""
    if not figures:
        return ""
    rows = ["| expected behaviour | samples | kept | yield | not kept, by reason |",
            "|---|---|---|---|---|"]
    for behavior, line in figures.items():
        reasons = ", ".join(f"{reason} {n}" for reason, n in
                            sorted(line["not_kept"].items(), key=lambda kv: -kv[1])) or "none"
        rows.append(f"| {behavior} | {line['samples']} | {line['kept']} | "
                    f"{line['yield']:.3f} | {reasons} |")
    return ("## By expected behaviour\n\n"
            "Samples by what their prompt expects (`behavior`: refuse, comply, or unmarked), how "
            "many were kept as pairs, and why the others were not. A should-refuse sample is kept "
            "only if its revision passes the checks that apply to it (declines, with "
            "`decline-or-answer`'s refusal checks), so its yield is the share of declines the "
            "model could be brought to write.\n\n" + "\n".join(rows) + "\n\n")
