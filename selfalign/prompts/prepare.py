"""`prompts prepare`: read sources, normalise, drop PII / languages / duplicates, cap users, split.

Each row passes the steps in this order; the first step that rejects it names the reason:
normalise -> exact duplicate -> contaminated (with --decontaminate) -> PII -> language -> near
duplicate -> per-user cap. Exact
duplicates are caught before the slower steps (they would meet the same fate); only rows that
are finally kept are remembered by the duplicate and cap steps.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from selfalign.errors import UserError
from selfalign.prompts.behavior import BEHAVIOR
from selfalign.prompts.decontaminate import DecontaminateStep
from selfalign.prompts.dedup import DEFAULT_PREFIX_CHARS, ExactDedup, PrefixDedup
from selfalign.prompts.language import LanguageStep, language_labels
from selfalign.prompts.normalize import NormalizeStep
from selfalign.prompts.output import REJECTS_FILE, PreparedWriter
from selfalign.prompts.pii import PII_MODES, PiiStep
from selfalign.prompts.sources import PREPARED_FORMAT, FieldMap, read_prompts
from selfalign.prompts.split import DEFAULT_SPLITS, SplitPlan, split_key
from selfalign.records import PromptRecord, Reject
from selfalign.reject_tally import RejectTally

DEFAULT_MAX_PER_USER = 200


@dataclass(frozen=True)
class PrepareSettings:
    """Everything `prompts prepare` can be told; checked on creation."""

    fields: FieldMap = field(default_factory=FieldMap)
    max_per_user: int = DEFAULT_MAX_PER_USER  # 0: no cap
    splits: SplitPlan = field(default_factory=lambda: SplitPlan.parse(DEFAULT_SPLITS))
    pii: str = "drop"
    languages: frozenset[str] | None = None  # None: keep every language
    prefix_chars: int = DEFAULT_PREFIX_CHARS  # 0: no near-duplicate check
    decontaminate: tuple[str, ...] = ()  # test sets whose prompts must not be trained on

    def __post_init__(self) -> None:
        if self.max_per_user < 0:
            raise UserError(f"--max-per-user must be 0 (no cap) or more, got {self.max_per_user}.")
        if self.prefix_chars < 0:
            raise UserError(f"--prefix-chars must be 0 (off) or more, got {self.prefix_chars}.")
        if self.pii not in PII_MODES:
            raise UserError(f"--pii must be one of {', '.join(PII_MODES)}, got '{self.pii}'.")
        unknown = sorted(set(self.languages) - set(language_labels())) if self.languages else []
        if unknown:
            raise UserError(
                f"Unknown language code(s) {', '.join(unknown)} in --languages. "
                f"Available: {', '.join(language_labels())}."
            )

    def describe(self) -> dict[str, Any]:
        data = asdict(self)
        data["languages"] = sorted(self.languages) if self.languages is not None else None
        data["splits"] = dict(zip(self.splits.names, self.splits.fractions))
        data["decontaminate"] = list(self.decontaminate)
        return data


class UserCap:
    """Keeps at most `limit` rows per user id, in input order; rows without a user are never capped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._kept: Counter[str] = Counter()

    def check(self, record: PromptRecord) -> Reject | None:
        if not self.limit or record.user_id is None or self._kept[record.user_id] < self.limit:
            return None
        return Reject("user_cap", f"user already has {self.limit} prompts kept")

    def remember(self, record: PromptRecord) -> None:
        if record.user_id is not None:
            self._kept[record.user_id] += 1


