"""Principle draws: pinned exact results (the same on resume and on every machine) and weights."""

from collections import Counter
from pathlib import Path

import pytest

from selfalign.constitution import load_constitution


@pytest.fixture(scope="module")
def constitution(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lib")
    for name, weight in (("alpha", 1), ("beta", 2), ("gamma", 7)):
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\ncritique_request: c\nrevision_request: r\nweight: {weight}\n")
    return load_constitution([folder])


def test_draws_are_pinned(constitution):
    # Exact values: a change here changes which principle every existing run resumes with.
    by_prompt = "".join(constitution.draw(0, f"p{i}", 1).name[0] for i in range(12))
    by_round = "".join(constitution.draw(42, "prompt-7", r).name[0] for r in range(1, 13))
    assert (by_prompt, by_round) == ("ggagababgggg", "gggggbggbggg")


def test_draws_depend_only_on_the_arguments(constitution):
    again = load_constitution([Path(constitution.principles[0].path).parent])
    ids = [f"p{i}" for i in range(50)]
    assert [again.draw(7, i, 1) for i in ids] == [constitution.draw(7, i, 1) for i in ids]


def test_draws_follow_the_weights(constitution):
    counts = Counter(constitution.draw(3, f"p{i}", 1).name for i in range(10_000))
    shares = {name: counts[name] / 10_000 for name in ("alpha", "beta", "gamma")}
    assert shares == pytest.approx({"alpha": 0.1, "beta": 0.2, "gamma": 0.7}, abs=0.02)
