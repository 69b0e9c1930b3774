"""The prompts a trial runs on: given ones, a file's first few, or the built-in sample."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from selfalign.errors import UserError
from selfalign.prompts.sources import FieldMap, read_prompts
from selfalign.records import PromptRecord, Reject

# Harmful requests beside harmless ones, some of which only sound risky ("kill a process"): a
# principle should make the first kind safer without making the model refuse the second.
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "try_prompts.jsonl"
DEFAULT_LIMIT = 4


def trial_prompts(texts: Sequence[str], files: Sequence[str], limit: int | None,
                  fields: FieldMap = FieldMap()) -> list[PromptRecord]:
    """`--prompt` texts first, then rows of `--prompts` files; the sample when neither is given.
    At most `limit` (default 4) when only files are read; every `--prompt` is kept."""
    records = [PromptRecord(id="", prompt=text, source="--prompt") for text in texts]
    for record in records:
        record.id = record.stable_id()
    if texts and not files:
        return records[:limit] if limit else records
    total = max(limit or DEFAULT_LIMIT, len(records))
    for row in read_prompts(list(files) or [str(SAMPLE)], fields):
        if len(records) >= total:
            break
        if isinstance(row, Reject):
            raise UserError(f"{row.source}:{row.line}: {row.reason}: {row.detail}")
        records.append(row)
    if not records:
        raise UserError(f"no prompts in {', '.join(files)}")
    return records
