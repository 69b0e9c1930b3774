"""What an eval writes: eval.json, answers.parquet, report.md and the PNG plots beside it.

Every file is written atomically, so a reader never sees half of one.
"""

from __future__ import annotations

import html
from pathlib import Path

import pyarrow as pa

from selfalign.atomic import write_json, write_parquet, write_text
from selfalign.eval.checks_report import (CHECKS_PLOT, checks_section, ifeval_section,
                                          write_checks_plot)
from selfalign.eval.outcomes import OUTCOMES
from selfalign.eval.refusal import is_refusal
from selfalign.eval.report_format import COLOURS, cell, md_table, pct, save_png
from selfalign.eval.results import MODEL_ROLES, PromptResult
from selfalign.eval.safety_report import safety_section, xstest_section
from selfalign.hub_card import card_data, card_text, license_note
from selfalign.prompts.behavior import BEHAVIOR

TAG_PLOT = "outcomes_by_tag.png"
CATEGORY_PLOT = "outcomes_by_category.png"
LENGTH_PLOT = "lengths.png"
XSTEST_ANSWERS = "xstest.parquet"  # both models' answers to XSTest, in answers.parquet's columns
SHOWN_CHARS = 1500  # of an answer in report.md; answers.parquet has every character

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
ANSWERS_SCHEMA = pa.schema([
    ("prompt_id", pa.string()), ("split", pa.string()), ("category", pa.string()),
    ("behavior", pa.string()),  # comply, refuse or null, as the prompt reader marked it
    ("prompt", _MESSAGES),
    ("candidate_answer", pa.string()), ("baseline_answer", pa.string()),
    ("candidate_tokens", pa.int64()), ("baseline_tokens", pa.int64()),
    ("candidate_finish", pa.string()), ("baseline_finish", pa.string()),
    ("candidate_refusal", pa.bool_()), ("baseline_refusal", pa.bool_()),
    ("principle_ids", pa.list_(pa.string())),
    ("preference", pa.float64()),  # P(candidate ≻ baseline), mean over both orders
    ("position_consistent", pa.bool_()),
    ("first_position_probs", pa.list_(pa.float64())),  # raw P(option A), per question asked
    ("outcome", pa.string()), ("skipped", pa.string()), ("judge_error", pa.string()),
    ("candidate_reward", pa.float64()), ("baseline_reward", pa.float64()),
    ("metadata", pa.string()),
    ("check_ids", pa.list_(pa.string())),  # the checks that apply to the prompt
    ("candidate_checks_failed", pa.list_(pa.string())),  # None when the model gave no answer
    ("baseline_checks_failed", pa.list_(pa.string())),
])


def write_report(out: Path, evaluation: dict, results: list[PromptResult],
                 xstest: list[PromptResult] = ()) -> None:
    """All four kinds of file (and xstest.parquet with --xstest); eval.json last, so its presence
    means the eval is complete."""
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(out / "answers.parquet", [answer_row(r) for r in results], ANSWERS_SCHEMA)
    if xstest:
        write_parquet(out / XSTEST_ANSWERS, [answer_row(r) for r in xstest], ANSWERS_SCHEMA)
    plots = write_plots(out, evaluation, results)
    write_text(out / "report.md", report_markdown(evaluation, results, plots))
    write_eval_card(out, "answers", len(results),
                    "one row per prompt: both models' answers and the judge's verdict")
    write_json(out / "eval.json", evaluation)


def write_eval_card(out: Path, config: str, rows: int, what: str) -> None:
    """README.md, so the folder loads and publishes like a run: `<config>.parquet` as the config's
    one split, `test` (an eval's prompts are held out from training)."""
    data = card_data(out, {config: {"test": f"{config}.parquet"}}, rows, tags=("evaluation",))
    write_text(out / "README.md", card_text(data, f"""# selfalign evaluation

`{config}.parquet`: {what}. The figures are in `report.md`, every one of them in JSON beside it.

{license_note("other")}
"""))


