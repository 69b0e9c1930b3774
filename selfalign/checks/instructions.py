"""Prompts that carry their own checks: IFEval's format, where a row lists `instruction_id_list`
and one `kwargs` mapping per id beside its `prompt` (IFEval's file, or any file written like it).

A prompt reader keeps those two columns in the record's metadata; this module turns them into
checks, and says which file and line is wrong when an id is unknown or an argument does not fit.
"""

from __future__ import annotations

from typing import Any, Mapping

from selfalign.checks.base import Check, CheckArgumentError
from selfalign.checks.registry import checks_from_instructions
from selfalign.errors import UserError

IDS_FIELD = "instruction_id_list"
KWARGS_FIELD = "kwargs"
IFEVAL_ID_FIELD = "key"  # IFEval's prompts are numbered by `key`, not `id`


def carries_instructions(metadata: Mapping[str, Any]) -> bool:
    return IDS_FIELD in metadata


def instruction_checks(metadata: Mapping[str, Any], where: str) -> list[Check]:
    """The checks a row lists, in its order; `where` (file:line) heads every error message."""
    ids = metadata.get(IDS_FIELD)
    kwargs = metadata.get(KWARGS_FIELD)
    if kwargs is None:
        kwargs = [{} for _ in ids or ()]
    if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) for i in ids):
        raise UserError(f"{where}: `{IDS_FIELD}` must be a list of instruction ids, got {ids!r}")
    if not isinstance(kwargs, (list, tuple)) or len(kwargs) != len(ids) or not all(
            isinstance(k, Mapping) for k in kwargs):
        raise UserError(f"{where}: `{KWARGS_FIELD}` must be a list of {len(ids)} mapping(s), one "
                        f"per id of `{IDS_FIELD}`, got {kwargs!r}")
    try:
        return checks_from_instructions(ids, kwargs)
    except CheckArgumentError as err:
        key = IDS_FIELD if err.field in (None, "kind") else f"{KWARGS_FIELD}.{err.field}"
        raise UserError(f"{where}: {key}: {err}") from None
