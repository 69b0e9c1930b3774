"""Browse a run, for principle authors: per principle what its critiques and revisions did,
and each conversation's answer, critique and revision with a word diff. Nothing is labelled.

Reads the run's traces (one row per sample) and prefs (the judge's preference), a page at a
time for the conversations; the per-principle table reads every trace once per request.
"""

from __future__ import annotations

from collections import defaultdict

from selfalign.eval.refusal import is_refusal
from selfalign.stages.cleaning import same_text
from selfalign.store.reader import FinishedRun
from selfalign.word_diff import word_diff

PAGE = 20
TRACE_COLUMNS = ["prompt_id", "sample_index", "split", "principle_ids", "prompt", "initial",
                 "round_details", "final", "status"]


def principle_figures(run: FinishedRun) -> list[dict]:
    """Per principle (the last round's): draws, mean length change, unchanged revisions,
    refusals before and after, mean AI preference."""
    groups: dict[str, dict] = defaultdict(lambda: {"draws": 0, "revised": 0, "delta": 0,
                                                   "same": 0, "refused_answer": 0,
                                                   "refused_revision": 0, "preferences": []})
    for row in run.rows("traces", ["principle_ids", "initial", "final"]):
        for name in row["principle_ids"] or []:
            groups[name]["draws"] += 1
        if not row["principle_ids"] or row["initial"] is None or row["final"] is None:
            continue
        g = groups[row["principle_ids"][-1]]
        g["revised"] += 1
        g["delta"] += len(row["final"]) - len(row["initial"])
        g["same"] += same_text(row["final"], row["initial"])
        g["refused_answer"] += is_refusal(row["initial"])
        g["refused_revision"] += is_refusal(row["final"])
    for row in run.rows("prefs", ["principle_ids", "preference"]):
        if row["preference"] is not None and row["principle_ids"]:
            groups[row["principle_ids"][-1]]["preferences"].append(row["preference"])
    figures = []
    for name, g in sorted(groups.items()):
        n = g["revised"] or None
        prefs = g["preferences"]
        figures.append({"principle": name, "draws": g["draws"], "revised": g["revised"],
                        "mean_length_change": round(g["delta"] / n, 1) if n else None,
                        "unchanged_share": round(g["same"] / n, 4) if n else None,
                        "answer_refusal_share": round(g["refused_answer"] / n, 4) if n else None,
                        "revision_refusal_share": round(g["refused_revision"] / n, 4) if n
                        else None,
                        "mean_ai_preference": round(sum(prefs) / len(prefs), 4) if prefs
                        else None})
    return figures


def browse(run: FinishedRun, principle: str | None = None, split: str | None = None,
           reason: str | None = None, text: str | None = None, page: int = 0) -> dict:
    """The principle table, the filter choices, and one page of matching conversations."""
    matches, choices = [], {"principles": set(), "splits": set(), "reasons": set()}
    needle = text.casefold() if text else None
    for row in run.rows("traces", TRACE_COLUMNS):
        last = (row["principle_ids"] or ["-"])[-1]
        choices["principles"].add(last)
        choices["splits"].add(row["split"] or "")
        choices["reasons"].add(row["status"] or "")
        if ((principle and last != principle) or (split and row["split"] != split)
                or (reason and row["status"] != reason)):
            continue
        if needle and needle not in " ".join(
                filter(None, [row["prompt"], row["initial"], row["final"]])).casefold():
            continue
        matches.append(row)
    shown = [_conversation(row) for row in matches[page * PAGE:(page + 1) * PAGE]]
    return {"principles": principle_figures(run), "matches": len(matches), "page": page,
            "pages": max(1, -(-len(matches) // PAGE)), "conversations": shown,
            "choices": {k: sorted(v) for k, v in choices.items()}}


def _conversation(row: dict) -> dict:
    rounds = row["round_details"] or []
    return {"prompt_id": row["prompt_id"], "sample_index": row["sample_index"],
            "split": row["split"], "status": row["status"],
            "principles": row["principle_ids"] or [], "prompt": row["prompt"],
            "answer": row["initial"] or "",
            "critiques": [r.get("critique") or "" for r in rounds],
            "revision": row["final"] or "",
            "diff": word_diff(row["initial"] or "", row["final"] or "")}
