"""The documentation site: it builds strictly, and its generated references cover the code.

`mkdocs build --strict` is what `make docs` and CI run; these tests run the same build so that a
broken link, a missing anchor or a page left out of the nav fails the suite too, and then read
the built HTML to check that every click command and every schema key has its place.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from selfalign.cli import main

REPO = Path(__file__).resolve().parents[1]
# Every command as shipped today; the walk below must find at least these (new ones are welcome).
KNOWN_COMMANDS = {
    "selfalign", "selfalign validate", "selfalign principles", "selfalign principles import",
    "selfalign generate", "selfalign prompts", "selfalign prompts prepare", "selfalign train",
    "selfalign train sft", "selfalign train dpo", "selfalign train rm", "selfalign eval",
}


def build_site(project: Path, site: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict` of the project folder (its mkdocs.yml and docs/) into `site`."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    result = build_site(REPO, site)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return site


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """What the build reads (mkdocs.yml, docs/, the included files), copied so it can be broken."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(REPO / "mkdocs.yml", copy)
    shutil.copy(REPO / "run.example.yaml", copy)
    shutil.copytree(REPO / "docs", copy / "docs")
    shutil.copytree(REPO / "selfalign" / "schemas", copy / "selfalign" / "schemas")
    return copy


def command_paths(command: click.Command, path: str = "selfalign") -> list[str]:
    paths = [path]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            paths += command_paths(sub, f"{path} {name}")
    return paths


def section_of(html: str, anchor: str) -> str:
    """The HTML from the heading with this id to the next heading (of any level)."""
    start = html.index(f'id="{anchor}"')
    following = re.search(r"<h[1-6][^>]*\bid=", html[start + 1:])
    return html[start: start + 1 + following.start()] if following else html[start:]


# -- the build --------------------------------------------------------------------------------

def test_broken_links_anchors_and_pages_left_out_of_the_nav_fail_the_build(project_copy, tmp_path):
    # One build with three faults: strict mode reports every warning before it aborts, and the
    # count shows the unbroken copy itself builds cleanly (one build saves a few seconds).
    training = project_copy / "docs" / "guides" / "training.md"
    training.write_text(training.read_text() + "\nSee [the old page](../training-old.md).\n")
    index = project_copy / "docs" / "index.md"
    index.write_text(index.read_text() + "\n[gone](reference/outputs.md#no-such-section)\n")
    (project_copy / "docs" / "guides" / "orphan.md").write_text("# Orphan\n\nNo nav entry.\n")
    result = build_site(project_copy, tmp_path / "site")
    assert result.returncode != 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 3, result.stderr
    assert "'../training-old.md'" in result.stderr
    assert "#no-such-section" in result.stderr
    assert "guides/orphan.md" in result.stderr


# -- the generated references -----------------------------------------------------------------

def test_every_click_command_has_its_section_in_the_cli_reference(site):
    html = (site / "reference" / "cli" / "index.html").read_text()
    paths = command_paths(main)
    assert KNOWN_COMMANDS <= set(paths), KNOWN_COMMANDS - set(paths)
    checked = 0
    for path in paths:
        anchor = path.replace(" ", "-")
        assert f'id="{anchor}"' in html, f"`{path}` has no section in reference/cli.md"
        section = section_of(html, anchor)
        command = main
        for name in path.split()[1:]:
            command = command.commands[name]
        # Each option of the command is described in its own section, not only somewhere.
        for param in command.params:
            for flag in param.opts if isinstance(param, click.Option) else []:
                assert flag in section, f"{flag} of `{path}` is missing from its section"
        checked += 1
    assert checked == len(paths) >= len(KNOWN_COMMANDS)


def test_every_schema_key_is_in_the_schema_reference(site):
    html = (site / "reference" / "schemas" / "index.html").read_text()
    checked = 0
    for kind, anchor in (("principle", "principle"), ("exemplar", "exemplar"),
                         ("constitution", "constitution-manifest")):
        schema = json.loads((REPO / "selfalign" / "schemas" / f"{kind}.schema.json").read_text())
        # A section runs to the next h2; the generated tables sit under the kind's h2.
        start = html.index(f'id="{anchor}"')
        end = html.find("<h2", start + 1)
        section = html[start: end if end > 0 else None]
        for key, prop in schema["properties"].items():
            assert f"<code>{key}</code>" in section, f"{kind}: `{key}` is not in the reference"
            checked += 1
        assert schema["description"].split("`")[0] in section
    assert checked >= 27  # 10 principle keys, 9 exemplar keys, 8 constitution keys today


# -- the README ---------------------------------------------------------------------------------

def test_readme_fits_on_a_screen_and_its_links_exist():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if "://" not in link]
    assert len(local) >= 20, local  # one link per docs page at least
    for link in local:
        assert (REPO / link).is_file(), f"README links to {link}, which does not exist"
    # The two commands of the front door are make targets that exist.
    makefile = (REPO / "Makefile").read_text()
    for target in ("demo", "test", "docs"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
