"""`selfalign validate` on the shipped library and as a new principle author would use it."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from selfalign.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_shipped_library_is_valid():
    result = CliRunner().invoke(main, ["validate", "principles/", "constitution/"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ("ok: 29 principles (harmless 20, helpful 6, honest 4), 4 exemplars, "
                             "3 manifests, 36 files\n")


def test_each_shipped_manifest_loads_alone():
    for manifest in ("constitution/harmless.yaml", "constitution/3h.yaml",
                     "constitution/recipe.yaml"):
        result = CliRunner().invoke(main, ["validate", manifest])
        assert result.exit_code == 0, result.output


def test_copied_principle_with_a_misspelled_key_names_the_fix(tmp_path):
    text = (REPO / "principles/honest/no-fabrication.yaml").read_text()
    copy = tmp_path / "my-principle.yaml"
    copy.write_text(text.replace("name: no-fabrication", "name: my-principle")
                    .replace("revision_request:", "revison_request:"))
    result = CliRunner().invoke(main, ["validate", str(copy)])
    assert result.exit_code == 1
    assert result.stdout == (f"{copy}:11: revison_request: unknown key `revison_request` — "
                             "did you mean `revision_request`?\n")
    assert result.stderr == "1 problem in 1 file\n"


def test_every_problem_is_printed_one_per_line():
    result = CliRunner().invoke(main, ["validate", "tests/fixtures/principles_bad/"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 19 and all(":" in line and "Traceback" not in line for line in lines)
