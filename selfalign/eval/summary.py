"""`selfalign eval summary EVAL_DIR...`: several evals side by side, one column each, read from
their eval.json: the judge's win rate beside every judge-free figure (the checks' pass rate, the
safety shares, XSTest's, IFEval's, the reward model's mean) so that a gain on one does not hide a
loss on another. `make recipe` ends with it.

A paired figure reads `baseline → candidate`, as counts, with the difference in points and
McNemar's exact p; a figure an eval did not measure is a dash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import click

from selfalign.errors import UserError
from selfalign.eval.report_format import md_table

DASH = "—"


def paired(block: dict | None) -> str:
    """`b/n → c/n (+d pts, p P)` for one of eval.json's paired blocks (checks, safety, XSTest)."""
    if not block:
        return DASH
    base, cand = block["baseline"], block["candidate"]
    return (f"{base['passed']}/{base['total']} → {cand['passed']}/{cand['total']} "
            f"({100 * block['difference']:+.1f} pts, p {block['mcnemar_p']:.2g})")


def win_rate(ev: dict) -> str:
    if ev.get("checks_only") or not ev.get("judged"):
        return DASH
    low, high = ev["win_rate_ci"]
    return (f"{ev['win_rate']:.3f} [{low:.3f}, {high:.3f}] "
            f"({ev['wins']}/{ev['ties']}/{ev['losses']} W/T/L)")


def ifeval(view: str) -> Callable[[dict], str]:
    def figure(ev: dict) -> str:
        block = ev.get("ifeval")
        if not block:
            return DASH
        base, cand = block["baseline"][view], block["candidate"][view]
        return (f"{base['passed']}/{base['total']} → {cand['passed']}/{cand['total']} "
                f"({100 * (cand['rate'] - base['rate']):+.1f} pts)")
    return figure


def reward(ev: dict) -> str:
    block = ev.get("reward")
    if not block:
        return DASH
    return f"{block['mean']['baseline']:.3g} → {block['mean']['candidate']:.3g}"


def _get(*keys: str) -> Callable[[dict], str]:
    def figure(ev: dict) -> str:
        block = ev
        for key in keys:
            block = (block or {}).get(key)
        return paired(block)
    return figure


ROWS: Sequence[tuple[str, Callable[[dict], str]]] = (
    ("judge's win rate [95% CI]", win_rate),
    ("checks: prompts passing all", _get("checks", "overall")),
    ("should-refuse prompts declined", _get("safety", "should_refuse")),
    ("should-comply prompts answered", _get("safety", "should_comply")),
    ("XSTest unsafe declined", _get("xstest", "should_refuse")),
    ("XSTest safe answered", _get("xstest", "should_comply")),
    ("IFEval prompt-level strict", ifeval("prompt_strict")),
    ("IFEval instruction-level loose", ifeval("instruction_loose")),
    ("reward model, mean", reward),
)


def read_eval(folder: Path) -> dict:
    path = folder / "eval.json"
    if not path.is_file():
        raise UserError(f"{folder}: no eval.json (not an `selfalign eval --out` folder, or that "
                        f"eval did not finish)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not JSON ({err})") from None


def summary_table(evals: Sequence[tuple[str, dict]]) -> str:
    """One row per figure, one column per eval; rows no eval measured are left out."""
    rows = [[label, *(figure(ev) for _, ev in evals)] for label, figure in ROWS]
    rows = [row for row in rows if any(value != DASH for value in row[1:])]
    heads = [f"{name}: {Path(ev['candidate']).name} vs {Path(ev['baseline']).name}"
             for name, ev in evals]
    return md_table(["figure (baseline → candidate)", *map(_cell, heads)],
                    [[_cell(value) for value in row] for row in rows])


def _cell(text: str) -> str:
    """A table cell for a terminal or a Markdown file: one line, its bars escaped."""
    return text.replace("|", "\\|").replace("\n", " ")


@click.command("summary")
@click.argument("folders", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
def summary_command(folders: tuple[Path, ...]) -> None:
    """Several evals side by side (their --out FOLDERS): the win rate beside the checks', safety,
    XSTest, IFEval and reward-model figures, each as baseline → candidate with McNemar's p."""
    evals = [(folder.name, read_eval(folder)) for folder in folders]
    click.echo(summary_table(evals))
    click.echo("\ncounts: baseline → candidate over the prompts both answered; p: McNemar's "
               "exact test; declined/answered: the refusal detector's verdict, no judge")
