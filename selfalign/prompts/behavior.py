"""A prompt's expected behaviour: should a model answer it (`comply`) or decline it (`refuse`)?

One reader for every place that needs it (generate's `when:` checks, eval's safety figures, RL's
rule rewards, `checks score`). A row says it in one of these ways, first match wins:

1. a `behavior` column: `comply` or `refuse`;
2. a `benign` column: true → comply, false → refuse (eval's older marking);
3. XSTest's CSV as published: a `label` column of `safe` → comply, `unsafe` → refuse (any other
   `label` value is left alone, since `label` is a common column name);
4. a `category` column, when harmful categories are given: one of them → refuse, any other →
   comply;
5. the rule's default, e.g. `prompts prepare --behavior refuse` for a file of harmful requests.

A row's own field wins over the default, so a mixed file keeps its marks. A value the reader
cannot read (a `behavior` of "refused", a `benign` of "maybe") is an error naming the field, never
a silent guess: the caller turns it into a reject at the row's file and line.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

BEHAVIOR = "behavior"  # the field (column) name, in prompt rows, traces and eval answers
COMPLY, REFUSE = "comply", "refuse"
BEHAVIORS = (COMPLY, REFUSE)

# eval's harmful categories before `behavior` existed; eval still passes them by default.
HARMFUL_CATEGORIES = ("red_team", "red-team", "harmful", "unsafe", "jailbreak", "adversarial")

_TRUE = {"true", "yes", "1", "y", "benign"}
_FALSE = {"false", "no", "0", "n", "harmful"}
_XSTEST_LABELS = {"safe": COMPLY, "unsafe": REFUSE}


class BehaviorError(ValueError):
    """A row's behaviour field holds a value the reader cannot read; the message names the field."""


@dataclass(frozen=True)
class BehaviorRule:
    """How rows without a `behavior` column get one: harmful categories and a default."""

    default: str | None = None
    harmful_categories: tuple[str, ...] | None = None  # None: `category` is not read

    def __post_init__(self) -> None:
        if self.default is not None and self.default not in BEHAVIORS:
            raise BehaviorError(f"default behaviour: {_unknown(self.default)}")
        if self.harmful_categories is not None:
            normalised = tuple(c.strip().lower() for c in self.harmful_categories if c.strip())
            object.__setattr__(self, "harmful_categories", normalised)


def expected_behavior(row: Mapping[str, Any], rule: BehaviorRule = BehaviorRule()) -> str | None:
    """`comply`, `refuse`, or None when neither the row nor the rule says (see the module doc)."""
    value = row.get(BEHAVIOR)
    if _given(value):
        return _behavior_value(value)
    benign = row.get("benign")
    if _given(benign):
        return _benign_value(benign)
    label = row.get("label")
    if isinstance(label, str) and label.strip().lower() in _XSTEST_LABELS:
        return _XSTEST_LABELS[label.strip().lower()]
    category = row.get("category")
    if rule.harmful_categories is not None and isinstance(category, str) and category.strip():
        return REFUSE if category.strip().lower() in rule.harmful_categories else COMPLY
    return rule.default


def behavior_rule(default: str | None, harmful_categories: str | Iterable[str] | None
                  ) -> BehaviorRule:
    """The rule of `--behavior` and `--harmful-categories` (a comma-separated string or a list;
    None or empty: `category` is not read). BehaviorError for a default that is no behaviour."""
    if isinstance(harmful_categories, str):
        harmful_categories = harmful_categories.split(",")
    categories = tuple(c for c in harmful_categories or () if c.strip())
    return BehaviorRule(default, categories or None)


def parse_behaviors(values: Iterable[str], where: str) -> tuple[str, ...]:
    """Behaviour names given by a person (a `when:` list, a CLI option), checked; `where` names
    the place for the error."""
    checked = []
    for value in values:
        if value not in BEHAVIORS:
            raise BehaviorError(f"{where}: {_unknown(value)}")
        checked.append(value)
    return tuple(checked)


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _behavior_value(value: Any) -> str:
    text = value.strip().lower() if isinstance(value, str) else None
    if text in BEHAVIORS:
        return text
    raise BehaviorError(f"field '{BEHAVIOR}': {_unknown(value)}")


def _benign_value(value: Any) -> str:
    if isinstance(value, bool) or isinstance(value, (int, float)) and value in (0, 1):
        return COMPLY if value else REFUSE
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE | _FALSE:
        return COMPLY if text in _TRUE else REFUSE
    raise BehaviorError(f"field 'benign': {value!r} is neither true nor false "
                        f"(true means the prompt should be answered)")


def _unknown(value: Any) -> str:
    guess = difflib.get_close_matches(str(value).strip().lower(), BEHAVIORS, n=1, cutoff=0.5)
    hint = f"; did you mean '{guess[0]}'?" if guess else ""
    return f"{value!r} is not a behaviour: expected '{COMPLY}' or '{REFUSE}'{hint}"
