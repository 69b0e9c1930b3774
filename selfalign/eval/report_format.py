"""What every eval report draws and writes with: the colours, markdown tables, percentages and
PNGs, shared by the eval's, the judge's and the labelling app's reports."""

from __future__ import annotations

import html
from pathlib import Path

from selfalign.atomic import atomic_path

COLOURS = {"win": "#2e7d32", "tie": "#9e9e9e", "loss": "#c62828",
           "candidate": "#1565c0", "baseline": "#ef6c00"}


def md_table(headers: list[str], rows: list[list]) -> str:
    """A markdown table, its first column left-aligned and the others right-aligned."""
    lines = ["| " + " | ".join(headers) + " |",
             "|---|" + "---:|" * (len(headers) - 1)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def cell(value: object) -> str:
    return html.escape(str(value)).replace("|", "\\|").replace("\n", " ")


def save_png(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
