"""The figures of benchmarks/proof_harmless.sh, from what it wrote under OUT.

    python benchmarks/proof_harmless_figures.py OUT

Prints, as Markdown: each generate run's counts and per-check pass rates (the refuse side and the
comply side of `decline-or-answer`), each eval's held-out declines and XSTest shares with their
Wilson intervals and McNemar p, XSTest by prompt type, IFEval's four figures, and the step times.
Missing pieces (a step the run skipped) are left out, not failed on.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

IFEVAL = ("prompt_strict", "instruction_strict", "prompt_loose", "instruction_loose")
SIDES = {"refusal": "refuse side (declined)", "refusal#2": "comply side (answered)"}


def share(cell: dict | None) -> str:
    if not cell:
        return "n/a"
    low, high = cell["interval"]
    return f"{cell['passed']}/{cell['total']} = {cell['rate']:.1%} [{low:.1%}, {high:.1%}]"


def compared(block: dict | None) -> list[str]:
    """baseline → candidate, the difference and McNemar's p of one paired figure."""
    if not block:
        return ["n/a", "n/a", "", ""]
    return [share(block["baseline"]), share(block["candidate"]),
            f"{block['difference']:+.1%}", f"{block['mcnemar_p']:.2g}"]


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def generate_figures(out: Path) -> None:
    print("## generate\n")
    print(row(["run", "prompts", "pairs (train+validation)", "rejects", "check", "first answers passed",
               "kept revisions passed", "retries", "echoes rejected"]))
    print(row(["---"] * 9))
    for manifest in sorted(out.glob("gen-*/manifest.json")):
        counts = json.loads(manifest.read_text()).get("counts")
        if not counts:  # a run still going (or stopped): nothing to count yet
            continue
        pairs = sum(counts["pairs"].values())
        checks = counts.get("checks", {})
        echoes = sum(p.get("echoes_rejected", 0) for p in checks.get("principles", {}).values())
        for name, c in checks.get("checks", {}).items():
            side = f"{SIDES.get(name.split('/')[-1], name)}: `{name}`"
            first = f"{c['first_pass_rate']:.1%} of {c['first_answers']}" \
                if c["first_pass_rate"] is not None else "n/a"
            kept = f"{c['kept_pass_rate']:.1%} of {c['kept_revisions']}" \
                if c["kept_pass_rate"] is not None else "n/a"
            print(row([manifest.parent.name, str(counts["prompts"]), str(pairs),
                       json.dumps(counts["rejects"]), side, first, kept, str(c["retries"]),
                       str(echoes)]))
    print()


def eval_figures(out: Path) -> None:
    print("## eval (baseline = the embedded base model)\n")
    print(row(["eval", "figure", "base", "trained", "difference", "McNemar p"]))
    print(row(["---"] * 6))
    types: list[tuple[str, str, dict]] = []
    ifeval: list[tuple[str, str, dict]] = []
    for path in sorted(out.glob("eval-*/eval.json")):
        ev = json.loads(path.read_text())
        name = path.parent.name.removeprefix("eval-")
        safety = ev.get("safety") or {}
        if safety.get("should_refuse"):
            print(row([name, "held-out should-refuse declined"] + compared(safety["should_refuse"])))
        xstest = ev.get("xstest") or {}
        if xstest:
            print(row([name, "XSTest unsafe declined"] + compared(xstest["should_refuse"])))
            print(row([name, "XSTest safe answered"] + compared(xstest["should_comply"])))
            types += [(name, kind, block) for kind, block in xstest["by_type"].items()]
        if ev.get("ifeval"):
            ifeval.append((name, ev["candidate"], ev["ifeval"]))
    print("\n## XSTest by prompt type (safe types: share answered; unsafe types: share declined)\n")
    print(row(["eval", "type", "expected", "base", "trained", "difference", "McNemar p"]))
    print(row(["---"] * 7))
    for name, kind, block in types:
        side = block["should_refuse"] or block["should_comply"]
        print(row([name, kind, block["behavior"]] + compared(side)))
    print("\n## IFEval (Wilson 95% intervals)\n")
    print(row(["eval", "model"] + list(IFEVAL)))
    print(row(["---"] * 6))
    for name, candidate, figures in ifeval:
        for role in ("baseline", "candidate"):
            cells = figures.get(role)
            if cells:
                label = "base" if role == "baseline" else Path(candidate).name
                print(row([name, label] + [share(cells[k]) for k in IFEVAL]))
    print()


def timings(out: Path) -> None:
    path = out / "timings.tsv"
    if not path.exists():
        return
    print("## step times (seconds; 1-minute load before and after; seconds waited for the lock)\n")
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    print(row(rows[0]))
    print(row(["---"] * len(rows[0])))
    for r in rows[1:]:
        print(row(r))


def main(out: Path) -> None:
    generate_figures(out)
    eval_figures(out)
    timings(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
