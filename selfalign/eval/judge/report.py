"""What `eval judge` writes: judge.json, pairs.parquet, rejects.parquet, report.md and plots.

judge.json is written last, so its presence means the eval is complete.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from selfalign.atomic import write_json, write_parquet, write_text
from selfalign.eval.report import cell, md_table, pct, save_png, write_eval_card
from selfalign.records import Reject

RELIABILITY_PLOT = "reliability.png"
MARGIN_PLOT = "rm_margins.png"

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
PAIRS_SCHEMA = pa.schema([
    ("pair_id", pa.string()), ("source", pa.string()), ("line", pa.int64()),
    ("subset", pa.string()), ("prompt", _MESSAGES),
    ("chosen", pa.string()), ("rejected", pa.string()),  # as people labelled them
    ("principle_ids", pa.list_(pa.string())),
    # per principle: P(A) with the human-chosen answer in position A, then in position B
    ("p_a_chosen_first", pa.list_(pa.float64())), ("p_a_chosen_second", pa.list_(pa.float64())),
    ("p_chosen", pa.float64()),  # the label generate would write: P(chosen ≻ rejected)
    ("position_consistent", pa.bool_()), ("judge_error", pa.string()),
    ("rm_chosen", pa.float64()), ("rm_rejected", pa.float64()),
])
REJECTS_SCHEMA = pa.schema([("source", pa.string()), ("line", pa.int64()), ("id", pa.string()),
                            ("reason", pa.string()), ("detail", pa.string())])


def write_judge_report(out: Path, evaluation: dict, rows: list, rejects: list[Reject]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(out / "pairs.parquet", [pair_row(r) for r in rows], PAIRS_SCHEMA)
    write_parquet(out / "rejects.parquet",
                  [{"source": r.source, "line": r.line, "id": r.id, "reason": r.reason,
                    "detail": r.detail} for r in rejects], REJECTS_SCHEMA)
    plots = write_plots(out, evaluation, rows)
    write_text(out / "report.md", report_markdown(evaluation, plots))
    write_eval_card(out, "pairs", len(rows),
                    "each labelled pair with the judge's probabilities in both orders")
    write_json(out / "judge.json", evaluation)


def pair_row(row) -> dict:
    pair, judgment = row.pair, row.judgment
    judged = row.error is None
    return {"pair_id": pair.id, "source": pair.source, "line": pair.line, "subset": pair.subset,
            "prompt": pair.conversation, "chosen": pair.chosen, "rejected": pair.rejected,
            "principle_ids": list(row.principles),
            "p_a_chosen_first": [v.p_a_chosen_first for v in row.verdicts],
            "p_a_chosen_second": [v.p_a_chosen_second for v in row.verdicts],
            "p_chosen": judgment.preference if judged else None,
            "position_consistent": bool(judgment.position_consistent) if judged else None,
            "judge_error": row.error, "rm_chosen": row.rm_chosen, "rm_rejected": row.rm_rejected}


# ---------------------------------------------------------------- plots


def write_plots(out: Path, evaluation: dict, rows: list) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    written = []
    overall = evaluation["overall"]
    if overall["pairs"]:
        _reliability_diagram(out / RELIABILITY_PLOT, overall["reliability"], overall["ece"])
        written.append(RELIABILITY_PLOT)
    if overall["reward"]:
        _margin_histogram(out / MARGIN_PLOT, [r.rm_chosen - r.rm_rejected for r in rows
                                              if r.rm_chosen is not None])
        written.append(MARGIN_PLOT)
    return written


def _reliability_diagram(path: Path, table: list[dict], ece: float) -> None:
    """Accuracy against confidence per bin; a calibrated judge sits on the diagonal."""
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    filled = [b for b in table if b["pairs"]]
    width = table[0]["high"] - table[0]["low"]
    top.bar([b["low"] for b in filled], [b["accuracy"] for b in filled], width=width,
            align="edge", color="#4c72b0", edgecolor="white", label="accuracy in bin")
    top.plot([0.5, 1.0], [0.5, 1.0], color="black", linestyle="--", linewidth=1,
             label="calibrated")
    top.plot([b["confidence"] for b in filled], [b["accuracy"] for b in filled], "o",
             color="#c62828", label="mean confidence")
    top.set_ylim(0, 1)
    top.set_ylabel("share where the pick was the human's")
    top.set_title(f"Judge reliability (ECE {ece:.3f})")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar([b["low"] for b in table], [b["pairs"] for b in table], width=width, align="edge",
               color="#9e9e9e", edgecolor="white")
    bottom.set_xlim(0.5, 1.0)
    bottom.set_xlabel("judge confidence max(P, 1 − P) of its both-order label")
    bottom.set_ylabel("pairs")
    save_png(figure, path)


def _margin_histogram(path: Path, margins: list[float]) -> None:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.hist(margins, bins=30, color="#2e7d32", edgecolor="white")
    axes.axvline(0, color="black", linestyle="--", linewidth=1)
    axes.set_xlabel("reward margin r(chosen) − r(rejected); right of 0 agrees with people")
    axes.set_ylabel("pairs")
    axes.set_title(f"Reward model on {len(margins)} human-labelled pairs")
    save_png(figure, path)


# ---------------------------------------------------------------- report.md


def report_markdown(ev: dict, plots: list[str]) -> str:
    parts = [_headline(ev), _judge_table(ev["overall"]), _calibration_section(ev, plots),
             _reward_section(ev, plots),
             _groups_section("By subset", ev["by_subset"]),
             _groups_section("By principle", ev["by_principle"]),
             _inputs_section(ev), _files_section(plots)]
    return "\n\n".join(p for p in parts if p) + "\n"


def _headline(ev: dict) -> str:
    lines = [f"# The judge against human labels: {cell(Path(ev['judge']).name or ev['judge'])}",
             ""]
    for warning in ev["warnings"]:
        lines += [f"> **Warning.** {warning}", ""]
    overall, pairs = ev["overall"], ev["pairs"]
    if overall["pairs"]:
        accuracy = overall["accuracy"]
        orders = overall["accuracy_by_order"]
        lines.append(
            f"**The judge agreed with people on {pct(accuracy['rate'])} of {overall['pairs']} "
            f"pairs (95% CI {pct(accuracy['ci'][0])} to {pct(accuracy['ci'][1])})**, the mean "
            f"of both orders: {pct(orders['chosen_in_a']['rate'])} with the human-chosen answer "
            f"in position A, {pct(orders['chosen_in_b']['rate'])} with it in position B.")
    else:
        lines.append("**No pair could be judged**; see `pairs.judge_failures` in judge.json.")
    lines += ["", f"The scale to read it on: {ev['reference_scale']}"]
    if pairs["judge_failures"]:
        failed = ", ".join(f"{k} {v}" for k, v in pairs["judge_failures"].items())
        lines += ["", f"{sum(pairs['judge_failures'].values())} of {pairs['sampled']} pairs "
                      f"could not be judged ({failed})."]
    return "\n".join(lines)


def _judge_table(figures: dict) -> str:
    if not figures["pairs"]:
        return ""
    label = figures["label_accuracy"]
    rows = [
        ("accuracy, mean of both orders", _with_ci(figures["accuracy"])),
        ("accuracy, human-chosen answer in A", _with_ci(figures["accuracy_by_order"]
                                                        ["chosen_in_a"])),
        ("accuracy, human-chosen answer in B", _with_ci(figures["accuracy_by_order"]
                                                        ["chosen_in_b"])),
        ("accuracy of the label generate writes (both-order mean P > 0.5)", _with_ci(label)),
        ("first-position rate (share of questions answered A; 50% = no lean)",
         pct(figures["first_position_rate"])),
        ("orders disagreed (swapping the answers changed the pick)",
         pct(figures["order_disagreement_rate"])),
        ("mean P(chosen ≻ rejected)", _num(figures["mean_p_chosen"])),
        ("Brier score of P(chosen) (0 is perfect, 0.25 a constant 0.5)", _num(figures["brier"])),
        ("expected calibration error", _num(figures["ece"])),
    ]
    return "## The judge\n\n" + md_table(["figure", "value"], [list(r) for r in rows])


def _calibration_section(ev: dict, plots: list[str]) -> str:
    overall = ev["overall"]
    if not overall["pairs"]:
        return ""
    lines = ["## Calibration", "",
             "Each pair's label P(chosen ≻ rejected) gives the judge's pick and its confidence "
             "max(P, 1 − P); a calibrated judge is right as often as it is confident."]
    if RELIABILITY_PLOT in plots:
        lines += ["", f"![reliability diagram]({RELIABILITY_PLOT})"]
    rows = [[f"{b['low']:.1f}–{b['high']:.1f}", b["pairs"], _num(b["confidence"]),
             _num(b["accuracy"])] for b in overall["reliability"]]
    lines += ["", md_table(["confidence", "pairs", "mean confidence", "accuracy"], rows)]
    return "\n".join(lines)


def _reward_section(ev: dict, plots: list[str]) -> str:
    reward = ev["overall"]["reward"]
    if not reward:
        return ""
    margin, agreement = reward["margin"], reward["judge_agreement"]
    lines = ["## Reward model", "", f"`{cell(ev['reward_model'])}` scored both answers of "
             f"{reward['pairs']} pairs.", "",
             f"- Accuracy (r(chosen) > r(rejected)): {_with_ci(reward['accuracy'])}.",
             f"- Margin r(chosen) − r(rejected): mean {margin['mean']:.4g}, median "
             f"{margin['median']:.4g}, quartiles {margin['q1']:.4g} to {margin['q3']:.4g}, range "
             f"{margin['min']:.4g} to {margin['max']:.4g}.",
             f"- Agreement with the judge: {agreement['agree']} of {agreement['decided']} pairs "
             f"both decided ({pct(agreement['rate'])})."]
    if MARGIN_PLOT in plots:
        lines += ["", f"![reward margins]({MARGIN_PLOT})"]
    return "\n".join(lines)


def _groups_section(title: str, groups: dict) -> str:
    if not groups:
        return ""
    scored = any(g.get("reward") for g in groups.values())
    rows = []
    for name, g in groups.items():
        reward = g.get("reward")
        rows.append([cell(name), g["pairs"], _with_ci(g["accuracy"]),
                     pct(g["accuracy_by_order"]["chosen_in_a"]["rate"]),
                     pct(g["accuracy_by_order"]["chosen_in_b"]["rate"]),
                     pct(g["first_position_rate"]), pct(g["order_disagreement_rate"]),
                     _num(g["brier"]), _num(g["ece"])]
                    + ([_with_ci(reward["accuracy"]) if reward else "n/a"] if scored else []))
    headers = ["group", "pairs", "accuracy (95% CI)", "chosen in A", "chosen in B",
               "first position", "orders disagreed", "Brier", "ECE"]
    if scored:
        headers.append("RM accuracy (95% CI)")
    return f"## {title}\n\n" + md_table(headers, rows)


def _inputs_section(ev: dict) -> str:
    pairs = ev["pairs"]
    s = ev["settings"]
    lines = ["## Inputs", "",
             f"{pairs['read']} rows read from {cell(', '.join(s['pairs']))}: {pairs['usable']} "
             f"usable pairs, {pairs['sampled']} judged"
             + (f" (a seeded sample, --limit {s['limit']} --seed {s['seed']})"
                if pairs["sampled"] < pairs["usable"] else "") + ". "
             f"{s['judge_principles']} principle(s) drawn per pair, each asked in both orders"
             + (", with chain of thought (labels clamped to 0.4–0.6)" if s["judge_cot"] else "")
             + "."]
    if ev["rejects"]:
        lines += ["", "Rows not used, by reason (each row in rejects.parquet):", "",
                  md_table(["reason", "rows"], [[k, v] for k, v in ev["rejects"].items()])]
    return "\n".join(lines)


def _files_section(plots: list[str]) -> str:
    files = ["judge.json (every figure and the settings)",
             "pairs.parquet (every pair: both orders' P(A) per principle, the label, RM scores)",
             "rejects.parquet (rows not used, with the reason)", *plots]
    return "## Files\n\n" + "\n".join(f"- {f}" for f in files)


def _with_ci(rate: dict) -> str:
    if rate["rate"] is None:
        return "n/a"
    return f"{pct(rate['rate'])} ({pct(rate['ci'][0])} to {pct(rate['ci'][1])})"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
