"""Figures of a run's AI feedback: how often the judge confirmed the revision, how biased it was."""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Iterable, Sequence

from selfalign.atomic import atomic_path
from selfalign.stages.judge import Judgment


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def feedback_figures(judgments: Iterable[Judgment], min_preference: float) -> dict:
    """Counts and rates over judged pairs; a rate is None when nothing was judged.

    - `confirmed_share`: pairs with preference ≥ min_preference.
    - `order_disagreement_rate`: pairs where swapping the options changed the pick
      (for some principle).
    - `first_position_win_rate`: share of single questions whose raw P(A) > 0.5, before the
      two orders were averaged; 0.5 means no lean to the first position.
    """
    tally = FeedbackTally(min_preference)
    for judgment in judgments:
        tally.add(judgment.preference, judgment.position_consistent,
                  judgment.first_position_probs, judgment.error)
    return tally.figures()


class FeedbackTally:
    """The figures of `feedback_figures`, counted one judgment at a time: a run's judgments are
    read from its ledger as a stream, never held as objects. Preferences are kept as 8-byte
    floats, for the histogram."""

    def __init__(self, min_preference: float) -> None:
        self.min_preference = min_preference
        self.preferences = array("d")
        self.failures: dict[str, int] = {}
        self.confirmed = self.inconsistent = self.raw = self.first_won = 0

    def add(self, preference: float | None, position_consistent: bool,
            first_position_probs: Iterable[float], error: str | None) -> None:
        if preference is None:
            reason = error or "unknown"
            self.failures[reason] = self.failures.get(reason, 0) + 1
            return
        self.preferences.append(preference)
        self.confirmed += preference >= self.min_preference
        self.inconsistent += not position_consistent
        for p in first_position_probs:
            self.raw += 1
            self.first_won += p > 0.5

    def figures(self) -> dict:
        judged = len(self.preferences)
        figures = {
            "pairs_judged": judged,
            "failures": sum(self.failures.values()),
            "failure_reasons": dict(sorted(self.failures.items())),
            "min_preference": self.min_preference,
            "confirmed_share": _share(self.confirmed, judged),
            "mean_preference": sum(self.preferences) / judged if judged else None,
            "order_disagreement_rate": _share(self.inconsistent, judged),
            "first_position_win_rate": _share(self.first_won, self.raw),
        }
        figures["warning"] = position_warning(figures["first_position_win_rate"],
                                              figures["order_disagreement_rate"])
        return figures


# A judge this one-sided says more about positions than about the answers.
POSITION_WARNING_FIRST_RATE = 0.9
POSITION_WARNING_DISAGREEMENT = 0.5


def position_warning(first_position_rate: float | None,
                     order_disagreement_rate: float | None) -> str | None:
    """A plain warning when the labels are mostly position, else None.

    Either position picked in ≥ 90% of questions (a rate ≥ 0.9 or ≤ 0.1) or orders that
    disagree on ≥ half the pairs.
    """
    reasons = []
    if first_position_rate is not None and (
            max(first_position_rate, 1 - first_position_rate) >= POSITION_WARNING_FIRST_RATE):
        side = "first" if first_position_rate >= 0.5 else "second"
        share = max(first_position_rate, 1 - first_position_rate)
        reasons.append(f"the judge picked the {side} position in {share:.0%} of questions")
    if order_disagreement_rate is not None and (
            order_disagreement_rate >= POSITION_WARNING_DISAGREEMENT):
        reasons.append(f"swapping the two answers changed its pick in "
                       f"{order_disagreement_rate:.0%} of pairs")
    if not reasons:
        return None
    return (f"These labels are mostly position: {' and '.join(reasons)}. Measure the judge on "
            f"human-labelled pairs with `selfalign eval judge` before training on them.")


def write_preference_histogram(preferences: Sequence[float], path: Path) -> None:
    """A histogram of P(chosen ≻ rejected) over [0, 1], written atomically (format from suffix)."""
    # A bare Figure on the Agg canvas: no display, no pyplot state shared with the caller.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    import numpy as np

    path = Path(path)
    figure = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.hist(np.asarray(preferences, dtype=float), bins=20, range=(0.0, 1.0), color="#4c72b0",
              edgecolor="white")
    axes.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("judge preference P(chosen ≻ rejected)")
    axes.set_ylabel("pairs")
    axes.set_title(f"AI feedback on {len(preferences)} pairs")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
