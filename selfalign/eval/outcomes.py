"""Win, tie or loss per prompt from a judgment, their counts, and 95% intervals over prompts.

How ties count: a tie is half a win, so the win rate is (wins + ties / 2) / prompts and equal
models sit at 0.5 whatever share of ties the judge gives. The interval is Wilson's score interval
on that rate with n = the judged prompts. A tie has no variance of its own (it is always 0.5),
so with ties the Wilson interval is wider than the true one: conservative, never too narrow,
which keeps the null test (a model against itself) honest.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from statistics import NormalDist
from typing import Iterable, Sequence

WIN, TIE, LOSS = "win", "tie", "loss"
OUTCOMES = (WIN, TIE, LOSS)
Z95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054
_ROUNDING = 1e-12  # so that 0.55 is within a band of 0.05 despite binary fractions


def outcome_of(preference: float, position_consistent: bool, tie_band: float) -> str:
    """The outcome for the candidate, whose answer is the judgment's `first`.

    Orders that disagree make a tie (FastChat's rule for MT-Bench pairs), and so does a
    preference within `tie_band` of 0.5.
    """
    if not position_consistent or abs(preference - 0.5) <= tie_band + _ROUNDING:
        return TIE
    return WIN if preference > 0.5 else LOSS


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when there is nothing to measure."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


BOOTSTRAP_RESAMPLES = 2000
# Resampled positions drawn at once: 32 MiB of them, whatever the number of prompts.
BOOTSTRAP_CHUNK = 1 << 22


def bootstrap_mean_interval(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                            seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of the mean, resampling the values (one per prompt)
    with replacement; seeded, so a re-run reports the same interval. (0, 1) when empty."""
    import numpy as np

    if not values:
        return (0.0, 1.0)
    data = np.asarray(values, dtype=float)
    # Resamples in chunks, so memory does not grow with prompts × resamples; one generator
    # drawing chunk after chunk gives the very numbers one draw of them all would.
    rng, rows = np.random.default_rng(seed), max(1, BOOTSTRAP_CHUNK // len(data))
    means = np.concatenate([
        data[rng.integers(0, len(data), size=(min(rows, resamples - start), len(data)))].mean(axis=1)
        for start in range(0, resamples, rows)])
    low, high = np.quantile(means, [0.025, 0.975])
    return (float(low), float(high))


def soft_win_rate(preferences: Iterable[float], seed: int = 0) -> dict:
    """The preference-weighted win rate (AlpacaEval's kind): the mean of the both-order soft
    preference over prompts, with its bootstrap interval over prompts. Unlike the tie-band
    count it keeps a weak but consistent lean that every tie would erase."""
    preferences = [float(p) for p in preferences]
    if not preferences:
        return {"prompts": 0, "rate": None, "ci": None, "resamples": BOOTSTRAP_RESAMPLES}
    low, high = bootstrap_mean_interval(preferences, seed=seed)
    return {"prompts": len(preferences), "rate": round(sum(preferences) / len(preferences), 6),
            "ci": [round(low, 6), round(high, 6)], "resamples": BOOTSTRAP_RESAMPLES}


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test of wins against losses (ties left out): P under a fair coin."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Tally:
    """Counts of one group of prompts and what follows from them."""

    wins: int = 0
    ties: int = 0
    losses: int = 0

    @property
    def prompts(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def win_rate(self) -> float | None:
        return (self.wins + self.ties / 2) / self.prompts if self.prompts else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.wins + self.ties / 2, self.prompts)

    def as_dict(self) -> dict:
        rate = self.win_rate
        return {"prompts": self.prompts, "wins": self.wins, "ties": self.ties,
                "losses": self.losses,
                "win_rate": None if rate is None else round(rate, 6),
                "win_rate_ci": [round(x, 6) for x in self.interval] if self.prompts else None}


def tally(outcomes: Iterable[str]) -> Tally:
    counts = Counter(outcomes)
    unknown = set(counts) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)}; expected {', '.join(OUTCOMES)}")
    return Tally(counts[WIN], counts[TIE], counts[LOSS])


def table_by(items: Iterable[tuple[Iterable[str], str]]) -> dict[str, Tally]:
    """Tallies per group: each item is (the groups a prompt belongs to, its outcome).

    A prompt in several groups (judged under principles with different tags) counts in each.
    Groups come out sorted by name.
    """
    grouped: dict[str, list[str]] = {}
    for groups, outcome in items:
        for group in dict.fromkeys(groups):  # once per group, in order
            grouped.setdefault(group, []).append(outcome)
    return {group: tally(grouped[group]) for group in sorted(grouped)}


def position_consistency(flags: Iterable[bool]) -> dict:
    """How often both orders of a comparison agreed."""
    flags = list(flags)
    consistent = sum(1 for f in flags if f)
    return {"judged": len(flags), "consistent": consistent,
            "rate": round(consistent / len(flags), 6) if flags else None}
