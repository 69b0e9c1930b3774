"""Quiet runs: libraries keep to their errors unless --verbose or SELFALIGN_VERBOSE=1 asks for
everything; the settings reach processes started later through the environment."""

import os
import subprocess
import sys
import warnings

import pytest
from click.testing import CliRunner

from selfalign import quiet
from selfalign.cli import main

ENV_NAMES = (quiet.VERBOSE_ENV, *quiet.QUIET_ENVIRONMENT)


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV_NAMES:  # set, then removed: the test's own changes are undone after it
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    with warnings.catch_warnings():  # configure_output changes the process's filters
        yield monkeypatch


def test_quiet_by_default_sets_what_each_library_reads(clean_env):
    assert quiet.configure_output() is False
    assert {name: os.environ[name] for name in quiet.QUIET_ENVIRONMENT} == {
        "VLLM_LOGGING_LEVEL": "ERROR", "TRANSFORMERS_VERBOSITY": "error",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TORCH_CPP_LOG_LEVEL": "ERROR",
        "PYTHONWARNINGS": "ignore"}
    assert quiet.quiet_engine_loading()


def test_a_level_the_user_set_wins(clean_env):
    clean_env.setenv("VLLM_LOGGING_LEVEL", "DEBUG")
    quiet.configure_output()
    assert os.environ["VLLM_LOGGING_LEVEL"] == "DEBUG"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_verbose_leaves_the_libraries_alone(clean_env, how):
    if how == "env":
        clean_env.setenv(quiet.VERBOSE_ENV, "yes")
    assert quiet.configure_output(verbose=how == "flag") is True
    assert os.environ[quiet.VERBOSE_ENV] == "1"  # engines built later see it
    assert os.environ["VLLM_LOGGING_LEVEL"] == "INFO"
    assert "PYTHONWARNINGS" not in os.environ and "TRANSFORMERS_VERBOSITY" not in os.environ
    assert not quiet.quiet_engine_loading()


def test_verbose_is_a_flag_of_the_root_command(clean_env):
    result = CliRunner().invoke(main, ["--verbose", "validate", "--help"])
    assert result.exit_code == 0
    assert os.environ.get(quiet.VERBOSE_ENV) == "1"


def test_a_dependency_warning_is_dropped_and_selfalign_s_own_kept(clean_env):
    quiet.configure_output()
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("from a library", FutureWarning, "lib.py", 1, module="somelib")
        warnings.warn_explicit("from selfalign", UserWarning, "x.py", 1,
                               module="selfalign.generate.run")
    assert [str(w.message) for w in caught] == ["from selfalign"]


# What a process spawned by vLLM does: import the command's module first, then log before vLLM
# has configured its logging (Python's last-resort handler prints such lines).
CHILD = """
import logging, selfalign.cli
logging.getLogger("vllm.triton_utils.importing").warning("Triton is installed, but ...")
"""


@pytest.mark.parametrize("verbose", ["0", "1"])
def test_a_spawned_process_follows_the_level_before_vllm_configures_logging(verbose):
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "ERROR" if verbose == "0" else "INFO",
           quiet.VERBOSE_ENV: verbose}
    child = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert ("Triton is installed" in child.stderr) == (verbose == "1")
