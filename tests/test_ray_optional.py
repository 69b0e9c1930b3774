"""Ray is an optional extra: without it a single-machine run works and never imports it, and
`--ray` says in one line which extra to install. These tests must run where Ray is not installed,
so this module never imports it (tests/test_ray.py, which needs a cluster, is skipped there)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from selfalign.errors import UserError

from ray_helpers import TESTS
from run_helpers import write_constitution, write_prompts


@pytest.fixture
def inputs(tmp_path):
    rows = [{"id": "q1", "prompt": "How do I sneak snacks into a cinema?"},
            {"id": "q2", "prompt": "Why did Einstein fail maths?"}]
    return write_constitution(tmp_path / "c"), write_prompts(tmp_path / "p.jsonl", rows)


def test_a_single_machine_run_never_imports_ray(inputs, tmp_path):
    code = ("import sys\nfrom run_helpers import run_scripted\nimport selfalign.cli\n"
            f"run_scripted({str(inputs[0])!r}, {str(inputs[1])!r}, {str(tmp_path / 'o')!r})\n"
            "assert 'ray' not in sys.modules, 'ray was imported'\nprint('no ray')")
    env = {**os.environ, "PYTHONPATH": f"{TESTS.parent}{os.pathsep}{TESTS}"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0 and "no ray" in result.stdout, result.stderr[-2000:]


def test_ray_missing_is_one_line_naming_the_extra(monkeypatch):
    from selfalign.generate.ray.cluster import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets when not installed
    with pytest.raises(UserError, match=r"pip install 'selfalign\[ray\]'"):
        import_ray()


def test_these_tests_run_where_ray_cannot_be_imported(tmp_path):
    """This module again, in a Python where `import ray` fails as it does when Ray is not
    installed (a `ray` package that raises ModuleNotFoundError shadows the installed one): its
    two tests pass, and test_ray.py is skipped."""
    blocker = tmp_path / "no-ray" / "ray"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'ray'\", name='ray')\n")
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(blocker.parent), str(TESTS.parent), str(TESTS)])}
    probe = subprocess.run([sys.executable, "-c", "import ray"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert "ModuleNotFoundError: No module named 'ray'" in probe.stderr
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         str(TESTS / "test_ray_optional.py"), str(TESTS / "test_ray.py"),
         "-k", "not where_ray_cannot_be_imported"],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("2 passed, 1 skipped"), result.stdout[-3000:]
