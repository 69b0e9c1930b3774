"""A test's premise: what its fixture must give before the test can judge the code.

Tiny-model training is not bit-for-bit portable (CPU kernels differ with the instruction set and
the thread count), and a loaded machine stretches every wait. A test whose outcome rests on either
checks its fixture first, and when the fixture misses, says so instead of blaming the code. The
seed of the training fixtures is SELFALIGN_TEST_SEED's, so that anyone can try others
(docs/development.md: "Training and timing tests on another machine").
"""

from __future__ import annotations

import os
import sys

import pytest

TEST_SEED = int(os.environ.get("SELFALIGN_TEST_SEED", "0"))


def machine() -> str:
    """What the fixture ran with: the seed and thread count to set to see a training failure
    again, and the load beside it (a timing test fails under load)."""
    torch = sys.modules.get("torch")
    threads = f", {torch.get_num_threads()} torch thread(s)" if torch else ""
    load = os.getloadavg()[0]
    return f"SELFALIGN_TEST_SEED={TEST_SEED}{threads}, load {load:.1f} on {os.cpu_count()} CPU(s)"


def fixture_broke(what: str, test: str) -> None:
    """Fail saying that the fixture, not the code under test, missed its premise."""
    pytest.fail(f"fixture broke: {what} ({machine()}); not a fault of {test}", pytrace=False)
