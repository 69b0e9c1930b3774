"""Win / tie / loss from judgments, their counts, intervals and tables on hand-made inputs."""

from __future__ import annotations

import pytest

from selfalign.eval.outcomes import (LOSS, TIE, WIN, Tally, bootstrap_mean_interval, outcome_of,
                                     position_consistency, sign_test_p, soft_win_rate, table_by,
                                     tally, wilson_interval)


@pytest.mark.parametrize("preference, consistent, band, expected", [
    (0.9, True, 0.05, WIN),
    (0.1, True, 0.05, LOSS),
    (0.9, False, 0.05, TIE),    # the orders disagree: a tie whatever the mean says
    (0.1, False, 0.05, TIE),
    (0.55, True, 0.05, TIE),    # within the band (edge included)
    (0.45, True, 0.05, TIE),
    (0.56, True, 0.05, WIN),
    (0.44, True, 0.05, LOSS),
    (0.5, True, 0.0, TIE),      # no band: only exactly 0.5 ties
    (0.51, True, 0.0, WIN),
    (0.7, True, 0.2, TIE),
])
def test_outcome_of(preference, consistent, band, expected):
    assert outcome_of(preference, consistent, band) == expected


def test_tally_counts_and_counts_a_tie_as_half_a_win():
    t = tally([WIN, WIN, WIN, TIE, LOSS, TIE, WIN, LOSS, WIN, WIN])
    assert (t.wins, t.ties, t.losses, t.prompts) == (6, 2, 2, 10)
    assert t.win_rate == pytest.approx(0.7)
    assert t.interval == wilson_interval(7, 10)
    with pytest.raises(ValueError, match="unknown outcomes"):
        tally([WIN, "draw"])


def test_wilson_interval_on_known_counts():
    low, high = wilson_interval(7, 10)
    assert low == pytest.approx(0.396778, abs=1e-6)
    assert high == pytest.approx(0.892208, abs=1e-6)
    assert wilson_interval(5, 10) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-6)
    assert wilson_interval(10, 10) == pytest.approx((0.722467, 1.0), abs=1e-6)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_null_result_interval_contains_one_half():
    # A model against itself: many ties and as many wins as losses.
    t = Tally(wins=30, ties=40, losses=30)
    low, high = t.interval
    assert t.win_rate == 0.5 and low < 0.5 < high
    assert low == pytest.approx(0.403832, abs=1e-6)


def test_as_dict_keeps_counts_integer():
    d = Tally(7, 2, 1).as_dict()
    assert d == {"prompts": 10, "wins": 7, "ties": 2, "losses": 1, "win_rate": 0.8,
                 "win_rate_ci": [0.490162, 0.943318]}
    assert all(type(d[k]) is int for k in ("prompts", "wins", "ties", "losses"))
    assert Tally().as_dict()["win_rate"] is None and Tally().as_dict()["win_rate_ci"] is None


def test_sign_test():
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 5) == 1.0
    assert sign_test_p(9, 1) == pytest.approx(22 / 1024)  # 2 * (1 + 10) / 2**10
    assert sign_test_p(1, 9) == sign_test_p(9, 1)
    assert sign_test_p(10, 0) == pytest.approx(2 / 1024)


def test_table_by_tag_counts_a_prompt_once_per_group():
    items = [(("harmless",), WIN), (("harmless", "honest"), LOSS), (("helpful",), TIE),
             (("honest", "honest"), WIN), (("helpful",), WIN)]
    table = table_by(items)
    assert list(table) == ["harmless", "helpful", "honest"]
    assert table["harmless"] == Tally(1, 0, 1)
    assert table["honest"] == Tally(1, 0, 1)
    assert table["helpful"] == Tally(1, 1, 0)


def test_table_by_category():
    items = [(("red_team",), WIN), (("red_team",), WIN), (("helpful",), LOSS)]
    assert table_by(items) == {"helpful": Tally(0, 0, 1), "red_team": Tally(2, 0, 0)}


def test_position_consistency():
    assert position_consistency([True, True, False, True]) == {
        "judged": 4, "consistent": 3, "rate": 0.75}
    assert position_consistency([]) == {"judged": 0, "consistent": 0, "rate": None}


def test_bootstrap_interval_of_a_mean():
    assert bootstrap_mean_interval([0.7] * 20) == pytest.approx((0.7, 0.7))
    # 50 zeros and 50 ones: the mean's standard error is 0.05, so the 95% interval is about
    # 0.5 ± 1.96 × 0.05 = (0.402, 0.598).
    low, high = bootstrap_mean_interval([0.0, 1.0] * 50)
    assert low == pytest.approx(0.402, abs=0.015) and high == pytest.approx(0.598, abs=0.015)
    assert bootstrap_mean_interval([0.0, 1.0] * 50) == (low, high)  # seeded
    assert bootstrap_mean_interval([]) == (0.0, 1.0)


def test_soft_win_rate_keeps_a_lean_that_the_tie_band_erases():
    preferences = [0.52, 0.54] * 20  # every one within the 0.05 tie band
    hard = tally(outcome_of(p, True, 0.05) for p in preferences)
    assert (hard.ties, hard.win_rate) == (40, 0.5)
    soft = soft_win_rate(preferences)
    assert soft["prompts"] == 40 and soft["rate"] == pytest.approx(0.53)
    # Half the values are 0.52 and half 0.54: standard error 0.01 / sqrt(40) ≈ 0.0016.
    assert 0.5 < soft["ci"][0] < 0.53 < soft["ci"][1] < 0.535
    assert soft_win_rate([]) == {"prompts": 0, "rate": None, "ci": None, "resamples": 2000}


def test_the_bootstrap_in_chunks_gives_the_interval_of_one_draw(monkeypatch):
    """Worked out with the draw in one piece (as before chunking): the same seed, the same
    interval, whatever the chunk size, including chunks that do not divide the resamples."""
    import numpy as np

    from selfalign.eval import outcomes

    values = [float(v) for v in np.random.default_rng(7).random(333)]
    data = np.asarray(values)
    picks = np.random.default_rng(5).integers(0, len(data), size=(500, len(data)))
    expected = tuple(float(q) for q in np.quantile(data[picks].mean(axis=1), [0.025, 0.975]))
    for chunk in (333 * 7, 1000, 1, 10**9):  # 7 resamples a chunk, 3, 1, all at once
        monkeypatch.setattr(outcomes, "BOOTSTRAP_CHUNK", chunk)
        assert bootstrap_mean_interval(values, resamples=500, seed=5) == expected