# ---------------------------------------------------------------- answers.parquet


def answer_row(result: PromptResult) -> dict:
    row = {"prompt_id": result.record.id, "split": result.record.split,
           "category": result.category, "behavior": result.record.metadata.get(BEHAVIOR),
           "prompt": result.record.conversation(),
           "metadata": result.record.metadata_json()}
    for role in MODEL_ROLES:
        completion = result.answer(role)
        answered = result.answered(role)
        row[f"{role}_answer"] = completion.text if answered else None
        row[f"{role}_tokens"] = completion.output_tokens if completion else None
        row[f"{role}_finish"] = ((completion.error or completion.finish_reason)
                                 if completion else None)
        row[f"{role}_refusal"] = is_refusal(completion.text) if answered else None
        row[f"{role}_reward"] = getattr(result, f"{role}_reward")
        passes = result.check_passes.get(role)
        row[f"{role}_checks_failed"] = (None if passes is None else
                                        [i for i, ok in zip(result.check_ids, passes) if not ok])
    row["check_ids"] = list(result.check_ids)
    judgment = result.judgment
    row.update({"preference": result.preference, "outcome": result.outcome,
                "skipped": result.skipped})
    if judgment is None:
        row.update({"principle_ids": [p.name for p in result.principles],
                    "position_consistent": None, "first_position_probs": [], "judge_error": None})
    else:
        row.update({"principle_ids": list(judgment.principle_ids),
                    "position_consistent": bool(judgment.position_consistent),
                    "first_position_probs": [float(p) for p in judgment.first_position_probs],
                    "judge_error": getattr(judgment, "error", None)})
    return row


# ---------------------------------------------------------------- plots


