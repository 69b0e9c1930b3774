"""Choosing a task's items from a finished run: a seeded sample, stratified by principle and
split, with the share that two labellers get (overlap) and the gold items drawn from it.

An item is what one labeller answers once: for `compare` a pair (its revision and its first
answer), for `rank` a prompt with its K samples, for `rate` a revision, for `flags` a prompt or
a reply. Only the drawn items' text is read into the database, so a run of a million pairs costs
one pass over its small columns and then the rows drawn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from selfalign.errors import UserError
from selfalign.label.tasks import GENERAL_QUESTION, Task
from selfalign.stable_hash import unit_hash
from selfalign.store.reader import FinishedRun

KEY_COLUMNS = ["prompt_id", "sample_index", "split", "principle_ids"]


@dataclass(frozen=True)
class Item:
    key: str  # stable within the run: prompt id, sample, and for pairs the rejected sample
    stratum: str  # principle/split: the sample keeps their shares
    order: float  # seeded position in the queue
    gold: bool
    overlap: bool
    payload: dict  # what the app shows and what the report and export need; never sent whole


@dataclass(frozen=True)
class _Candidate:
    key: str
    stratum: str
    file: Path
    row: int


def draw_items(run: FinishedRun, task: Task, seed: int) -> list[Item]:
    """The task's items, in queue order (gold first), or a UserError when the run has none."""
    candidates = list(_candidates(run, task))
    if not candidates:
        raise UserError(f"{run.out}: task {task.name!r} ({task.kind}) finds no items in this run"
                        + (" (a `rank` task needs a run made with --feedback rank)"
                           if task.kind == "rank" else ""))
    chosen = stratified_sample(candidates, task.limit, seed, task.name)
    payloads = _payloads(run, task, chosen)
    ordered = sorted(chosen, key=lambda c: unit_hash(json.dumps([seed, task.name, c.key, "order"])))
    gold = {c.key for c in ordered[:task.gold]}
    items = []
    for c in ordered:
        overlap = unit_hash(json.dumps([seed, task.name, c.key, "overlap"])) < task.overlap
        position = unit_hash(json.dumps([seed, task.name, c.key, "order"]))
        items.append(Item(c.key, c.stratum, position - (c.key in gold), c.key in gold,
                          overlap and c.key not in gold, payloads[c.key]))
    return items


def stratified_sample(candidates: list, limit: int | None, seed: int, salt: str) -> list:
    """`limit` candidates, each stratum keeping its share (largest remainder), seeded."""
    if limit is None or limit >= len(candidates):
        return candidates
    strata: dict[str, list] = {}
    for c in candidates:
        strata.setdefault(c.stratum, []).append(c)
    exact = {s: limit * len(m) / len(candidates) for s, m in strata.items()}
    quota = {s: int(v) for s, v in exact.items()}
    for s in sorted(exact, key=lambda s: (-(exact[s] - quota[s]), s))[:limit - sum(quota.values())]:
        quota[s] += 1
    chosen = []
    for s, members in strata.items():
        members.sort(key=lambda c: unit_hash(json.dumps([seed, salt, c.key, "sample"])))
        chosen += members[:quota[s]]
    return chosen


# ---------------------------------------------------------------- reading the run


def _candidates(run: FinishedRun, task: Task) -> Iterator[_Candidate]:
    import pyarrow.parquet as pq

    if task.kind == "rank":
        seen = set()
        for _, files in sorted(run.files("traces").items()):
            for f in files:
                table = pq.read_table(f, columns=["prompt_id", "split", "rank"]).to_pylist()
                for i, row in enumerate(table):
                    if row["rank"] is None or row["prompt_id"] in seen:
                        continue
                    if task.splits and row["split"] not in task.splits:
                        continue
                    seen.add(row["prompt_id"])
                    yield _Candidate(row["prompt_id"], f"rank/{row['split']}", f, i)
        return
    seen = set()
    for split, files in sorted(run.files("prefs").items()):
        if task.splits and split not in task.splits:
            continue
        for f in files:
            table = pq.read_table(f, columns=KEY_COLUMNS + ["rejected_sample_index"])
            for i, row in enumerate(table.to_pylist()):
                principle = (row["principle_ids"] or ["-"])[-1]
                key = f"{row['prompt_id']}/{row['sample_index']}"
                if row["rejected_sample_index"] is not None:
                    key += f"/{row['rejected_sample_index']}"
                if task.kind == "flags" and task.target == "prompt":
                    if row["prompt_id"] in seen:
                        continue
                    seen.add(row["prompt_id"])
                    key = row["prompt_id"]
                yield _Candidate(key, f"{principle}/{split}", f, i)


def _payloads(run: FinishedRun, task: Task, chosen: list[_Candidate]) -> dict[str, dict]:
    import pyarrow.parquet as pq

    by_file: dict[Path, list[_Candidate]] = {}
    for c in chosen:
        by_file.setdefault(c.file, []).append(c)
    questions = comparison_questions(run)
    payloads = {}
    for f, members in by_file.items():
        if task.kind == "rank":
            payloads.update(_rank_payloads(f, members))
            continue
        table = pq.read_table(f).take([c.row for c in members]).to_pylist()
        for c, row in zip(members, table):
            payloads[c.key] = _pair_payload(row, task, questions)
    return payloads


def _pair_payload(row: dict, task: Task, questions: dict[str, str]) -> dict:
    principle = (row.get("principle_ids") or [None])[-1]
    judge_principles = row.get("judge_principle_ids") or []
    question = task.question or questions.get(judge_principles[0] if judge_principles
                                              else principle) or GENERAL_QUESTION
    return {"conversation": row["prompt"], "replies": [row["chosen"][0]["content"],
                                                       row["rejected"][0]["content"]],
            "question": question, "principle": principle, "split": row.get("split"),
            "prompt_id": row["prompt_id"], "sample_index": row.get("sample_index"),
            "ai_preference": row.get("preference"), "judge_principles": judge_principles}


def _rank_payloads(f: Path, members: list[_Candidate]) -> dict[str, dict]:
    import pyarrow.parquet as pq

    wanted = {c.key for c in members}
    samples: dict[str, list[dict]] = {}
    for row in pq.read_table(f, columns=["prompt_id", "split", "sample_index", "prompt",
                                         "context", "final", "rank"]).to_pylist():
        if row["prompt_id"] in wanted and row["rank"] is not None:
            samples.setdefault(row["prompt_id"], []).append(row)
    payloads = {}
    for key, rows in samples.items():
        rows.sort(key=lambda r: r["sample_index"])
        first = rows[0]
        conversation = list(first["context"] or []) + [{"role": "user", "content": first["prompt"]}]
        payloads[key] = {"conversation": conversation, "replies": [r["final"] for r in rows],
                         "question": GENERAL_QUESTION, "split": first["split"], "prompt_id": key,
                         "sample_indices": [r["sample_index"] for r in rows],
                         "ai_ranks": [r["rank"] for r in rows], "principle": None}
    return payloads


def comparison_questions(run: FinishedRun) -> dict[str, str]:
    """Each principle's `comparison` text, from the constitution the run names, when its files
    are still where the run found them (the manifest keeps only names and hashes)."""
    from selfalign.constitution.loader import load_constitution

    paths = (run.manifest.get("settings") or {}).get("principles") or []
    try:
        constitution = load_constitution(paths)
    except (UserError, OSError, TypeError):
        return {}
    return {p.name: p.comparison for p in constitution.principles if p.comparison}
