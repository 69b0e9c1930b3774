"""Choosing a task's items from a finished run: a seeded sample, stratified by principle and
split, with the share that two labellers get (overlap) and the gold items drawn from it.

An item is what one labeller answers once: for `compare` a pair (its revision and its first
answer), for `rank` a prompt with its K samples, for `rate` a revision, for `flags` a prompt or
a reply. Only the drawn items' text is read into the database, so a run of a million pairs costs
one pass over its small columns and then the rows drawn.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from selfalign.errors import UserError
from selfalign.label.tasks import GENERAL_QUESTION, Task
from selfalign.stable_hash import unit_hash
from selfalign.store.reader import FinishedRun

KEY_COLUMNS = ["prompt_id", "sample_index", "split", "principle_ids"]
PAYLOAD_COLUMNS = ["prompt", "chosen", "rejected", "prompt_id", "sample_index", "split",
                   "principle_ids", "preference", "judge_principle_ids"]


@dataclass(frozen=True)
class Item:
    key: str  # stable within the run: prompt id, sample, and for pairs the rejected sample
    stratum: str  # principle/split: the sample keeps their shares
    order: float  # seeded position in the queue
    gold: bool
    overlap: bool
    payload: dict  # what the app shows and what the report and export need; never sent whole


@dataclass(frozen=True, slots=True)  # a million of these when a run is large
class _Candidate:
    key: str
    stratum: str
    file: Path
    row: int


def draw_items(run: FinishedRun, task: Task, seed: int) -> Iterator[Item]:
    """The task's items, a file of the run at a time (the database keeps the queue order), or
    a UserError when the run has none. Only one file's drawn rows are in memory at once."""
    strata = Counter(c.stratum for c in _candidates(run, task))  # pass 1: sizes only
    if not strata:
        raise UserError(f"{run.out}: task {task.name!r} ({task.kind}) finds no items in this run"
                        + (" (a `rank` task needs a run made with --feedback rank)"
                           if task.kind == "rank" else ""))
    chosen = stratified_sample(_candidates(run, task), strata, task.limit, seed, task.name)
    order = {c.key: draw(seed, task.name, c.key, "order") for c in chosen}
    gold = set(sorted(order, key=order.get)[:task.gold])
    strata_of = {c.key: c.stratum for c in chosen}
    for key, payload in _payloads(run, task, chosen):
        overlap = draw(seed, task.name, key, "overlap") < task.overlap
        yield Item(key, strata_of[key], order[key] - (key in gold), key in gold,
                   overlap and key not in gold, payload)


def draw(seed: int, salt: str, key: str, purpose: str) -> float:
    """A number in [0, 1) for one item and purpose, the same on every machine and re-run."""
    return unit_hash(f"{seed}\x1f{salt}\x1f{key}\x1f{purpose}")


def quotas(strata: Counter, limit: int) -> dict[str, int]:
    """Each stratum's share of `limit`, rounded by largest remainder (ties by name)."""
    total = sum(strata.values())
    exact = {s: limit * n / total for s, n in strata.items()}
    quota = {s: int(v) for s, v in exact.items()}
    for s in sorted(exact, key=lambda s: (-(exact[s] - quota[s]), s))[:limit - sum(quota.values())]:
        quota[s] += 1
    return quota


def stratified_sample(candidates: Iterable, strata: Counter, limit: int | None, seed: int,
                      salt: str) -> list:
    """`limit` candidates, each stratum keeping its share, seeded: in each stratum the ones
    with the smallest draws. Only the kept ones are held in memory (a heap per stratum)."""
    if limit is None or limit >= sum(strata.values()):
        return list(candidates)
    quota = quotas(strata, limit)
    heaps: dict[str, list] = {s: [] for s in quota}
    for n, c in enumerate(candidates):
        heap = heaps[c.stratum]
        if not quota[c.stratum]:
            continue
        entry = (-draw(seed, salt, c.key, "sample"), n, c)
        if len(heap) < quota[c.stratum]:
            heapq.heappush(heap, entry)
        elif entry[0] > heap[0][0]:
            heapq.heapreplace(heap, entry)
    return [c for heap in heaps.values() for _, _, c in heap]


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
    seen, names = set(), {}  # names: one string per stratum, not one per row
    for split, files in sorted(run.files("prefs").items()):
        if task.splits and split not in task.splits:
            continue
        for f in files:
            # Column by column: a million rows as dicts would cost seconds and memory.
            columns = pq.read_table(f, columns=KEY_COLUMNS + ["rejected_sample_index"])
            prompt_ids, samples, rejected = (
                columns.column(name).to_pylist() for name in
                ("prompt_id", "sample_index", "rejected_sample_index"))
            principles = last_elements(columns.column("principle_ids"))
            for i, (prompt_id, sample, principle, other) in enumerate(
                    zip(prompt_ids, samples, principles, rejected)):
                key = f"{prompt_id}/{sample}" if other is None else f"{prompt_id}/{sample}/{other}"
                if task.kind == "flags" and task.target == "prompt":
                    if prompt_id in seen:
                        continue
                    seen.add(prompt_id)
                    key = prompt_id
                stratum = f"{principle or '-'}/{split}"
                yield _Candidate(key, names.setdefault(stratum, stratum), f, i)


def last_elements(column) -> list:
    """The last string of each list in a list<string> column (None for an empty list)."""
    import numpy as np
    import pyarrow as pa

    array = column.combine_chunks()
    if isinstance(array, pa.ChunkedArray):  # an empty column
        return [None] * len(array)
    offsets = array.offsets.to_numpy()
    lengths = np.diff(offsets)
    last = array.values.take(pa.array(np.maximum(offsets[1:] - 1, 0))) if len(
        array.values) else pa.nulls(len(array), pa.string())
    return [value if n else None for value, n in zip(last.to_pylist(), lengths)]


def _payloads(run: FinishedRun, task: Task, chosen: list[_Candidate]) -> Iterator[tuple]:
    """(key, payload) of each chosen candidate, reading one file of the run at a time."""
    import pyarrow.parquet as pq

    by_file: dict[Path, list[_Candidate]] = {}
    for c in chosen:
        by_file.setdefault(c.file, []).append(c)
    questions = comparison_questions(run)
    for f, members in by_file.items():
        if task.kind == "rank":
            yield from _rank_payloads(f, members).items()
            continue
        table = pq.read_table(f, columns=PAYLOAD_COLUMNS).take([c.row for c in members])
        for c, row in zip(members, table.to_pylist()):
            yield c.key, _pair_payload(row, task, questions)
        del table


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
