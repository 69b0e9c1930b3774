"""Quiet runs: a run prints its own lines (set-up, progress, summary, its warnings), and the
libraries under it keep to their errors.

vLLM's engine core and workers are separate processes that read their logging level and
Python's warning filters from the environment when they start, so both are set here, before
anything imports or spawns them. `--verbose` on the root command, or SELFALIGN_VERBOSE=1,
brings every line back. Settings the user made in the environment always win.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import warnings

VERBOSE_ENV = "SELFALIGN_VERBOSE"
_PR_SET_PDEATHSIG = 1  # prctl(2)
ENGINE_OWN_GROUP = "SELFALIGN_ENGINE_OWN_GROUP"  # set: engine processes leave the terminal's group
TRUE_WORDS = ("1", "true", "yes", "on")

# What each library reads, and the value that keeps it to errors (or silences its progress bars).
QUIET_ENVIRONMENT = {
    "VLLM_LOGGING_LEVEL": "ERROR",  # vllm/envs.py; read by every vLLM process at import
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TORCH_CPP_LOG_LEVEL": "ERROR",  # c10 warnings such as the NUMA binding notice
    "PYTHONWARNINGS": "ignore",  # dependencies' warnings in spawned processes
}


def verbose_requested() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in TRUE_WORDS


def configure_output(verbose: bool = False) -> bool:
    """Quiet by default; `verbose` (or SELFALIGN_VERBOSE=1) leaves every library as it is.

    Returns whether the run is verbose. Marks the choice in the environment, so engines built
    later, and processes they spawn, follow it.
    """
    verbose = verbose or verbose_requested()
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO")
        return True
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    # In this process: dependencies' warnings are dropped, selfalign's own still show.
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", category=UserWarning, module=r"selfalign(\.|$)")
    follow_vllm_level()
    return False


def follow_vllm_level() -> None:
    """Give the `vllm` logger the level vLLM will configure, now.

    vLLM configures its logging lazily, and a few modules warn at import before that (e.g.
    "Triton is installed, but doesn't include CPU backend"), which Python's last-resort handler
    prints whatever VLLM_LOGGING_LEVEL says. Its engine processes are spawned and import the
    command's main module (so this package) before vLLM, which is why the CLI calls this at
    import too.
    """
    level = os.environ.get("VLLM_LOGGING_LEVEL", "").upper()
    if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        logging.getLogger("vllm").setLevel(level)


def quiet_engine_loading() -> bool:
    """Whether an engine should hide its own loading bars (weights, shards): unless verbose."""
    return not verbose_requested()


def inherited_environment() -> dict[str, str]:
    """The settings `configure_output` made, for processes that do not inherit this one's
    environment (Ray starts its workers from a raylet): they follow the run's choice."""
    chosen = {name: os.environ[name] for name in QUIET_ENVIRONMENT if name in os.environ}
    # Always said, so a worker never takes "verbose" from the environment its node started with.
    return {**chosen, VERBOSE_ENV: "1" if verbose_requested() else "0"}


def leave_terminal_group_if_asked() -> None:
    """In a process spawned by an engine (vLLM's engine core and workers import the command's
    main module, so this package, first): with SELFALIGN_ENGINE_OWN_GROUP set, move to a
    process group of its own. A terminal sends Ctrl-C to its whole foreground group; a vLLM
    worker dies of it mid-step and the engine core prints its traceback. `principles try
    --watch` sets it, so Ctrl-C reaches only the command, which shuts the engine down."""
    if os.environ.get(ENGINE_OWN_GROUP) and multiprocessing.current_process().name != "MainProcess":
        try:
            os.setpgid(0, 0)
        except OSError:  # already a group's leader: nothing to leave
            pass
        _die_with_parent()


def _die_with_parent() -> None:
    """Out of the terminal's group, an engine process no longer gets the hang-up of a closed
    terminal, nor the kill of its command's group: ask Linux for SIGTERM when the parent dies,
    so a command killed any way never leaves an engine (gigabytes) running on its own."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: Ctrl-C still reaches only the command
        return
    if os.getppid() == 1:  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)
