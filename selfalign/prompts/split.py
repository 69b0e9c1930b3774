"""Split assignment by a stable hash of the user id, so a user's prompts stay in one split."""

from __future__ import annotations

import re
from dataclasses import dataclass

from selfalign.errors import UserError
from selfalign.records import PromptRecord
from selfalign.stable_hash import unit_hash

DEFAULT_SPLITS = "train=0.8,validation=0.1,test=0.1"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def split_key(record: PromptRecord) -> str:
    """Rows without a user id are their own users, so they are split by prompt id."""
    return f"user:{record.user_id}" if record.user_id is not None else f"id:{record.id}"


@dataclass(frozen=True)
class SplitPlan:
    """Named splits and the share of users each receives."""

    names: tuple[str, ...]
    fractions: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.fractions) or not self.names:
            raise UserError(f"Splits: {len(self.names)} names for {len(self.fractions)} fractions.")
        for name in self.names:
            if not _NAME.match(name):
                raise UserError(f"Split name '{name}' must be letters, digits or _, starting with a letter.")
        if len(set(self.names)) != len(self.names):
            raise UserError(f"Split names repeat: {', '.join(self.names)}.")
        if any(f < 0 for f in self.fractions) or abs(sum(self.fractions) - 1) > 1e-6:
            raise UserError(f"Split fractions must be >= 0 and sum to 1; they sum to {sum(self.fractions):g}.")

    @classmethod
    def parse(cls, spec: str) -> "SplitPlan":
        """Parse 'train=0.8,validation=0.1,test=0.1'."""
        names, fractions = [], []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = part.partition("=")
            try:
                fractions.append(float(value))
            except ValueError:
                raise UserError(f"Splits: '{part}' is not name=fraction (e.g. train=0.8).") from None
            names.append(name.strip())
        return cls(tuple(names), tuple(fractions))

    def assign(self, key: str) -> str:
        point, edge = unit_hash(key), 0.0
        for name, fraction in zip(self.names, self.fractions):
            edge += fraction
            if point < edge:
                return name
        return next(n for n, f in reversed(list(zip(self.names, self.fractions))) if f > 0)
