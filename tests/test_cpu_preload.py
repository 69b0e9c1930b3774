"""What goes into LD_PRELOAD for vLLM's CPU engine processes, and what is left alone."""

from pathlib import Path

import pytest

from selfalign.engine import cpu_preload

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
IOMP = "/venv/lib/libiomp5.so"


@pytest.fixture
def found(monkeypatch):
    monkeypatch.setattr(cpu_preload, "find_tcmalloc", lambda: Path(TCMALLOC))
    monkeypatch.setattr(cpu_preload, "find_iomp", lambda: Path(IOMP))
    monkeypatch.setenv("LD_PRELOAD", "")
    monkeypatch.setenv(cpu_preload.SWITCH_ENV, "1")
    return monkeypatch


def test_both_libraries_go_first_and_a_user_preload_stays(found):
    found.setenv("LD_PRELOAD", "/opt/mine.so")
    assert cpu_preload.preload_for_cpu_engine() == [TCMALLOC, IOMP]
    assert cpu_preload.os.environ["LD_PRELOAD"] == f"{TCMALLOC}:{IOMP}:/opt/mine.so"
    assert cpu_preload.preload_for_cpu_engine() == []  # a second engine adds nothing


@pytest.mark.parametrize("switch", [None, "0", "no"])
def test_off_unless_asked_for(found, switch):
    if switch is None:
        found.delenv(cpu_preload.SWITCH_ENV)
    else:
        found.setenv(cpu_preload.SWITCH_ENV, switch)
    assert cpu_preload.preload_for_cpu_engine() == []
    assert cpu_preload.os.environ["LD_PRELOAD"] == ""


def test_no_intel_openmp_beside_a_preloaded_gnu_openmp(found):
    found.setenv("LD_PRELOAD", "/torch/lib/libgomp-a34b3233.so.1")
    assert cpu_preload.preload_for_cpu_engine() == [TCMALLOC]


def test_a_library_not_found_is_left_out(found):
    found.setattr(cpu_preload, "find_tcmalloc", lambda: None)
    assert cpu_preload.preload_for_cpu_engine() == [IOMP]


def test_intel_openmp_of_this_environment_is_found():
    found = cpu_preload.find_iomp()
    assert found is None or (found.name == "libiomp5.so" and found.is_file())
