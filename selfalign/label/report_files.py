"""`labels/report.md`, `report.json` and the plots, written atomically from `build_report`."""

from __future__ import annotations

from pathlib import Path

from selfalign.atomic import write_json, write_text
from selfalign.eval.report import md_table, pct, save_png
from selfalign.label.project import Project
from selfalign.label.report import build_report


def write_report(project: Project, reward_model: str | None = None) -> tuple[Path, dict]:
    report = build_report(project, reward_model)
    folder = project.labels_dir
    plots = _plots(folder, report)
    write_json(folder / "report.json", report)
    write_text(folder / "report.md", report_markdown(report, plots))
    return folder / "report.md", report


def _interval(figure: dict) -> str:
    if figure.get("rate") is None:
        return "n/a"
    low, high = figure["ci"]
    return f"{pct(figure['rate'])} ({pct(low)}–{pct(high)})"


def report_markdown(report: dict, plots: list[str]) -> str:
    between = report["between_labellers"]
    ai = report["ai_vs_people"]
    lines = [f"# Labels of {report['run']}", "",
             f"{report['labels']} labels. Instructions (sha256): "
             + (", ".join(s[:12] for s in report["instructions_sha256"]) or "none") + ".", "",
             "## Labellers", "",
             md_table(["labeller", "items", "median s/item", "ties", "skips",
                       "gold agreement (n)", "agreement with others (n)"],
                      [[f"{l['pseudonym']}{' (owner)' if l['owner'] else ''}", l["items_done"],
                        l["median_seconds"] if l["median_seconds"] is not None else "n/a",
                        pct(l["tie_share"]), pct(l["skip_share"]),
                        f"{_interval(l['gold'])} ({l['gold']['comparisons']})",
                        f"{_interval(l['others'])} ({l['others']['comparisons']})"]
                       for l in report["labellers"]]), "",
             "## Between labellers", "",
             f"Over {between['comparisons']} comparisons two labellers both answered: "
             f"{_interval(between['with_ties'])} agree counting ties; "
             f"{_interval(between['decided'])} over the {between['decided']['comparisons']} "
             f"both decided. Fleiss' kappa {between['fleiss_kappa']}.", ""]
    if between["cohen_kappa"]:
        lines += [md_table(["labellers", "Cohen's kappa"],
                           [[k, v if v is not None else "n/a"]
                            for k, v in between["cohen_kappa"].items()]), ""]
    lines += ["Read against: " + " ".join(report["reference"]), "",
              "## The run's AI labels against people", ""]
    if not ai["labels"]:
        lines += ["No decided label of a judged pair (the run had no `--feedback`, or no "
                  "comparison was decided).", ""]
    else:
        lines += [f"The judge agreed with people on {_interval(ai)} of {ai['labels']} labels.", "",
                  md_table(["principle", "labels", "agreement"],
                           [[p, f["labels"], _interval(f)] for p, f in ai["by_principle"].items()]),
                  ""]
        if ai["judge"]:
            judge = ai["judge"]
            order = judge["accuracy_by_order"]
            lines += [f"Per order: people's choice in position A {_interval(order['chosen_in_a'])}, "
                      f"in position B {_interval(order['chosen_in_b'])}; the judge answered A "
                      f"in {pct(judge['first_position_rate'])} of questions.", ""]
            lines += [f"> {warning}" for warning in ai["judge_warnings"]] + [""]
    if report["reward_model"]:
        rm = report["reward_model"]
        lines += ["## Reward model against people", "",
                  f"{rm['model']}: {_interval(rm)} of {rm['labels']} labels.", ""]
    if report["ratings"]:
        lines += ["## Ratings", "", md_table(["labeller", "rated", "mean 1–7"],
                                             [[k, v["rated"], v["mean"]]
                                              for k, v in report["ratings"].items()]), ""]
    if report["flags"]:
        lines += ["## Flags", "", md_table(["flag", "times"], list(map(list,
                                                                     report["flags"].items()))), ""]
    lines += [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def _plots(folder: Path, report: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [l for l in report["labellers"] if l["others"]["rate"] is not None
            or l["gold"]["rate"] is not None]
    if not rows:
        return []
    figure, axes = plt.subplots(figsize=(6, 0.5 + 0.4 * len(rows)))
    for offset, key, colour in ((-0.2, "others", "#4a78b0"), (0.2, "gold", "#d08a2c")):
        values = [(i + offset, l[key]) for i, l in enumerate(rows) if l[key]["rate"] is not None]
        axes.barh([y for y, _ in values], [f["rate"] for _, f in values], height=0.4,
                  color=colour, label=f"with {key}",
                  xerr=[[f["rate"] - f["ci"][0] for _, f in values],
                        [f["ci"][1] - f["rate"] for _, f in values]])
    axes.set_yticks(range(len(rows)), [l["pseudonym"] for l in rows])
    axes.axvline(0.73, color="#888", linestyle="--", linewidth=1)
    axes.set_xlim(0, 1)
    axes.set_xlabel("agreement (95% Wilson interval); dashed: InstructGPT's 73%")
    axes.legend(loc="lower right", fontsize=8)
    save_png(figure, folder / "agreement.png")
    return ["agreement.png"]
