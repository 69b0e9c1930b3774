"""Personal data in prompts: e-mail, phone, credit card, US SSN, IP address.

Each kind is a regular expression that finds candidates and, where the format allows, a check
that rejects look-alikes (Luhn for cards, address ranges for IPs), so dates, versions and order
numbers are left alone. Findings carry the kind and position, never the matched text.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Callable, Iterator

from selfalign.records import PromptRecord, Reject

PII_MODES = ("drop", "redact")


@dataclass(frozen=True)
class PiiSpan:
    kind: str
    start: int
    end: int


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _card(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return 13 <= len(digits) <= 19 and _luhn(digits)


def _phone(match: str) -> bool:
    return 8 <= sum(ch.isdigit() for ch in match) <= 15  # E.164 allows at most 15 digits


def _ipv4(match: str) -> bool:
    return all(len(p) == 1 or not p.startswith("0") for p in match.split("."))  # no 010.1.1.1


def _ipv6(match: str) -> bool:
    try:
        ipaddress.IPv6Address(match)
    except ValueError:
        return False
    return sum(1 for part in match.split(":") if part) >= 3  # "::1"-like short forms are not personal


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_DIGIT = re.compile(r"\d")
# (kind, pattern, check, character the text must hold): earlier kinds win where spans overlap.
# The cheap character test skips patterns that cannot match (most prompts hold no "@").
DETECTORS: list[tuple[str, re.Pattern[str], Callable[[str], bool] | None, str]] = [
    ("email", re.compile(
        r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}\b"
    ), None, "@"),
    ("credit_card", re.compile(  # plain digits, 4-4-4-4(-3), or Amex/Diners 4-6-5 / 4-6-4
        r"(?<![\d-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{4,5})(?![\d-])"
    ), _card, "0"),
    ("ssn", re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"), None, "0"),
    ("phone", re.compile(
        r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,5}(?![\d-])"  # international
        r"|(?<![\w.+-])(?:1[ .-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])\d{3}[ .-]\d{4}(?![\w-])"  # US
    ), _phone, "0"),
    ("ip_address", re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)"), _ipv4, "0"),
    ("ip_address", re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])"), _ipv6, ":"),
]


def _candidates(text: str) -> Iterator[PiiSpan]:
    present = {"@": "@" in text, ":": ":" in text, "0": _DIGIT.search(text) is not None}  # "0": any digit
    for kind, pattern, check, needs in DETECTORS:
        if not present[needs]:
            continue
        for m in pattern.finditer(text):
            if check is None or check(m.group()):
                yield PiiSpan(kind, m.start(), m.end())


def find_pii(text: str) -> list[PiiSpan]:
    """Non-overlapping findings in text order; where two overlap, the earlier detector wins."""
    chosen: list[PiiSpan] = []
    for span in _candidates(text):
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


def redact(text: str, spans: list[PiiSpan]) -> str:
    """Replace each span by its kind in capitals, e.g. `[EMAIL]`."""
    for span in sorted(spans, key=lambda s: s.start, reverse=True):
        text = text[: span.start] + f"[{span.kind.upper()}]" + text[span.end :]
    return text


class PiiStep:
    """Finds personal data in the prompt, its earlier turns and its metadata; drops the row or
    masks the spans."""

    def __init__(self, mode: str = "drop") -> None:
        if mode not in PII_MODES:
            raise ValueError(f"PII mode must be one of {PII_MODES}, got {mode!r}")
        self.mode = mode

    def check(self, record: PromptRecord) -> Reject | None:
        spans = find_pii(record.prompt)
        turn_spans = [find_pii(turn["content"]) for turn in record.context]
        metadata = record.metadata_json() if record.metadata else ""
        metadata_spans = find_pii(metadata) if metadata else []
        found = [("prompt", spans)]
        found += [(f"turn {n}", s) for n, s in enumerate(turn_spans, start=1)]
        found += [("metadata", metadata_spans)]
        if not any(s for _, s in found):
            return None
        if self.mode == "drop":
            return _pii_reject(found)
        record.prompt = redact(record.prompt, spans)
        record.context = [{**turn, "content": redact(turn["content"], s)} if s else turn
                          for turn, s in zip(record.context, turn_spans)]
        if metadata_spans:  # spans never hold quotes or backslashes, so the JSON stays valid
            record.metadata = json.loads(redact(metadata, metadata_spans))
        return None


def _pii_reject(found: list[tuple[str, list[PiiSpan]]]) -> Reject:
    """Names the first finding (prompt first, then earlier turns, then metadata) and the count."""
    where, first = next((where, spans[0]) for where, spans in found if spans)
    count = sum(len(spans) for _, spans in found)
    more = f" ({count} findings)" if count > 1 else ""
    return Reject(f"pii:{first.kind}", f"{first.kind} in {where} at character {first.start}{more}")