def write_plots(out: Path, evaluation: dict, results: list[PromptResult]) -> list[str]:
    """The PNGs for report.md; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    written = []
    overall = {key: evaluation[key] for key in ("wins", "ties", "losses", "win_rate")}
    overall.update(win_rate_ci=evaluation["win_rate_ci"], prompts=evaluation["judged"])
    tag_rows = [("all prompts", overall), *evaluation["by_tag"].items()]
    if evaluation["judged"]:
        _outcome_bars(out / TAG_PLOT, "Candidate against baseline, by principle tag", tag_rows)
        written.append(TAG_PLOT)
    if evaluation["by_category"]:
        _outcome_bars(out / CATEGORY_PLOT, "Candidate against baseline, by prompt category",
                      [("all prompts", overall), *evaluation["by_category"].items()])
        written.append(CATEGORY_PLOT)
    if write_checks_plot(out / CHECKS_PLOT, evaluation):
        written.append(CHECKS_PLOT)
    if any(r.answered(role) for r in results for role in MODEL_ROLES):
        _length_histograms(out / LENGTH_PLOT, results)
        written.append(LENGTH_PLOT)
    return written


def _outcome_bars(path: Path, title: str, rows: list[tuple[str, dict]]) -> None:
    """Stacked win/tie/loss shares per group, the win rate and its 95% interval on top."""
    import matplotlib.pyplot as plt

    rows = [(label, t) for label, t in rows if t["prompts"]]
    labels = [f"{label} (n={t['prompts']})" for label, t in rows]
    figure, axes = plt.subplots(figsize=(8, 1.2 + 0.55 * len(rows)))
    positions = list(range(len(rows)))[::-1]
    left = [0.0] * len(rows)
    for outcome, key in zip(OUTCOMES, ("wins", "ties", "losses")):
        shares = [t[key] / t["prompts"] for _, t in rows]
        axes.barh(positions, shares, left=left, color=COLOURS[outcome], height=0.6,
                  label=outcome)
        left = [a + b for a, b in zip(left, shares)]
    rates = [t["win_rate"] for _, t in rows]
    errors = [[t["win_rate"] - t["win_rate_ci"][0] for _, t in rows],
              [t["win_rate_ci"][1] - t["win_rate"] for _, t in rows]]
    axes.errorbar(rates, positions, xerr=errors, fmt="D", color="black", capsize=4,
                  label="win rate, 95% CI")
    axes.axvline(0.5, color="black", linestyle=":", linewidth=1)
    axes.set_yticks(positions, labels)
    axes.set_xlim(0, 1)
    axes.set_xlabel("share of prompts (a tie counts as half a win in the win rate)")
    axes.set_title(title)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(rows) < 3 else -0.18),
                ncol=4, frameon=False)
    save_png(figure, path)


def _length_histograms(path: Path, results: list[PromptResult]) -> None:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4))
    lengths = {role: [r.answer(role).output_tokens for r in results if r.answered(role)]
               for role in MODEL_ROLES}
    longest = max((max(v) for v in lengths.values() if v), default=1)
    bins = min(30, max(5, longest))
    for role, values in lengths.items():
        if not values:
            continue
        axes.hist(values, bins=bins, range=(0, longest), alpha=0.5, color=COLOURS[role],
                  label=f"{role} (mean {sum(values) / len(values):.0f})")
        axes.axvline(sum(values) / len(values), color=COLOURS[role], linestyle="--")
    axes.set_xlabel("answer length (output tokens)")
    axes.set_ylabel("answers")
    axes.set_title("Answer lengths")
    axes.legend()
    save_png(figure, path)


# ---------------------------------------------------------------- report.md


def report_markdown(evaluation: dict, results: list[PromptResult], plots: list[str]) -> str:
    by_id = {r.record.id: r for r in results}
    parts = [_headline(evaluation), checks_section(evaluation, plots),
             safety_section(evaluation), ifeval_section(evaluation),
             xstest_section(evaluation), _settings_table(evaluation),
             _tables_section("Win rate by principle tag", evaluation["by_tag"],
                             TAG_PLOT if TAG_PLOT in plots else None),
             _tables_section("Win rate by prompt category", evaluation["by_category"],
                             CATEGORY_PLOT if CATEGORY_PLOT in plots else None),
             _judge_section(evaluation)]
    if evaluation["prompts"]:  # none with --xstest or --ifeval alone
        parts += [_length_section(evaluation, plots), _refusal_section(evaluation),
                  _reward_section(evaluation), _examples_section(evaluation, by_id)]
    parts.append(_files_section(plots, bool(evaluation.get("xstest"))))
    return "\n\n".join(p for p in parts if p) + "\n"


def _headline(ev: dict) -> str:
    lines = [f"# Eval: {_short(ev['candidate'])} against {_short(ev['baseline'])}", ""]
    if ev.get("checks_only"):
        why = "--checks-only" if ev["settings"]["checks_only"] else "no --prompts to compare"
        lines.append(f"**No judge** ({why}): the answers are scored with checks and the refusal "
                     f"detector only.")
    elif ev["judged"]:
        low, high = ev["win_rate_ci"]
        lines.append(f"**The candidate's win rate is {pct(ev['win_rate'])} "
                     f"(95% CI {pct(low)} to {pct(high)}) over {ev['judged']} judged prompts: "
                     f"{counts_text(ev)}.** "
                     f"{_verdict(low, high)} (sign test over the decided prompts: "
                     f"p = {ev['sign_test_p']:.3g}.)")
        lines += ["", soft_win_rate_text(ev["preference_win_rate"])]
        lines += ["", "The clearest wins and losses, with both answers, are under "
                      "[the most one-sided examples](#the-most-one-sided-examples)."]
    else:
        lines.append("**No prompt could be judged**; see `skipped` in eval.json.")
    if ev["same_model"]:
        lines += ["", "> **Same model.** The candidate and the baseline are the same model, so "
                      "this is a null test: the win rate should be near 50% and its interval "
                      "should contain 50%; anything else measures the judge's bias or noise."]
    if ev["skipped"] and not ev.get("checks_only"):
        skipped = ", ".join(f"{reason} {n}" for reason, n in ev["skipped"].items())
        lines += ["", f"{ev['prompts'] - ev['judged']} of {ev['prompts']} prompts have no "
                      f"outcome ({skipped})."]
    return "\n".join(lines)


def soft_win_rate_text(soft: dict) -> str:
    """The preference-weighted win rate, said apart from the tie-band one."""
    low, high = soft["ci"]
    return (f"Preference-weighted win rate: {pct(soft['rate'])} (95% bootstrap CI {pct(low)} "
            f"to {pct(high)}, {soft['resamples']} resamples over prompts): the mean of the "
            f"judge's both-order P(candidate better). The win rate above counts outcomes (a "
            f"tie, within the tie band or with orders that disagree, is half a win); this one "
            f"averages the soft preferences, so a weak but steady lean shows here even when "
            f"every prompt is a tie.")


def _verdict(low: float, high: float) -> str:
    if low > 0.5:
        return "The candidate is better than the baseline under this judge."
    if high < 0.5:
        return "The candidate is worse than the baseline under this judge."
    return "No clear difference: the interval contains 50%."


def _settings_table(ev: dict) -> str:
    s = ev["settings"]
    rows = [("candidate", ev["candidate"]), ("baseline", ev["baseline"]), ("judge", ev["judge"] or "none (--checks-only)"),
            ("prompts", f"{', '.join(s['prompts'])} "
                        f"(split: {s['split'] or 'test of a prepared folder, else every row'})"
                        if s["prompts"] else "none (XSTest or --ifeval only)"),
            ("principles", ", ".join(s["principles"]) or "none"),
            ("judging", f"{s['judge_principles']} principle(s) per pair, both orders; "
                        f"tie when the orders disagree or |P − 0.5| ≤ {s['tie_band']}"),
            ("answers", f"max {s['max_tokens']} tokens, temperature {s['temperature']}, "
                        f"top-p {s['top_p']}, seed {s['seed']}, backend {s['backend']}"),
            ("interval", ev["interval"])]
    if ev.get("checks_only"):
        rows = [row for row in rows if row[0] not in ("judging", "interval")]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {cell(v)} |" for k, v in rows)


def _tables_section(title: str, tables: dict, plot: str | None) -> str:
    if not tables:
        return ""
    lines = [f"## {title}", ""]
    if plot:
        lines += [f"![{title}]({plot})", ""]
    rows = [[cell(name), t["prompts"], t["wins"], t["ties"], t["losses"], pct(t["win_rate"]),
             f"{pct(t['win_rate_ci'][0])} to {pct(t['win_rate_ci'][1])}"]
            for name, t in tables.items()]
    lines.append(md_table(["group", "prompts", "wins", "ties", "losses", "win rate", "95% CI"],
                        rows))
    return "\n".join(lines)


def _judge_section(ev: dict) -> str:
    pc, longer = ev["position_consistency"], ev["longer_answer_won"]
    lines = ["## The judge", ""]
    if pc["judged"]:
        lines.append(f"- Position consistency: {pc['consistent']} of {pc['judged']} pairs "
                     f"({pct(pc['rate'])}) got the same verdict in both orders; the others "
                     f"count as ties.")
    if longer["decided_with_unequal_lengths"]:
        lines.append(f"- Length: the longer answer won {longer['longer_won']} of "
                     f"{longer['decided_with_unequal_lengths']} decided prompts "
                     f"({pct(longer['rate'])}); far above 50% hints at a judge that "
                     f"rewards length.")
    return "\n".join(lines) if len(lines) > 2 else ""


def _length_section(ev: dict, plots: list[str]) -> str:
    lines = ["## Answer lengths", ""]
    if LENGTH_PLOT in plots:
        lines += [f"![Answer lengths]({LENGTH_PLOT})", ""]
    rows = [[role, n["answers"], _num(n["mean_tokens"]), _num(n["mean_chars"]),
             n["cut_at_max_tokens"]]
            for role, n in ((role, ev["lengths"][role]) for role in MODEL_ROLES)]
    lines.append(md_table(["model", "answers", "mean tokens", "mean characters",
                         "cut at --max-tokens"], rows))
    return "\n".join(lines)


def _refusal_section(ev: dict) -> str:
    rows = [[role, *(_share(ev["refusals"][role][group]) for group in ("all", "benign", "harmful"))]
            for role in MODEL_ROLES]
    return "\n".join([
        "## Refusals", "",
        "An answer refuses when it says near its start that it cannot or will not help; a "
        "refusal of a prompt marked benign (a `benign` column, or a `category` that is not a "
        "harmful one) is an over-refusal.", "",
        md_table(["model", "refusal rate (all)", "over-refusal (benign prompts)",
                "refusal of harmful prompts"], rows)])


def _reward_section(ev: dict) -> str:
    reward = ev["reward"]
    if not reward:
        return ""
    agreement = reward["judge_agreement"]
    return "\n".join([
        "## Reward model", "",
        f"- Mean reward: candidate {reward['mean']['candidate']:.4g}, baseline "
        f"{reward['mean']['baseline']:.4g}; the candidate scored higher on "
        f"{reward['candidate_higher']} of {reward['scored']} prompts.",
        f"- Agreement with the judge: {agreement['agree']} of {agreement['decided']} decided "
        f"prompts ({pct(agreement['rate'])})."])


def _examples_section(ev: dict, by_id: dict[str, PromptResult]) -> str:
    lines = ["## The most one-sided examples", "",
             "`P` is the judge's probability that the candidate's answer is better. Every "
             "prompt is in answers.parquet."]
    for key, title in (("wins", "Candidate clearly better"), ("losses", "Baseline clearly better")):
        lines += ["", f"### {title}", ""]
        picked = ev["examples"][key]
        if not picked:
            lines.append("None.")
        for number, example in enumerate(picked, start=1):
            lines.append(_example(number, by_id[example["prompt_id"]]))
    return "\n".join(lines)


def _example(number: int, result: PromptResult) -> str:
    principles = ", ".join(p.name for p in result.principles) or "?"
    prompt = html.escape(_cut(result.record.prompt, 400)).replace("\n", " ")
    answers = "\n".join(
        f"\n**{role}**\n\n<pre>{html.escape(_cut(result.answer(role).text, SHOWN_CHARS))}</pre>"
        for role in MODEL_ROLES)
    return (f"**{number}. `{result.record.id}`**: P = {result.preference:.3f}, judged under "
            f"{principles}\n\n> {prompt}\n\n<details><summary>both answers</summary>\n"
            f"{answers}\n</details>\n")


def _files_section(plots: list[str], xstest: bool = False) -> str:
    files = ["eval.json (every figure and the settings)",
             "answers.parquet (every prompt, both answers, the judgment of both orders)",
             *([f"{XSTEST_ANSWERS} (every XSTest prompt and both answers)"] if xstest else []),
             *plots]
    return "## Files\n\n" + "\n".join(f"- {f}" for f in files)


# ---------------------------------------------------------------- formatting


def counts_text(figures: dict) -> str:
    return ", ".join(f"{figures[key]} {word if figures[key] == 1 else plural}"
                     for key, word, plural in (("wins", "win", "wins"), ("ties", "tie", "ties"),
                                               ("losses", "loss", "losses")))


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _share(figure: dict) -> str:
    if not figure["prompts"]:
        return "n/a"
    return f"{pct(figure['rate'])} ({figure['refusals']}/{figure['prompts']})"


def _short(model: str) -> str:
    return Path(model).name or model


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " […]"
