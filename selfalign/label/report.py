"""Agreement and screening: how labellers agree with the gold answers, with each other, and how
the run's AI labels (and a reward model) agree with people.

The unit of agreement is a comparison: a `compare` label is one (reply 0 vs reply 1: 0, 1 or
tie), a `rank` label of K replies is C(K,2) of them. Two labels of one comparison agree when they
give the same outcome; a tie agrees only with a tie (counting ties, as MT-Bench and AlpacaFarm
report), and the figure without ties counts only comparisons both decided. Skips count nowhere.
Gold items measure each labeller against the owner's answers and nothing else; agreement between
labellers is over the other items two or more people labelled. Intervals are Wilson's, 95%.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from selfalign.eval.judge.agreement import Verdict, judge_figures, warnings, wilson_rate
from selfalign.label.project import Project

TIE = "tie"
REFERENCE = [
    "InstructGPT's labellers agreed with each other on 72.6 ± 1.5% of comparisons "
    "(held-out labellers 77.3 ± 1.3%).",
    "Counting ties: MT-Bench human–human 63% (81% without ties); AlpacaFarm one annotator "
    "against the majority of three others 65.7%.",
    "A judge near 70% against people is strong; 50% is a coin.",
]


def comparisons(label: dict) -> dict[str, object]:
    """{comparison: outcome} of one label: the better reply's index, or 'tie'; {} for a skip."""
    answer = label["answer"]
    if answer.get("skip"):
        return {}
    if "preferred" in answer:
        return {"0-1": answer["preferred"]}
    if answer.get("tie"):
        return {"0-1": TIE}
    if "order" in answer:
        place = {reply: n for n, reply in enumerate(answer["order"])}
        return {f"{i}-{j}": (i if place[i] < place[j] else j)
                for i, j in itertools.combinations(sorted(place), 2)}
    return {}


def build_report(project: Project, reward_model: str | None = None) -> dict:
    labels = project.db.all_labels()
    overlap = _by_unit([l for l in labels if not l["gold"]])
    gold = _by_unit([l for l in labels if l["gold"]])
    return {
        "run": str(project.run.out),
        "labels": len(labels),
        "instructions_sha256": sorted({l["instructions_sha256"] for l in labels
                                       if l["instructions_sha256"]}),
        "labellers": [_labeller_figures(name, labels, overlap, gold)
                      for name in dict.fromkeys(l["labeller"] for l in labels)],
        "between_labellers": between_labellers(overlap),
        "ai_vs_people": ai_vs_people(project, labels),
        "reward_model": reward_vs_people(labels, reward_model) if reward_model else None,
        "ratings": _ratings(labels),
        "flags": _flags(labels),
        "reference": REFERENCE,
    }


def _by_unit(labels: list[dict]) -> dict[tuple, dict[str, object]]:
    """(item, comparison) → labeller → outcome."""
    units: dict[tuple, dict[str, object]] = defaultdict(dict)
    for label in labels:
        for comparison, outcome in comparisons(label).items():
            units[(label["item"], comparison)][label["labeller"]] = outcome
    return units


def _labeller_figures(name: str, labels: list[dict], overlap: dict, gold: dict) -> dict:
    """Items done, pace, ties and skips; agreement with the owner on gold items, and with the
    other labellers on the items they shared (gold items left out)."""
    own = [l for l in labels if l["labeller"] == name]
    seconds = [l["seconds"] for l in own if l["seconds"] is not None]
    owner = next((l["labeller"] for l in labels if l["owner"]), None)
    gold_pairs = [(answers[name], answers[owner]) for answers in gold.values()
                  if name in answers and owner in answers and name != owner]
    peer_pairs = [(answers[name], theirs) for answers in overlap.values() if name in answers
                  for other, theirs in answers.items() if other != name]
    return {"labeller": name, "pseudonym": own[0]["pseudonym"], "owner": own[0]["owner"],
            "items_done": len(own),
            "median_seconds": round(statistics.median(seconds), 2) if seconds else None,
            "tie_share": round(sum(bool(l["answer"].get("tie")) for l in own) / len(own), 4),
            "skip_share": round(sum(bool(l["answer"].get("skip")) for l in own) / len(own), 4),
            "gold": {"comparisons": len(gold_pairs),
                     **wilson_rate(sum(a == b for a, b in gold_pairs), len(gold_pairs))},
            "others": {"comparisons": len(peer_pairs),
                       **wilson_rate(sum(a == b for a, b in peer_pairs), len(peer_pairs))}}


def between_labellers(by_unit: dict) -> dict:
    """Pairwise agreement over every comparison two labellers both answered, with and without
    ties, Cohen's kappa per pair of labellers and Fleiss' kappa over all."""
    hits = n = decided_hits = decided_n = 0
    per_pair: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for answers in by_unit.values():
        for (a, x), (b, y) in itertools.combinations(sorted(answers.items()), 2):
            n += 1
            hits += x == y
            per_pair[(a, b)].append((_category(x), _category(y)))
            if TIE not in (x, y):
                decided_n += 1
                decided_hits += x == y
    return {"comparisons": n, "with_ties": wilson_rate(hits, n),
            "decided": {"comparisons": decided_n, **wilson_rate(decided_hits, decided_n)},
            "cohen_kappa": {f"{a} / {b}": cohen_kappa(pairs) for (a, b), pairs in
                            sorted(per_pair.items())},
            "fleiss_kappa": fleiss_kappa([[_category(o) for o in answers.values()]
                                          for answers in by_unit.values() if len(answers) > 1])}