class Preparer:
    """Runs one record through the steps; remembers it in the dedup and cap steps if kept."""

    def __init__(self, settings: PrepareSettings) -> None:
        self.settings = settings
        self.exact = ExactDedup()
        self.near = PrefixDedup(settings.prefix_chars)
        self.cap = UserCap(settings.max_per_user)
        self.decontaminate = DecontaminateStep(settings.decontaminate)
        self.steps = [
            NormalizeStep(), self.exact, self.decontaminate, PiiStep(settings.pii),
            LanguageStep(settings.languages), self.near, self.cap,
        ]

    def judge(self, record: PromptRecord) -> Reject | None:
        """None if the record is kept (its split is then set), else the reason it is dropped."""
        # An id the source did not give is a hash of the text: follow the text as steps change it,
        # and never write the hash of a text that held personal data.
        derived_id = record.id == record.stable_id()
        for step in self.steps:
            texts = _texts(record)
            reject = step.check(record)
            if reject is not None:
                hide_id = derived_id and reject.reason.startswith("pii:")
                return _located(reject, record, None if hide_id else record.id)
            if derived_id and _texts(record) != texts:
                record.id = record.stable_id()
        for step in (self.exact, self.near, self.cap):
            step.remember(record)
        record.split = self.settings.splits.assign(split_key(record))
        return None


def _texts(record: PromptRecord) -> tuple[str, ...]:
    return (record.prompt, *(turn["content"] for turn in record.context))


def _located(reject: Reject, record: PromptRecord, row_id: str | None) -> Reject:
    reject.source, reject.line, reject.id, reject.stage = record.source, record.line, row_id, "prepare"
    return reject


@dataclass
class PrepareCounts:
    rows_in: int = 0
    rejects: RejectTally = field(default_factory=RejectTally)
    by_split: Counter[str] = field(default_factory=Counter)
    by_language: Counter[str] = field(default_factory=Counter)
    by_behavior: Counter[str] = field(default_factory=Counter)

    def kept(self, record: PromptRecord) -> None:
        self.by_split[record.split] += 1
        self.by_language[record.language or "und"] += 1
        self.by_behavior[record.metadata.get(BEHAVIOR) or "unmarked"] += 1

    @property
    def by_reason(self) -> Counter[str]:
        return self.rejects.counts


def prepare(inputs: Sequence[str], out: str | Path, settings: PrepareSettings | None = None) -> dict[str, Any]:
    """Prepare prompt sources into `out`; returns the report that is also written as report.json."""
    settings = settings or PrepareSettings()
    started = time.monotonic()
    rows = read_prompts(inputs, settings.fields)  # checks that every input exists, before writing
    preparer = Preparer(settings)  # reads the test sets of --decontaminate, before writing
    writer = PreparedWriter(Path(out), settings.splits.names)
    try:
        counts = _run(rows, preparer, writer)
        report = _report(inputs, settings, counts, time.monotonic() - started)
        if settings.decontaminate:
            report["decontamination"] = preparer.decontaminate.report()
        writer.commit(report)
    except BaseException:
        writer.abort()
        raise
    if not report["rows_out"]:  # the next step must not run on nothing
        raise UserError(counts.rejects.message(f"nothing kept from {' '.join(inputs)}",
                                               str(Path(out) / REJECTS_FILE)))
    return report


def _run(rows, preparer: Preparer, writer: PreparedWriter) -> PrepareCounts:
    counts = PrepareCounts()
    for item in rows:
        counts.rows_in += 1
        reject = item if isinstance(item, Reject) else preparer.judge(item)
        if reject is None:
            counts.kept(item)
            writer.keep(item)
        else:
            counts.rejects.add(reject.reason, reject.source, reject.line)
            writer.reject(reject)
    return counts


def _report(inputs: Sequence[str], settings: PrepareSettings, counts: PrepareCounts, seconds: float) -> dict[str, Any]:
    rows_out = sum(counts.by_split.values())
    return {
        "format": PREPARED_FORMAT,
        "splits": list(settings.splits.names),
        "rows_in": counts.rows_in,
        "rows_out": rows_out,
        "rows_rejected": counts.rows_in - rows_out,
        "by_split": {name: counts.by_split[name] for name in settings.splits.names},
        "by_reason": dict(sorted(counts.by_reason.items())),
        "by_language": dict(sorted(counts.by_language.items())),
        "by_behavior": dict(sorted(counts.by_behavior.items())),
        "inputs": list(inputs),
        "settings": settings.describe(),
        "seconds": round(seconds, 3),
    }
