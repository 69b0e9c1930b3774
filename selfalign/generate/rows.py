"""The rows selfalign writes, and their Arrow schemas (fixed, so every shard concatenates).

prefs and sft follow TRL's conversational formats exactly: message lists only, never a string
`prompt` beside message-list `chosen`/`rejected` (TRL fails on that mix).
"""

from __future__ import annotations

import pyarrow as pa

from selfalign.records import Reject
from selfalign.stages.cleaning import same_text
from selfalign.stages.sample import Sample

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
ROUND = pa.struct([
    ("principle", pa.string()), ("critique_request", pa.string()), ("critique", pa.string()),
    ("critique_finish", pa.string()), ("revision_request", pa.string()),
    ("raw_revision", pa.string()), ("revision", pa.string()), ("revision_finish", pa.string()),
])
_PROVENANCE = [
    ("prompt_id", pa.string()), ("sample_index", pa.int32()), ("split", pa.string()),
    ("user_id", pa.string()), ("source", pa.string()), ("principle_ids", pa.list_(pa.string())),
    ("rounds", pa.int32()), ("model", pa.string()),
]
PREFS_SCHEMA = pa.schema([("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES),
                          *_PROVENANCE, ("critique", pa.string())])
SFT_SCHEMA = pa.schema([("messages", MESSAGES), *_PROVENANCE])
TRACES_SCHEMA = pa.schema([
    *_PROVENANCE, ("prompt", pa.string()), ("context", MESSAGES), ("line", pa.int64()), ("language", pa.string()),
    ("metadata", pa.string()), ("initial", pa.string()), ("initial_finish", pa.string()),
    ("round_details", pa.list_(ROUND)), ("final", pa.string()), ("status", pa.string()),
    ("prompt_tokens", pa.int64()), ("output_tokens", pa.int64()),
    ("cached_prompt_tokens", pa.int64()),
])
REJECTS_SCHEMA = pa.schema([
    ("reason", pa.string()), ("detail", pa.string()), ("stage", pa.string()),
    ("source", pa.string()), ("line", pa.int64()), ("id", pa.string()),
    ("sample_index", pa.int32()),
])


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def sample_status(sample: Sample) -> str:
    """'pair', or the reason this sample yields no preference pair."""
    if not sample.alive:
        return f"{sample.failed_stage}:{sample.failure}"
    if not sample.initial:
        return "empty_response"
    if not sample.final:
        return "empty_revision"
    if same_text(sample.final, sample.initial):
        return "chosen_equals_rejected"
    return "pair"


def usable_for_sft(status: str) -> bool:
    """A revision equal to the first answer is still a good SFT target; failures are not."""
    return status in ("pair", "chosen_equals_rejected")


def provenance(sample: Sample, model: str) -> dict:
    record = sample.record
    return {"prompt_id": record.id, "sample_index": sample.index, "split": record.split,
            "user_id": record.user_id, "source": record.source,
            "principle_ids": [r.principle for r in sample.rounds],
            "rounds": len(sample.rounds), "model": model}


def pref_row(sample: Sample, model: str) -> dict:
    return {"prompt": sample.record.conversation(), "chosen": _assistant(sample.final),
            "rejected": _assistant(sample.initial), **provenance(sample, model),
            "critique": sample.rounds[-1].critique if sample.rounds else ""}


def sft_row(sample: Sample, model: str) -> dict:
    return {"messages": sample.record.conversation() + _assistant(sample.final),
            **provenance(sample, model)}


def trace_row(sample: Sample, model: str, status: str) -> dict:
    record = sample.record
    return {**provenance(sample, model), "prompt": record.prompt, "context": record.context,
            "line": record.line,
            "language": record.language, "metadata": record.metadata_json(),
            "initial": sample.initial, "initial_finish": sample.initial_finish,
            "round_details": [vars(r) for r in sample.rounds], "final": sample.final,
            "status": status, "prompt_tokens": sample.prompt_tokens,
            "output_tokens": sample.output_tokens, "cached_prompt_tokens": sample.cached_tokens}


def sample_reject(sample: Sample, status: str) -> Reject:
    stage = sample.failed_stage or "pairs"
    detail = {"chosen_equals_rejected": "the revision repeats the first answer",
              "empty_response": "the first answer was empty",
              "empty_revision": "the revision was empty after cleaning"}.get(
        status, f"the engine could not answer at stage {stage}")
    return Reject(reason=status, detail=detail, source=sample.record.source,
                  line=sample.record.line, id=sample.record.id, stage=stage,
                  sample_index=sample.index)


def reject_row(reject: Reject) -> dict:
    return {"reason": reject.reason, "detail": reject.detail, "stage": reject.stage,
            "source": reject.source, "line": reject.line, "id": reject.id,
            "sample_index": reject.sample_index}
