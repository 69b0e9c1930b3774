"""Cutting the prompt stream into shards, and turning one finished shard into its rows and
ledger entry (the run folder writes the files: store/shard_files.py)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from selfalign.generate import rows
from selfalign.generate.behavior_figures import shard_behaviors
from selfalign.generate.check_figures import shard_tally
from selfalign.generate.feedback import ledger_judgments
from selfalign.records import PromptRecord, Reject
from selfalign.stages.sample import Sample
from selfalign.store.layout import SHARD_KINDS
from selfalign.store.shard_files import new_attempt, write_shard_files


@dataclass
class Shard:
    index: int
    records: list[PromptRecord] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)  # rows of the input that failed to read


def cut_shards(items: Iterable[PromptRecord | Reject], shard_size: int,
               limit: int | None) -> Iterator[Shard]:
    """Group the stream into shards of `shard_size` prompts; the same input always cuts the same.

    Read rejects travel with the shard they were read in, so the ledger covers every input row.
    """
    shard, used = Shard(0), 0
    for item in items:
        if isinstance(item, Reject):
            shard.rejects.append(item)
            continue
        if limit is not None and used >= limit:
            break
        shard.records.append(item)
        used += 1
        if len(shard.records) == shard_size:
            yield shard
            shard = Shard(shard.index + 1)
    if shard.records or shard.rejects:
        yield shard


def write_shard(folder: Path, shard: Shard, samples: list[Sample], model: str,
                seconds: float, ranked: bool = False, attempt: str | None = None) -> dict:
    """Write the shard's four files atomically, under this attempt's own names; return its
    ledger entry (counts, tokens, and each file's name, size and sha256).

    `ranked`: pairs are the judge's comparisons between samples (rank mode), not each sample's
    revision against its own first answer.
    """
    out: dict[str, list[dict]] = {kind: [] for kind in SHARD_KINDS}
    out["rejects"] = [rows.reject_row(r) for r in shard.rejects]
    pairs, sft, principles = Counter(), Counter(), Counter()
    judgments: list[list] = []
    statuses = []
    for sample in samples:
        status = rows.sample_status(sample, ranked)
        statuses.append(status)
        out["traces"].append(rows.trace_row(sample, model, status))
        principles.update(r.principle for r in sample.rounds)
        judgments += ledger_judgments(sample)
        if status == "pair":
            out["prefs"].append(rows.pref_row(sample, model))
            pairs[sample.record.split] += 1
        elif status != "ranked":
            out["rejects"].append(rows.reject_row(rows.sample_reject(sample, status)))
        for pair in sample.won:
            out["prefs"].append(rows.ranked_pair_row(sample, pair, model))
            pairs[sample.record.split] += 1
        out["rejects"] += [rows.reject_row(r) for r in rows.unpaired_rejects(sample)]
        if rows.usable_for_sft(sample, status):
            out["sft"].append(rows.sft_row(sample, model))
            sft[sample.record.split] += 1
    attempt = attempt or new_attempt()
    files = write_shard_files(folder, shard.index, out, attempt)
    return {
        "shard": shard.index, "attempt": attempt, "prompts": len(shard.records),
        "samples": len(samples),
        "pairs": dict(pairs), "sft": dict(sft), "traces": len(out["traces"]),
        "rejects": dict(Counter(r["reason"] for r in out["rejects"])),
        "principles": dict(principles), "seconds": round(seconds, 3),
        "prompt_tokens": sum(s.prompt_tokens for s in samples),
        "output_tokens": sum(s.output_tokens for s in samples),
        "cached_prompt_tokens": sum(s.cached_tokens for s in samples),
        "checks": shard_tally(samples, statuses), "behaviors": shard_behaviors(samples, statuses),
        "judgments": judgments, "files": files,
        "finished_at": time.time(),
    }


SHARD_FAILED = "shard_failed"


def failed_shard(shard: Shard, cause: str) -> Shard:
    """The shard as rejects only, when every attempt at it failed: its prompts go to
    rejects.parquet with the cause, and the rest of the run goes on."""
    given_up = [Reject(SHARD_FAILED, cause, r.source, r.line, r.id, stage="generate")
                for r in shard.records]
    return Shard(shard.index, records=[], rejects=shard.rejects + given_up)
