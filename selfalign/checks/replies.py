"""Replies to score and the checks each is held to: a JSONL or parquet file of `prompt` and
`response`, a run's traces (first answers and revisions), IFEval's input file.

Bad input stops with one line naming the file and line (or row); nothing is skipped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from selfalign.checks.base import Check
from selfalign.checks.instructions import instruction_checks
from selfalign.checks.registry import CONSTITUTION, check_ids, shared_not_held
from selfalign.checks.score import ReplyToScore
from selfalign.errors import UserError

IFEVAL = "ifeval"  # the owner of checks read from IFEval's input file


@dataclass(frozen=True)
class Reply:
    """A reply read from a file; `principles` names the principles it answers to, when known."""

    prompt: str
    reply: str
    where: str
    prompt_id: str | None = None
    stage: str | None = None
    principles: tuple[str, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)  # what `when:` sees of the prompt


# ---------------------------------------------------------------- files of replies

def read_reply_file(path: Path) -> list[Reply]:
    """Every reply of a JSONL or parquet file with `prompt` and `response` (and optionally `id`
    and `principle`)."""
    if path.suffix == ".parquet":
        return list(_parquet_replies(path))
    return list(_jsonl_replies(path))


def _jsonl_replies(path: Path) -> Iterator[Reply]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise UserError(f"{where}: not a JSON object ({err}); each line needs `prompt` "
                                f"and `response`") from None
            yield _reply(row, where)


def _parquet_replies(path: Path) -> Iterator[Reply]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for a file that is not parquet
        raise UserError(f"{path}: cannot be read as parquet ({err})") from None
    missing = [name for name in ("prompt", "response") if name not in table.column_names]
    if missing:
        raise UserError(f"{path}: no `{missing[0]}` column (found: "
                        f"{', '.join(table.column_names)}); replies need `prompt` and `response`")
    for number, row in enumerate(table.to_pylist(), start=1):
        yield _reply(row, f"{path}: row {number}")


def _reply(row: Any, where: str) -> Reply:
    if not isinstance(row, dict):
        raise UserError(f"{where}: a JSON {type(row).__name__}, not an object with `prompt` and "
                        f"`response`")
    for key in ("prompt", "response"):
        if not isinstance(row.get(key), str):
            found = "missing" if row.get(key) is None else f"a {type(row[key]).__name__}"
            raise UserError(f"{where}: `{key}` is {found}; it must be text")
    principle = row.get("principle")
    identity = row.get("id")
    fields = {k: v for k, v in row.items() if k not in ("prompt", "response", "principle")}
    return Reply(row["prompt"], row["response"], where,
                 prompt_id=None if identity is None else str(identity),
                 principles=(principle,) if isinstance(principle, str) else (), fields=fields)


def replies_from_traces(rows: Iterable[Mapping[str, Any]], source: str) -> Iterator[Reply]:
    """A run's first answers and revisions. A first answer answers to the principles drawn for
    its sample; a revision to the principle of its round."""
    for number, row in enumerate(rows, start=1):
        where = f"{source}: trace {number}"
        drawn = tuple(row.get("principle_ids") or ())
        fields = _trace_fields(row)
        if row.get("initial") is not None:
            yield Reply(row["prompt"], row["initial"], where, row.get("prompt_id"), "answer",
                        drawn, fields)
        for step, detail in enumerate(row.get("round_details") or (), start=1):
            if detail.get("revision") is not None:
                principle = detail.get("principle")
                yield Reply(row["prompt"], detail["revision"], where, row.get("prompt_id"),
                            f"revision {step}", (principle,) if principle else drawn, fields)


def _trace_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The prompt's fields as the run saw them (selfalign.checks.when.prompt_fields): its row's
    other columns, kept in `metadata`, and the trace's own columns."""
    own = {"id": row.get("prompt_id"), "split": row.get("split"), "language": row.get("language"),
           "user_id": row.get("user_id"), "source": row.get("source"),
           "behavior": row.get("behavior")}
    return {**json.loads(row.get("metadata") or "{}"),
            **{k: v for k, v in own.items() if v is not None}}


# ---------------------------------------------------------------- checks from IFEval's input

def read_ifeval_input(path: Path) -> dict[str, list[Check]]:
    """Each prompt's checks from IFEval's input file (`prompt`, `instruction_id_list`, `kwargs`)."""
    table = {}
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                prompt, checks = _ifeval_line(raw, f"{path}:{number}")
                table[prompt] = checks
    return table


def _ifeval_line(raw: bytes, where: str) -> tuple[str, list[Check]]:
    try:
        row = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{where}: not a JSON object ({err})") from None
    if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
        raise UserError(f"{where}: no `prompt`; IFEval's input lines hold `prompt`, "
                        f"`instruction_id_list` and `kwargs`")
    return row["prompt"], instruction_checks(row, where)

def with_ifeval_checks(replies: Sequence[Reply], table: Mapping[str, Sequence[Check]]
                       ) -> tuple[list[ReplyToScore], list[Reply]]:
    """The replies with their prompt's IFEval checks, and those whose prompt is not in the table."""
    scored, unmatched = [], []
    for reply in replies:
        checks = table.get(reply.prompt)
        if checks is None:
            unmatched.append(reply)
        else:
            scored.append(_to_score(reply, [(check_ids(IFEVAL, checks), checks)]))
    return scored, unmatched


# ---------------------------------------------------------------- checks from principles

def with_principle_checks(replies: Sequence[Reply],
                          by_principle: Mapping[str, Sequence[Check]],
                          shared: Sequence[Check] = ()) -> list[ReplyToScore]:
    """The replies with the checks of the principles they name (all principles' when they name
    none, or none known) and the checks the constitution applies to every principle."""
    scored = []
    for reply in replies:
        named = [name for name in reply.principles if name in by_principle] or list(by_principle)
        owners = [(check_ids(name, by_principle[name]), by_principle[name]) for name in named]
        held = [check for _, owned in owners for check in owned]
        owners.append(shared_not_held(check_ids(CONSTITUTION, shared), shared, held))
        scored.append(_to_score(reply, owners))
    return scored


def _to_score(reply: Reply, owners: Sequence[tuple[Sequence[str], Sequence[Check]]]
              ) -> ReplyToScore:
    """The reply with the checks (ids beside them) that apply to its prompt; those whose `when:`
    it does not match go to `not_applicable`, by id, and are neither passed nor failed."""
    checks, ids, not_applicable = [], [], []
    for owned_ids, owned in owners:
        for check, check_id in zip(owned, owned_ids, strict=True):
            if check.applies(reply.fields):
                checks.append(check)
                ids.append(check_id)
            else:
                not_applicable.append(check_id)
    details = {"prompt_id": reply.prompt_id, "stage": reply.stage,
               "principle": ",".join(reply.principles) or None}
    return ReplyToScore(reply.prompt, reply.reply, checks, ids, reply.where, details,
                        not_applicable)
