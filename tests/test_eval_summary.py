"""`selfalign eval summary`: evals side by side from their eval.json, each figure as
baseline → candidate; the expected cells below are worked out by hand from the blocks."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from selfalign.cli import main


def paired(base: tuple[int, int], cand: tuple[int, int], p: float) -> dict:
    def share(passed, total):
        return {"passed": passed, "total": total, "rate": passed / total}
    return {"baseline": share(*base), "candidate": share(*cand),
            "difference": cand[0] / cand[1] - base[0] / base[1], "mcnemar_p": p}


def ifeval_views(strict: tuple[int, int], loose: tuple[int, int]) -> dict:
    return {"prompt_strict": {"passed": strict[0], "total": strict[1],
                              "rate": strict[0] / strict[1]},
            "instruction_loose": {"passed": loose[0], "total": loose[1],
                                  "rate": loose[0] / loose[1]}}


def write_eval(folder: Path, **blocks) -> Path:
    folder.mkdir(parents=True)
    ev = {"candidate": "/runs/recipe/rl", "baseline": "/runs/recipe/sft", "checks_only": False,
          "judged": 0, "checks": None, "safety": None, "xstest": None, "ifeval": None,
          "reward": None, **blocks}
    (folder / "eval.json").write_text(json.dumps(ev))
    return folder


def summary(*folders: Path):
    return CliRunner().invoke(main, ["eval", "summary", *map(str, folders)])


def cells(output: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split(" | ") for line in output.splitlines() if line.startswith("| ")]
    return {row[0].strip(): [c.strip() for c in row[1:]] for row in rows}


def test_two_evals_side_by_side(tmp_path):
    rl = write_eval(tmp_path / "eval-rl", judged=11, win_rate=0.5, win_rate_ci=[0.246, 0.754],
                    wins=2, ties=7, losses=2,
                    safety={"should_refuse": paired((1, 4), (3, 4), 0.5),
                            "should_comply": paired((7, 8), (6, 8), 1.0)},
                    xstest={"should_refuse": paired((3, 200), (11, 200), 0.057),
                            "should_comply": paired((248, 250), (238, 250), 0.0127)},
                    reward={"mean": {"baseline": 1.269, "candidate": 1.325}})
    dpo = write_eval(tmp_path / "eval-dpo", candidate="/runs/recipe/dpo", checks_only=True,
                     ifeval={"baseline": ifeval_views((2, 40), (10, 63)),
                             "candidate": ifeval_views((5, 40), (10, 63))})
    result = summary(rl, dpo)
    assert result.exit_code == 0, result.output
    table = cells(result.output)
    assert table["figure (baseline → candidate)"] == ["eval-rl: rl vs sft", "eval-dpo: dpo vs sft"]
    assert table["judge's win rate [95% CI]"] == ["0.500 [0.246, 0.754] (2/7/2 W/T/L)", "—"]
    assert table["should-refuse prompts declined"] == ["1/4 → 3/4 (+50.0 pts, p 0.5)", "—"]
    assert table["should-comply prompts answered"] == ["7/8 → 6/8 (-12.5 pts, p 1)", "—"]
    assert table["XSTest unsafe declined"] == ["3/200 → 11/200 (+4.0 pts, p 0.057)", "—"]
    assert table["XSTest safe answered"] == ["248/250 → 238/250 (-4.0 pts, p 0.013)", "—"]
    assert table["IFEval prompt-level strict"] == ["—", "2/40 → 5/40 (+7.5 pts)"]
    assert table["IFEval instruction-level loose"] == ["—", "10/63 → 10/63 (+0.0 pts)"]
    assert table["reward model, mean"] == ["1.27 → 1.32", "—"]
    assert "checks: prompts passing all" not in table  # neither eval measured it


def test_a_folder_without_eval_json_is_named(tmp_path):
    (tmp_path / "half").mkdir()
    result = summary(tmp_path / "half")
    assert result.exit_code == 2
    assert f"{tmp_path / 'half'}: no eval.json" in result.output
