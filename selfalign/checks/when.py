"""`when:` on a check: which prompts it applies to, by the prompts' own fields.

    checks:
      - kind: refusal
        expect: always
        when: {behavior: refuse}          # only prompts that should be declined
      - kind: keywords:existence
        keywords: [recipe]
        when: {category: [cooking, baking]}

Each key names a prompt field (a column of the prompt's row, or `behavior`, `id`, `split`,
`language`, `user_id`, `source`); its value is one value or a list of them. A check applies to a
prompt when every key matches: the prompt has the field and its value is one of those listed.
A prompt without the field does not match. A check that does not apply is neither passed nor
failed: everywhere checks are counted, it is counted apart as not applicable.

Values compare as text (`2` matches a CSV cell "2"; `true` matches a JSON true), so a column's
type does not decide whether a check applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from selfalign.checks.base import CheckArgumentError
from selfalign.prompts.behavior import BEHAVIOR, BehaviorError, parse_behaviors
from selfalign.records import PromptRecord

WHEN = "when"
_SCALARS = (str, int, float, bool)
HELP = ("the prompts this check applies to: a mapping of prompt fields to a value or a list of "
        f"values, e.g. {{{BEHAVIOR}: refuse}}; every key must match, and a prompt without the "
        "field does not match. Elsewhere the check is not applicable (neither passed nor failed)")


@dataclass(frozen=True)
class When:
    """The fields a prompt must have, each with the values it may take."""

    fields: tuple[tuple[str, tuple[Any, ...]], ...]

    def __post_init__(self) -> None:
        # As text once, not per prompt: matching runs on every text a run checks.
        allowed = tuple((name, frozenset(map(_text, values))) for name, values in self.fields)
        object.__setattr__(self, "_allowed", allowed)

    def matches(self, prompt: Mapping[str, Any]) -> bool:
        for name, allowed in self._allowed:
            value = prompt.get(name)
            if value is None or _text(value) not in allowed:
                return False
        return True

    def spec(self) -> dict[str, Any]:
        """As a principle file writes it: one value alone, several as a list."""
        return {name: values[0] if len(values) == 1 else list(values)
                for name, values in self.fields}


def parse_when(value: Any) -> When:
    """A check's `when:` mapping, checked; CheckArgumentError names `when` or `when.<field>`."""
    if not isinstance(value, Mapping) or not value:
        raise CheckArgumentError(WHEN, f"{WHEN}: {value!r} is not a mapping of prompt fields to "
                                       f"values, e.g. {{{BEHAVIOR}: refuse}}")
    fields = []
    for name, wanted in value.items():
        if not isinstance(name, str) or not name.strip():
            raise CheckArgumentError(WHEN, f"{WHEN}: {name!r} is not a field name; keys name "
                                           f"prompt fields, e.g. {BEHAVIOR} or category")
        where = f"{WHEN}.{name}"
        values = tuple(wanted) if isinstance(wanted, (list, tuple)) else (wanted,)
        if not values:
            raise CheckArgumentError(where, f"{where}: an empty list matches no prompt; give "
                                            f"one value or a list of them")
        for item in values:
            if not isinstance(item, _SCALARS):
                raise CheckArgumentError(where, f"{where}: {item!r} is not a value a prompt "
                                                f"field can hold (text, a number or true/false)")
        if name == BEHAVIOR:
            values = _behaviors(values, where)
        fields.append((name, values))
    return When(tuple(fields))


def _behaviors(values: tuple[Any, ...], where: str) -> tuple[str, ...]:
    try:
        return parse_behaviors([str(v) for v in values], where)
    except BehaviorError as err:
        raise CheckArgumentError(where, str(err)) from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def prompt_fields(record: PromptRecord) -> dict[str, Any]:
    """What `when:` sees of a prompt: its row's other columns (metadata, with `behavior`) and
    the record's own id, split, language, user and source."""
    own = {"id": record.id, "split": record.split, "language": record.language,
           "user_id": record.user_id, "source": record.source}
    return {**record.metadata, **{k: v for k, v in own.items() if v is not None}}