def _category(outcome) -> str:
    return str(outcome)


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' categories over the items both rated."""
    if not pairs:
        return None
    observed = sum(x == y for x, y in pairs) / len(pairs)
    first, second = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    expected = sum(first[c] * second[c] for c in first) / len(pairs) ** 2
    return None if expected == 1 else round((observed - expected) / (1 - expected), 6)


def fleiss_kappa(ratings: list[list[str]]) -> float | None:
    """Fleiss' kappa over items each rated by two or more raters (their numbers may differ)."""
    ratings = [r for r in ratings if len(r) > 1]
    if not ratings:
        return None
    totals: Counter = Counter()
    agreement = []
    for item in ratings:
        counts = Counter(item)
        totals.update(counts)
        m = len(item)
        agreement.append((sum(c * c for c in counts.values()) - m) / (m * (m - 1)))
    all_ratings = sum(totals.values())
    expected = sum((c / all_ratings) ** 2 for c in totals.values())
    observed = sum(agreement) / len(agreement)
    return None if expected == 1 else round((observed - expected) / (1 - expected), 6)


# ---------------------------------------------------------------- the AI and people


def ai_vs_people(project: Project, labels: list[dict]) -> dict:
    """The run's judge labels against each decided human comparison label: overall and per
    principle; with the judge's raw answers in both orders, its accuracy per order and its
    first-position rate (agreement.judge_figures, the figures `eval judge` reports)."""
    decided = [l for l in labels if "preferred" in l["answer"]
               and l["payload"].get("ai_preference") is not None]
    # The AI's label P(revision ≻ answer) against the person's choice; exactly 0.5 counts
    # half, as agreement.py counts a judge's undecided answer.
    agree = [(l["payload"].get("principle") or "-",
              0.5 if l["payload"]["ai_preference"] == 0.5 else
              float((l["payload"]["ai_preference"] > 0.5) == (l["answer"]["preferred"] == 0)))
             for l in decided]
    by_principle = defaultdict(list)
    for principle, hit in agree:
        by_principle[principle].append(hit)
    verdicts = _verdicts(project, decided)
    return {"labels": len(agree), **wilson_rate(sum(h for _, h in agree), len(agree)),
            "by_principle": {p: {"labels": len(h), **wilson_rate(sum(h), len(h))}
                             for p, h in sorted(by_principle.items())},
            "judge": judge_figures(verdicts) if verdicts else None,
            "judge_warnings": warnings(judge_figures(verdicts)) if verdicts else [],
            "judge_by_principle": {name: judge_figures([v for v in verdicts
                                                        if v.principle == name])
                                   for name in sorted({v.principle for v in verdicts})}}


def _verdicts(project: Project, decided: list[dict]) -> list[Verdict]:
    """One Verdict per (label, judge principle), oriented to the human choice: the judge asked
    (revision, answer) in order 1 and (answer, revision) in order 2."""
    raw = _judge_answers(project, {(l["payload"]["prompt_id"], l["payload"]["sample_index"])
                                   for l in decided})
    verdicts = []
    for number, label in enumerate(decided):
        key = (label["payload"]["prompt_id"], label["payload"]["sample_index"])
        if key not in raw:
            continue
        principles, probs = raw[key]
        for name, revision_in_a, revision_in_b in zip(principles, probs[0::2], probs[1::2]):
            if label["answer"]["preferred"] == 0:
                first, second = revision_in_a, revision_in_b
            else:  # people chose the first answer: their choice sat in A in order 2
                first, second = revision_in_b, revision_in_a
            verdicts.append(Verdict(number, name, first, second, (first + 1 - second) / 2))
    return verdicts


def _judge_answers(project: Project, keys: set) -> dict:
    import pyarrow.parquet as pq

    if not keys:
        return {}
    found = {}
    for _, files in project.run.files("traces").items():
        for f in files:
            names = pq.read_schema(f).names
            if "first_position_probs" not in names:
                return {}
            for row in pq.read_table(f, columns=["prompt_id", "sample_index",
                                                 "judge_principle_ids",
                                                 "first_position_probs"]).to_pylist():
                key = (row["prompt_id"], row["sample_index"])
                probs = row["first_position_probs"] or []
                if key in keys and probs and len(probs) == 2 * len(row["judge_principle_ids"]):
                    found[key] = (row["judge_principle_ids"], probs)
    return found


def reward_vs_people(labels: list[dict], reward_model: str) -> dict:
    """A reward model's accuracy against each decided human comparison label."""
    from selfalign.eval.reward import check_reward_model, score_answers

    model = check_reward_model(reward_model)
    decided = [l for l in labels if "preferred" in l["answer"]]
    if not decided:
        return {"labels": 0, "rate": None, "ci": None}
    conversations = [l["payload"]["conversation"] for l in decided]
    people = [l["payload"]["replies"][l["answer"]["preferred"]] for l in decided]
    others = [l["payload"]["replies"][1 - l["answer"]["preferred"]] for l in decided]
    scores = score_answers(model, conversations * 2, people + others)
    hits = sum(1.0 if a > b else 0.5 if a == b else 0.0
               for a, b in zip(scores[:len(decided)], scores[len(decided):]))
    return {"model": reward_model, "labels": len(decided), **wilson_rate(hits, len(decided))}


def _ratings(labels: list[dict]) -> dict:
    scores = defaultdict(list)
    for label in labels:
        if "score" in label["answer"]:
            scores[label["labeller"]].append(label["answer"]["score"])
    return {name: {"rated": len(s), "mean": round(sum(s) / len(s), 3)}
            for name, s in scores.items()}


def _flags(labels: list[dict]) -> dict:
    counts: Counter = Counter()
    for label in labels:
        counts.update(label["answer"].get("flags", []))
    return dict(sorted(counts.items()))
