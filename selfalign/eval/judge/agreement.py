"""How well a judge (and a reward model) agrees with people, from judged human-labelled pairs.

The unit is a `Verdict`: one pair under one principle, asked in both orders. "Order 1" put the
human-chosen answer in position A, "order 2" put it in position B. Figures of a group of pairs:
- accuracy per order: order 1 is right when P(A) > 0.5, order 2 when P(A) < 0.5 (exactly 0.5
  counts half); `accuracy` is the mean of the two, so a judge that always answers A scores 0.5;
- `label_accuracy`: the label generate would write, the both-order mean P(chosen), above 0.5;
- `first_position_rate`: share of questions answered A (P(A) > 0.5), 0.5 for no lean;
- `order_disagreement_rate`: share of pairs whose two orders picked different answers;
- calibration of P(chosen): Brier score (mean of (1 − P(chosen))²), and expected calibration
  error over confidence bins (confidence = max(P, 1 − P), right = the judge's pick was chosen);
- with reward scores: RM accuracy (r_chosen > r_rejected), its margins, judge–RM agreement.
A pair judged under several principles counts once overall (its principles averaged) and once
in each principle's group. Intervals are Wilson's, 95%, over pairs.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Iterable, Sequence

from selfalign.eval.outcomes import wilson_interval
from selfalign.stages.judge_figures import (POSITION_WARNING_DISAGREEMENT,
                                            POSITION_WARNING_FIRST_RATE)

CALIBRATION_BINS = 5  # confidence bins of width 0.1 over [0.5, 1]
_EDGE = 1e-9  # so that 0.8 lands in [0.8, 0.9) despite binary fractions


@dataclass(frozen=True)
class Verdict:
    """One pair under one principle: P(A) of both orders and the label from them."""

    pair: int  # index of the pair in the run
    principle: str
    p_a_chosen_first: float  # order 1: the human-chosen answer in position A
    p_a_chosen_second: float  # order 2: the human-chosen answer in position B
    p_chosen: float  # the both-order label, P(chosen ≻ rejected), clamped as the judge clamps


@dataclass(frozen=True)
class Scores:
    """A reward model's scores of one pair's two answers."""

    pair: int
    chosen: float
    rejected: float

    @property
    def margin(self) -> float:
        return self.chosen - self.rejected


def _hit(p: float, right_when_above: bool) -> float:
    """1 if P is on the right side of 0.5, 0 if on the wrong one, 0.5 exactly at it."""
    if p == 0.5:
        return 0.5
    return float((p > 0.5) == right_when_above)


def _side(p: float) -> int:
    return (p > 0.5) - (p < 0.5)


def wilson_rate(successes: float, n: int) -> dict:
    """A share with its 95% Wilson interval, both None when there is nothing to count."""
    if not n:
        return {"rate": None, "ci": None}
    low, high = wilson_interval(successes, n)
    return {"rate": round(successes / n, 6), "ci": [round(low, 6), round(high, 6)]}


def _by_pair(verdicts: Iterable[Verdict]) -> dict[int, list[Verdict]]:
    grouped: dict[int, list[Verdict]] = {}
    for v in verdicts:
        grouped.setdefault(v.pair, []).append(v)
    return grouped


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


# ---------------------------------------------------------------- the judge


def judge_figures(verdicts: Sequence[Verdict]) -> dict:
    """Every judge figure of one group of verdicts (see the module docstring)."""
    pairs = _by_pair(verdicts)
    n = len(pairs)
    first = [_mean([_hit(v.p_a_chosen_first, True) for v in vs]) for vs in pairs.values()]
    second = [_mean([_hit(v.p_a_chosen_second, False) for v in vs]) for vs in pairs.values()]
    labels = [_mean([v.p_chosen for v in vs]) for vs in pairs.values()]
    raw = [p for v in verdicts for p in (v.p_a_chosen_first, v.p_a_chosen_second)]
    disagree = sum(any(_side(v.p_a_chosen_first) != _side(1 - v.p_a_chosen_second) for v in vs)
                   for vs in pairs.values())
    return {
        "pairs": n,
        "accuracy": wilson_rate((sum(first) + sum(second)) / 2, n),
        "accuracy_by_order": {"chosen_in_a": wilson_rate(sum(first), n),
                              "chosen_in_b": wilson_rate(sum(second), n)},
        "label_accuracy": wilson_rate(sum(_hit(p, True) for p in labels), n),
        "mean_p_chosen": round(_mean(labels), 6) if n else None,
        "first_position_rate": round(sum(p > 0.5 for p in raw) / len(raw), 6) if raw else None,
        "order_disagreement_rate": round(disagree / n, 6) if n else None,
        **calibration(labels),
    }


def calibration(p_chosen: Sequence[float], bins: int = CALIBRATION_BINS) -> dict:
    """Brier score of P(chosen), expected calibration error and the reliability table."""
    if not p_chosen:
        return {"brier": None, "ece": None, "reliability": []}
    brier = _mean([(1 - p) ** 2 for p in p_chosen])
    width = 0.5 / bins
    table = []
    ece = 0.0
    for index in range(bins):
        low = 0.5 + index * width
        members = [p for p in p_chosen
                   if min(int((max(p, 1 - p) - 0.5) / width + _EDGE), bins - 1) == index]
        if not members:
            table.append({"low": round(low, 6), "high": round(low + width, 6), "pairs": 0,
                          "confidence": None, "accuracy": None})
            continue
        confidence = _mean([max(p, 1 - p) for p in members])
        accuracy = _mean([_hit(p, True) for p in members])
        ece += len(members) / len(p_chosen) * abs(accuracy - confidence)
        table.append({"low": round(low, 6), "high": round(low + width, 6),
                      "pairs": len(members), "confidence": round(confidence, 6),
                      "accuracy": round(accuracy, 6)})
    return {"brier": round(brier, 6), "ece": round(ece, 6), "reliability": table}


# ---------------------------------------------------------------- the reward model


def reward_figures(scores: Sequence[Scores], verdicts: Sequence[Verdict] = ()) -> dict | None:
    """RM accuracy with its interval, the margin distribution, and agreement with the judge
    (over pairs both decided: judge label ≠ 0.5 and scores not equal)."""
    if not scores:
        return None
    margins = sorted(s.margin for s in scores)
    right = sum(1.0 if m > 0 else 0.5 if m == 0 else 0.0 for m in margins)
    labels = {pair: _mean([v.p_chosen for v in vs]) for pair, vs in _by_pair(verdicts).items()}
    decided = [(labels[s.pair] > 0.5, s.margin > 0) for s in scores
               if s.pair in labels and labels[s.pair] != 0.5 and s.margin != 0]
    agree = sum(judge == rm for judge, rm in decided)
    quantiles = statistics.quantiles(margins, n=4) if len(margins) > 1 else margins * 3
    return {"pairs": len(scores), "accuracy": wilson_rate(right, len(scores)),
            "margin": {"mean": round(_mean(margins), 6), "min": round(margins[0], 6),
                       "q1": round(quantiles[0], 6), "median": round(quantiles[1], 6),
                       "q3": round(quantiles[2], 6), "max": round(margins[-1], 6)},
            "judge_agreement": {"decided": len(decided), "agree": agree,
                                "rate": round(agree / len(decided), 6) if decided else None}}


# ---------------------------------------------------------------- groups and warnings


def grouped(verdicts: Sequence[Verdict], scores: Sequence[Scores],
            subset_of: dict[int, str | None]) -> dict:
    """Overall, per subset and per principle (the RM has no principle: per subset only)."""
    subsets = sorted({s for s in subset_of.values() if s is not None})
    by_subset = {}
    for name in subsets:
        members = {pair for pair, s in subset_of.items() if s == name}
        group_verdicts = [v for v in verdicts if v.pair in members]
        by_subset[name] = {**judge_figures(group_verdicts),
                           "reward": reward_figures([s for s in scores if s.pair in members],
                                                    group_verdicts)}
    principles = sorted({v.principle for v in verdicts})
    return {"overall": {**judge_figures(verdicts), "reward": reward_figures(scores, verdicts)},
            "by_subset": by_subset,
            "by_principle": {name: judge_figures([v for v in verdicts if v.principle == name])
                             for name in principles}}


def warnings(figures: dict) -> list[str]:
    """Plain warnings for the top of the report: no better than chance, or mostly position."""
    found = []
    accuracy = figures["accuracy"]
    if accuracy["ci"] is not None and accuracy["ci"][0] <= 0.5 <= accuracy["ci"][1]:
        low, high = accuracy["ci"]
        found.append(f"The judge is not measurably better than a coin: its accuracy "
                     f"{accuracy['rate']:.1%} has a 95% interval ({low:.1%} to {high:.1%}) "
                     f"that contains 50%.")
    first = figures["first_position_rate"]
    if first is not None and max(first, 1 - first) >= POSITION_WARNING_FIRST_RATE:
        side = "first (A)" if first >= 0.5 else "second (B)"
        found.append(f"The judge picked the {side} position in {max(first, 1 - first):.0%} of "
                     f"questions: its labels are mostly position, not content.")
    disagreement = figures["order_disagreement_rate"]
    if disagreement is not None and disagreement >= POSITION_WARNING_DISAGREEMENT:
        found.append(f"Swapping the two answers changed the judge's pick in {disagreement:.0%} "
                     f"of pairs.")
    return found
