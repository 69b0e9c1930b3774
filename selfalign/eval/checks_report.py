"""The judge-free part of an eval's report: the checks' pass rates and IFEval's four figures, in
report.md and in `checks.png`, where they stand beside the win rate and the over-refusal rate."""

from __future__ import annotations

from pathlib import Path

from selfalign.eval.ifeval import FIGURES
from selfalign.eval.outcomes import wilson_interval
from selfalign.eval.report_format import COLOURS, cell, md_table, save_png
from selfalign.eval.results import MODEL_ROLES

CHECKS_PLOT = "checks.png"
OVERALL = "all checks of a prompt"
_IFEVAL_NAMES = {"prompt_strict": "prompt-level, strict", "instruction_strict":
                 "instruction-level, strict", "prompt_loose": "prompt-level, loose",
                 "instruction_loose": "instruction-level, loose"}


def rate_text(figure: dict) -> str:
    """"45.3% (29/64, 95% CI 33.7% to 57.5%)"."""
    if not figure["total"]:
        return "n/a"
    low, high = figure["interval"]
    return (f"{100 * figure['rate']:.1f}% ({figure['passed']}/{figure['total']}, 95% CI "
            f"{100 * low:.1f}% to {100 * high:.1f}%)")


def checks_lines(ev: dict) -> list[str]:
    """One line per judge-free figure, for the command's summary."""
    lines = []
    checks = ev.get("checks")
    if checks:
        o = checks["overall"]
        lines.append(f"checks passed ({OVERALL}): candidate {rate_text(o['candidate'])}, "
                     f"baseline {rate_text(o['baseline'])}; difference "
                     f"{100 * o['difference']:+.1f} points, McNemar p = {o['mcnemar_p']:.3g}")
    ifeval = ev.get("ifeval")
    if ifeval:
        for role in MODEL_ROLES:
            figures = ", ".join(f"{name.replace('_', ' ')} "
                                f"{100 * ifeval[role][name]['rate']:.1f}%"
                                for name in FIGURES if ifeval[role][name]["total"])
            lines.append(f"IFEval ({ifeval['prompts']} prompts), {role}: {figures}")
    return lines


# ---------------------------------------------------------------- report.md

def checks_section(ev: dict, plots: list[str]) -> str:
    checks = ev.get("checks")
    if not checks:
        return ""
    lines = ["## Checks (no judge)", "",
             f"Each answer is scored with the checks of the principles drawn for its prompt and "
             f"the constitution's own, over the {checks['prompts']} prompts both models answered "
             f"that have a check. The first row counts a prompt as passed when its answer passes "
             f"every check that applies to it; the others count one check each. McNemar's exact "
             f"test compares the models on the same prompts (those where just one passed)."]
    if checks["unpaired"]:
        lines += ["", f"{checks['unpaired']} prompt(s) with checks are left out: one model gave "
                      f"no answer."]
    skipped = checks.get("not_applicable", {}).get("by_check")
    if skipped:
        counts = ", ".join(f"`{name}` {count}" for name, count in skipped.items())
        lines += ["", f"Not applicable (the prompt does not match the check's `when:`; neither "
                      f"passed nor failed), prompts per check: {counts}."]
    lines.append("")
    if CHECKS_PLOT in plots:
        lines += [f"![Pass rates]({CHECKS_PLOT})", ""]
    rows = [[cell(name), rate_text(f["baseline"]), rate_text(f["candidate"]),
             f"{100 * f['difference']:+.1f}", f"{f['candidate_only']} / {f['baseline_only']}",
             f"{f['mcnemar_p']:.3g}"]
            for name, f in [(OVERALL, checks["overall"]), *checks["by_check"].items()]]
    lines.append(md_table(["check", "baseline", "candidate", "difference (points)",
                           "only candidate / only baseline passed", "McNemar p"], rows))
    return "\n".join(lines)


def ifeval_section(ev: dict) -> str:
    ifeval = ev.get("ifeval")
    if not ifeval:
        return ""
    rows = [[_IFEVAL_NAMES[name], *(rate_text(ifeval[role][name]) for role in MODEL_ROLES)]
            for name in FIGURES]
    failed = {role: ifeval[role]["failed"] for role in MODEL_ROLES if ifeval[role]["failed"]}
    lines = ["## IFEval", "",
             f"Both models answered the {ifeval['prompts']} prompts of `{ifeval['file']}` "
             f"({ifeval['instructions']} instructions); each reply is checked against its own "
             f"prompt's instructions, strictly and loosely (with its first or last line or its "
             f"`*`s set aside), as IFEval counts.", "",
             md_table(["figure", *MODEL_ROLES], rows)]
    if failed:
        lines += ["", "Answers the engine failed to give are left out: "
                      + ", ".join(f"{role} {n}" for role, n in failed.items()) + "."]
    return "\n".join(lines)


# ---------------------------------------------------------------- checks.png

def plot_rows(ev: dict) -> list[tuple[str, dict[str, tuple[float, float, float]]]]:
    """(label, {model: (rate, low, high)}) for each bar group: the checks, then the win rate
    (the candidate's only) and the over-refusal rate, when the eval has them."""
    rows = []
    checks = ev.get("checks")
    if checks:
        for name, figure in [(OVERALL, checks["overall"]), *checks["by_check"].items()]:
            rows.append((f"checks: {name} (n={figure['baseline']['total']})",
                         {role: (figure[role]["rate"], *figure[role]["interval"])
                          for role in MODEL_ROLES}))
    if ev.get("judged"):
        rows.append((f"win rate (n={ev['judged']})",
                     {"candidate": (ev["win_rate"], *ev["win_rate_ci"])}))
    benign = {role: ev["refusals"][role]["benign"] for role in MODEL_ROLES}
    if all(b["prompts"] for b in benign.values()):
        rows.append((f"over-refusal, benign prompts (n={benign['candidate']['prompts']})",
                     {role: (b["rate"], *wilson_interval(b["refusals"], b["prompts"]))
                      for role, b in benign.items()}))
    return rows


def write_checks_plot(path: Path, ev: dict) -> bool:
    """Pass rates of both models with 95% intervals beside the win rate and over-refusal."""
    import matplotlib.pyplot as plt

    if not ev.get("checks"):
        return False
    rows = plot_rows(ev)
    figure, axes = plt.subplots(figsize=(10, 1.8 + 0.7 * len(rows)))
    height = 0.35
    for offset, role in ((height / 2, "candidate"), (-height / 2, "baseline")):
        placed = [(len(rows) - 1 - i, values[role]) for i, (_, values) in enumerate(rows)
                  if role in values]
        positions = [p + offset for p, _ in placed]
        rates = [v[0] for _, v in placed]
        errors = [[v[0] - v[1] for _, v in placed], [v[2] - v[0] for _, v in placed]]
        axes.barh(positions, rates, height=height, color=COLOURS[role], label=role,
                  xerr=errors, capsize=3)
    axes.set_yticks(range(len(rows))[::-1], [label for label, _ in rows])
    axes.set_xlim(0, 1)
    axes.set_xlabel("share, with 95% interval")
    axes.set_title("Checks passed, the win rate and over-refusal")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.3 / len(rows)), ncol=2,
                frameon=False)
    save_png(figure, path)
    return True
