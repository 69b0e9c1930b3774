"""The columns of every file a run writes: fixed Arrow schemas, so every shard concatenates.

prefs and sft follow TRL's conversational formats exactly: message lists only, never a string
`prompt` beside message-list `chosen`/`rejected` (TRL fails on that mix).
"""

from __future__ import annotations

import pyarrow as pa

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
ROUND = pa.struct([
    ("principle", pa.string()), ("critique_request", pa.string()), ("critique", pa.string()),
    ("critique_finish", pa.string()), ("revision_request", pa.string()),
    ("raw_revision", pa.string()), ("revision", pa.string()), ("revision_finish", pa.string()),
])
# A check's verdict on the first answer (round 0) or on try `attempt` of a round's revision
# (0 as first asked, n the n-th check retry); `check` is its id, `owner/kind`.
CHECK_VERDICT = pa.struct([("round", pa.int32()), ("attempt", pa.int32()), ("check", pa.string()),
                           ("passed", pa.bool_()), ("message", pa.string())])
# A revision asked again: the checks it failed, the revision replaced, the new try's tokens.
CHECK_RETRY = pa.struct([("round", pa.int32()), ("attempt", pa.int32()),
                         ("failed", pa.list_(pa.string())), ("replaced", pa.string()),
                         ("output_tokens", pa.int64())])
_PROVENANCE = [
    ("prompt_id", pa.string()), ("sample_index", pa.int32()), ("split", pa.string()),
    ("user_id", pa.string()), ("source", pa.string()), ("principle_ids", pa.list_(pa.string())),
    ("rounds", pa.int32()), ("model", pa.string()),
    ("behavior", pa.string()),  # the prompt's expected behaviour: comply, refuse or null
]
# What the judge said of a pair (null where no judge ran).
_JUDGED = [("preference", pa.float64()), ("judge_principle_ids", pa.list_(pa.string())),
           ("position_consistent", pa.bool_())]
PREFS_SCHEMA = pa.schema([("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES),
                          *_PROVENANCE, ("critique", pa.string()), *_JUDGED,
                          # rank: the sample whose final answer is `rejected` (`sample_index`
                          # is the chosen one's); otherwise null: rejected is the first answer.
                          ("rejected_sample_index", pa.int32())])
SFT_SCHEMA = pa.schema([("messages", MESSAGES), *_PROVENANCE])
TRACES_SCHEMA = pa.schema([
    *_PROVENANCE, ("prompt", pa.string()), ("context", MESSAGES), ("line", pa.int64()), ("language", pa.string()),
    ("metadata", pa.string()), ("initial", pa.string()), ("initial_finish", pa.string()),
    ("round_details", pa.list_(ROUND)), ("final", pa.string()), ("status", pa.string()),
    ("prompt_tokens", pa.int64()), ("output_tokens", pa.int64()),
    ("cached_prompt_tokens", pa.int64()), *_JUDGED,
    ("first_position_probs", pa.list_(pa.float64())),  # raw P(option A) of every question
    ("rank", pa.int32()), ("score", pa.float64()),  # rank: among the prompt's samples, 1 = best
    ("check_verdicts", pa.list_(CHECK_VERDICT)), ("check_retries", pa.list_(CHECK_RETRY)),
    ("check_retry_output_tokens", pa.int64()),  # the retries' output tokens (in output_tokens too)
])
REJECTS_SCHEMA = pa.schema([
    ("reason", pa.string()), ("detail", pa.string()), ("stage", pa.string()),
    ("source", pa.string()), ("line", pa.int64()), ("id", pa.string()),
    ("sample_index", pa.int32()),
])

# The schema of each file a shard writes (store/layout.py: SHARD_KINDS).
SHARD_SCHEMAS = {"traces": TRACES_SCHEMA, "prefs": PREFS_SCHEMA, "sft": SFT_SCHEMA,
                 "rejects": REJECTS_SCHEMA}
