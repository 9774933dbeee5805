"""supersmall.stats: Wilson, exact McNemar, paired bootstrap, across-seed t intervals, verdicts."""

import math

import numpy as np
import pytest
from scipy import stats as st

from supersmall import stats


def test_wilson_on_known_values():
    # 5/10: centre 0.5, half-width 1.96 * sqrt(0.025 + 1.96^2 / 400) / (1 + 1.96^2 / 10) = 0.26341
    assert stats.wilson_interval(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    assert stats.wilson_interval(0, 10) == pytest.approx((0.0, 0.27755), abs=1e-5)
    assert stats.wilson_interval(10, 10) == pytest.approx((0.72245, 1.0), abs=1e-5)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    # the same as scipy's Wilson interval (which uses z = 1.95996...)
    ci = st.binomtest(37, 500).proportion_ci(0.95, method="wilson")
    assert stats.wilson_interval(37, 500) == pytest.approx((ci.low, ci.high), abs=1e-4)


def test_mcnemar_exact():
    assert stats.mcnemar_exact(0, 10) == pytest.approx(2 * 0.5**10)
    assert stats.mcnemar_exact(10, 0) == pytest.approx(2 * 0.5**10)
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(3, 3) == 1.0
    # 1 vs 5 discordant: P(X <= 1) + P(X >= 5) for X ~ Bin(6, 1/2) = 2 * 7 / 64
    assert stats.mcnemar_exact(1, 5) == pytest.approx(14 / 64)


def test_paired_bootstrap_covers_the_true_mean_and_is_degenerate_when_diffs_are_equal():
    rng = np.random.default_rng(1)
    a = np.zeros(400)
    b = (rng.random(400) < 0.3).astype(float)  # true mean difference 0.3
    lo, hi = stats.paired_bootstrap(a, b, n_boot=2000, seed=0)
    assert lo < 0.3 < hi and hi - lo < 0.12
    assert stats.paired_bootstrap(a, b, seed=0) == stats.paired_bootstrap(a, b, seed=0)  # seeded
    assert stats.paired_bootstrap([0, 0, 1], [1, 1, 2]) == (1.0, 1.0)
    with pytest.raises(ValueError, match="one length"):
        stats.paired_bootstrap([0, 1], [1])


def test_paired_difference_counts_problems_each_way():
    a = [1, 1, 0, 0, 0, 1, 0.5]
    b = [1, 0, 1, 1, 1, 1, 1.0]
    d = stats.paired_difference(a, b, n_boot=500)
    assert d["n"] == 7 and d["difference"] == pytest.approx(2.5 / 7)
    assert (d["a_better"], d["b_better"]) == (1, 4)
    assert d["mcnemar_p"] == pytest.approx(stats.mcnemar_exact(1, 4))
    assert d["ci_low"] <= d["difference"] <= d["ci_high"]
    assert set(d) == {"n", "difference", "ci_low", "ci_high", "a_better", "b_better", "mcnemar_p"}


def test_across_seeds_is_the_student_t_interval():
    s = stats.across_seeds([0.1, 0.2, 0.3])
    # mean 0.2, sd 0.1, t(0.975, df=2) = 4.302653: half-width 4.302653 * 0.1 / sqrt(3) = 0.248414
    assert s["mean"] == pytest.approx(0.2) and s["sd"] == pytest.approx(0.1) and s["n_seeds"] == 3
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((-0.048414, 0.448414), abs=1e-6)
    lo, hi = st.t.interval(0.95, 2, loc=0.2, scale=0.1 / math.sqrt(3))
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((lo, hi))
    one = stats.across_seeds([0.4])
    assert (one["ci_low"], one["ci_high"]) == (-math.inf, math.inf) and one["n_seeds"] == 1
    same = stats.across_seeds([0.05, 0.05])
    assert (same["ci_low"], same["ci_high"]) == pytest.approx((0.05, 0.05))


@pytest.mark.parametrize(("lo", "hi", "direction", "expected"), [
    (0.01, 0.05, +1, "reproduced"),
    (-0.05, -0.01, +1, "not reproduced"),
    (-0.01, 0.02, +1, "inconclusive"),
    (0.0, 0.05, +1, "inconclusive"),  # touching zero is not excluding it
    (0.01, 0.05, -1, "not reproduced"),
    (-0.05, -0.01, -1, "reproduced"),
    (-0.01, 0.02, -1, "inconclusive"),
    (-math.inf, math.inf, +1, "inconclusive"),
    (math.nan, 0.3, +1, "inconclusive"),
    (0.3, math.nan, +1, "inconclusive"),
])
def test_verdict_table(lo, hi, direction, expected):
    assert stats.verdict(lo, hi, direction) == expected
    assert expected in stats.VERDICTS


def test_verdict_rule_is_one_sentence_and_direction_is_checked():
    assert stats.VERDICT_RULE.count(". ") == 0 and stats.VERDICT_RULE.endswith(".")
    with pytest.raises(ValueError):
        stats.verdict(0.1, 0.2, direction=0)
