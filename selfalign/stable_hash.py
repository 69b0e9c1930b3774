"""Numbers derived from text by sha256: the same on every machine, process and resume.

Python's hash() is salted per process, so nothing that must repeat across runs may use it.
"""

from __future__ import annotations

import hashlib


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def unit_hash(key: str) -> float:
    """A number in [0, 1) from the key."""
    return int.from_bytes(_digest(key)[:8], "big") / 2**64


def derived_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed from a run seed and labels (shard, stage, a conversation's JSON...)."""
    return int.from_bytes(_digest("/".join(str(p) for p in (seed, *parts)))[:4], "big") >> 1
