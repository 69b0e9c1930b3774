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
from html import unescape
from pathlib import Path

import click
import pytest

from selfalign.cli import main

REPO = Path(__file__).resolve().parents[1]
# Every command as shipped today; the walk below must find at least these (new ones are welcome).
KNOWN_COMMANDS = {
    "selfalign", "selfalign validate", "selfalign principles", "selfalign principles import",
    "selfalign generate", "selfalign verify", "selfalign prompts", "selfalign prompts prepare",
    "selfalign train", "selfalign train sft", "selfalign train dpo", "selfalign train rm",
    "selfalign train rl", "selfalign eval", "selfalign eval judge",
    "selfalign checks", "selfalign checks list", "selfalign checks score",
}
# Options of `selfalign generate` (selfalign/generate/commands.py) that still have no help text;
# the list may only shrink: any other option without help fails the test.
NO_HELP_YET: set = set()  # options allowed to lack help: none
# The keys of each file kind, written out by hand from the schemas' intent: the test fails when
# the schema and the reference drop a key together, which walking the schema alone cannot see.
SCHEMA_KEYS = {
    "principle": ["kind", "name", "description", "critique_request", "revision_request",
                  "comparison", "tags", "weight", "version", "examples", "checks"],
    "exemplar": ["kind", "name", "description", "principle", "context", "prompt", "response",
                 "critique", "revision"],
    "constitution": ["kind", "name", "description", "principles", "weights", "rounds",
                     "exemplars", "system_prompt", "checks"],
    # generate's run.yaml: one key per GenerateSettings field (tests/test_settings_files.py).
    "run": ["principles", "prompts", "out", "model", "backend", "rounds", "samples", "max_tokens",
            "temperature", "top_p", "seed", "limit", "shard_size", "resume", "text_field",
            "id_field", "user_field", "dtype", "max_model_len", "tensor_parallel_size",
            "data_parallel_size", "max_num_seqs", "gpu_memory_utilization", "cpu_kv_cache_gib",
            "enforce_eager", "base_url", "api_key_env", "max_concurrency", "request_timeout",
            "max_retries", "feedback", "judge_principles", "judge_cot", "min_preference",
            "check_retries", "judge_model", "judge_base_url", "prompt_format", "prompt_template",
            "conversation", "behavior", "harmful_categories",
            "ray", "ray_workers", "ray_cpus_per_worker", "ray_gpus_per_worker", "shard_timeout",
            "shard_attempts", "ray_start_timeout", "license"],
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


def words_of(html: str) -> str:
    """The words of an HTML or markdown fragment, punctuation and markup dropped."""
    return " ".join(re.findall(r"\w+", unescape(re.sub(r"<[^>]+>", " ", html))))


def opening(text: str) -> str:
    """The first eight words of a help text or description, to find in the built page."""
    return " ".join(re.findall(r"\w+", text)[:8])


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
        # Each option of the command is described in its own section, with its help text.
        text = words_of(section)
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            for flag in param.opts:
                assert flag in section, f"{flag} of `{path}` is missing from its section"
            help_text = opening(param.help or "")
            if (path, param.opts[0]) in NO_HELP_YET:
                assert not help_text, f"{param.opts[0]} of `{path}` has help: drop it from NO_HELP_YET"
                continue
            assert help_text, f"{param.opts[0]} of `{path}` has no help text"
            assert help_text in text, f"help of {param.opts[0]} of `{path}` is not in its section"
        checked += 1
    assert checked == len(paths) >= len(KNOWN_COMMANDS)


def test_every_schema_key_is_in_the_schema_reference(site):
    html = (site / "reference" / "schemas" / "index.html").read_text()
    checked = 0
    for kind, anchor in (("principle", "principle"), ("exemplar", "exemplar"),
                         ("constitution", "constitution-manifest"), ("run", "run-settings")):
        schema = json.loads((REPO / "selfalign" / "schemas" / f"{kind}.schema.json").read_text())
        # A section runs to the next h2; the generated tables sit under the kind's h2.
        start = html.index(f'id="{anchor}"')
        end = html.find("<h2", start + 1)
        section = html[start: end if end > 0 else None]
        assert list(schema["properties"]) == SCHEMA_KEYS[kind]
        text = words_of(section)
        for key in SCHEMA_KEYS[kind]:
            assert f"<code>{key}</code>" in section, f"{kind}: `{key}` is not in the reference"
            described = opening(schema["properties"][key]["description"])
            assert described and described in text, f"{kind}: `{key}` has no description there"
            checked += 1
        assert schema["description"].split("`")[0] in section
    assert checked == sum(len(keys) for keys in SCHEMA_KEYS.values())


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
