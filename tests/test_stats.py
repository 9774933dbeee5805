"""supersmall.stats: Wilson, exact McNemar, paired bootstrap, across-seed t intervals, the verdict rule."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
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


def test_paired_bootstrap_covers_the_true_mean_and_is_never_zero_width():
    rng = np.random.default_rng(1)
    a = np.zeros(400)
    b = (rng.random(400) < 0.3).astype(float)  # true mean difference 0.3
    lo, hi = stats.paired_bootstrap(a, b, n_boot=2000, seed=0)
    assert lo < 0.3 < hi and hi - lo < 0.12
    assert stats.paired_bootstrap(a, b, seed=0) == stats.paired_bootstrap(a, b, seed=0)  # seeded
    # every difference +1 on 3 problems: Wilson's interval for 3 of 3, times +1 (McNemar gives p = 0.25)
    assert stats.paired_bootstrap([0, 0, 1], [1, 1, 2]) == pytest.approx((stats.wilson_interval(3, 3)[0], 1.0), abs=1e-4)
    assert stats.paired_bootstrap([0, 0, 1], [1, 1, 2])[0] == pytest.approx(0.43850, abs=1e-5)
    assert stats.paired_bootstrap([1, 1], [0, 0]) == pytest.approx((-1.0, -stats.wilson_interval(2, 2)[0]), abs=1e-4)
    # nothing differs: the share of problems that could move either way is bounded by Wilson's 0 of 4
    u = stats.wilson_interval(0, 4)[1]
    assert stats.paired_bootstrap([1, 0, 1, 0], [1, 0, 1, 0]) == pytest.approx((-u, u), abs=1e-4)
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
    assert set(d) == {"n", "difference", "ci_low", "ci_high", "se", "a_better", "b_better", "mcnemar_p"}
    assert d["se"] == pytest.approx(np.std(np.subtract(b, a), ddof=1) / math.sqrt(7))
    same = stats.paired_difference([0, 0, 1], [1, 1, 2])  # equal differences: se from the count interval
    assert same["se"] == pytest.approx((1 - stats.wilson_interval(3, 3)[0]) / 3.92, abs=1e-4) and same["se"] > 0


def test_across_seeds_is_the_student_t_interval():
    s = stats.across_seeds([0.1, 0.2, 0.3])
    # mean 0.2, sd 0.1, t(0.975, df=2) = 4.302653: half-width 4.302653 * 0.1 / sqrt(3) = 0.248414
    assert s["mean"] == pytest.approx(0.2) and s["sd"] == pytest.approx(0.1) and s["n_seeds"] == 3
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((-0.048414, 0.448414), abs=1e-6)
    lo, hi = st.t.interval(0.95, 2, loc=0.2, scale=0.1 / math.sqrt(3))
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((lo, hi))
    one = stats.across_seeds([0.4])
    assert (one["ci_low"], one["ci_high"]) == (-math.inf, math.inf) and one["n_seeds"] == 1
    assert s["p_value"] == pytest.approx(st.ttest_1samp([0.1, 0.2, 0.3], 0.0).pvalue)
    # identical seeds: no spread and no floor -> no interval, never a zero-width one
    same = stats.across_seeds([0.05, 0.05])
    assert (same["ci_low"], same["ci_high"]) == (-math.inf, math.inf) and same["p_value"] == 1.0
    # the floor: each seed gains the same one problem of 500 (paired se = sqrt(0.002 * 0.998 / 499) ~ 0.002)
    floored = stats.across_seeds([0.002] * 3, within_se=[0.002] * 3)
    assert floored["sd"] == 0 and floored["sd_used"] == 0.002
    half = st.t.ppf(0.975, 2) * 0.002 / math.sqrt(3)
    assert (floored["ci_low"], floored["ci_high"]) == pytest.approx((0.002 - half, 0.002 + half))
    assert floored["ci_low"] < 0  # -> inconclusive
    # a floor below the real spread changes nothing; the floor is the rms of the seeds' standard errors
    assert stats.across_seeds([0.1, 0.2, 0.3], within_se=0.01)["ci_low"] == pytest.approx(s["ci_low"])
    assert stats.across_seeds([0.1, 0.1, 0.1], within_se=[0.03, 0.04, math.nan])["se_floor"] == pytest.approx(
        math.sqrt((0.03**2 + 0.04**2) / 2))


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
    assert str(stats.MIN_SEEDS) in stats.VERDICT_RULE and "Holm" in stats.VERDICT_RULE
    # MIN_SEEDS: the fewest seeds whose agreeing signs alone (one-sided sign test) get below 0.05
    assert stats.MIN_SEEDS == 5 and 0.5**5 < stats.ALPHA < 0.5**4
    with pytest.raises(ValueError):
        stats.verdict(0.1, 0.2, direction=0)
    with pytest.raises(ValueError):
        stats.decide([0.1] * 5, direction=0)
    with pytest.raises(ValueError, match="family"):
        stats.decide([0.1] * 5, family="confirmatory")


FIVE = [0.21, 0.18, 0.25, 0.20, 0.22]


@pytest.mark.parametrize(("label", "diffs", "within_se", "direction", "verdict", "same_sign"), [
    ("five seeds agree", FIVE, 0.02, +1, "reproduced", "5 of 5"),
    ("five seeds agree, the paper says down", FIVE, 0.02, -1, "not reproduced", "0 of 5"),
    ("a drop the paper predicted", [-x for x in FIVE], 0.02, -1, "reproduced", "5 of 5"),
    ("identical seeds, floored", [0.002] * 5, 0.002, +1, "inconclusive", "5 of 5"),
    ("identical seeds, no floor", [0.1] * 5, None, +1, "inconclusive", "5 of 5"),
    ("identical large gains, floored", [0.1] * 5, 0.02, +1, "reproduced", "5 of 5"),
    ("one seed", [0.3], 0.02, +1, "inconclusive", "1 of 1"),
    ("no seeds", [], 0.02, +1, "inconclusive", "0 of 0"),
    ("three seeds agree: too few", FIVE[:3], 0.02, +1, "inconclusive", "3 of 3"),
    ("a dropped seed leaves four", FIVE[:4], 0.02, +1, "inconclusive", "4 of 4"),
    ("one seed of six disagrees", FIVE + [-0.01], 0.005, +1, "inconclusive", "5 of 6"),
    ("bimodal: one seed lost", [0.1, 0.1, 0.1, 0.1, -0.4], 0.01, +1, "inconclusive", "4 of 5"),
])
def test_decide_table(label, diffs, within_se, direction, verdict, same_sign):
    d = stats.decide(diffs, within_se=within_se, direction=direction)
    assert (d["verdict"], d["seeds_same_sign"]) == (verdict, same_sign), (label, d["reason"])
    assert d["verdict"] in stats.VERDICTS and d["rule"] == stats.VERDICT_RULE and d["reason"]
    assert d["n_seeds"] == len(diffs) and d["p_adjusted"] == d["p_value"]
    assert not (math.isfinite(d["interval"][0]) and d["interval"][0] == d["interval"][1])  # never zero width
    if len(diffs) < stats.MIN_SEEDS:
        assert d["mde"] == math.inf


def test_decide_reads_size_and_power():
    d = stats.decide(FIVE, within_se=0.02, paper_effect=0.276)
    assert d["size"] == "excludes it (smaller)" and d["interval"][1] < 0.276
    assert stats.decide(FIVE, within_se=0.02, paper_effect=0.2)["size"] == "contains the paper's effect"
    assert stats.decide(FIVE, within_se=0.02, paper_effect=0.1)["size"] == "excludes it (larger)"
    assert stats.decide(FIVE, within_se=0.02, paper_effect=0.2, size_transfers=False)["size"] == stats.NO_TRANSFER
    assert "no effect" in stats.decide(FIVE, within_se=0.02)["size"]
    # a precise null beside a large paper effect: inconclusive in direction, but the size reading says it
    null = stats.decide([0.001, -0.002, 0.002, 0.0, -0.001], within_se=0.001, paper_effect=0.206)
    assert null["verdict"] == "inconclusive" and null["size"] == "excludes it (smaller)"
    # the MDE: (t_0.975,4 + t_0.8,4) * sd / sqrt(5) is the textbook approximation of the exact value
    sd = d["sd_used"]
    approx = (st.t.ppf(0.975, 4) + st.t.ppf(0.8, 4)) * sd / math.sqrt(5)
    assert d["mde"] == pytest.approx(approx, rel=0.03) and d["mde"] > 0
    assert stats.minimum_detectable_effect(30, 1.0) == pytest.approx(
        (st.norm.ppf(0.975) + st.norm.ppf(0.8)) / math.sqrt(30), rel=0.05)
    # at the MDE the t test has 80% power (checked by simulation)
    rng = np.random.default_rng(0)
    x = rng.normal(stats.minimum_detectable_effect(5, 1.0), 1.0, size=(4000, 5))
    power = np.mean(st.ttest_1samp(x, 0.0, axis=1).pvalue < 0.05)
    assert power == pytest.approx(0.8, abs=0.03)


def test_holm_by_hand_and_the_family():
    # sorted 0.01, 0.03, 0.04, 0.5 -> 4 x 0.01, 3 x 0.03, max(0.09, 2 x 0.04), 1 x 0.5
    assert stats.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert stats.holm([]) == [] and stats.holm([0.3]) == [0.3]
    assert stats.holm([0.9, 0.9]) == [1.0, 1.0]
    strong = stats.decide([0.2, 0.21, 0.19, 0.2, 0.22], within_se=0.005, family="paper claim")
    weak = stats.decide([0.05, 0.02, 0.08, 0.01, 0.06], within_se=0.005, family="paper claim")
    extra = stats.decide([0.05, 0.02, 0.08, 0.01, 0.06], within_se=0.005, family="exploratory")
    assert weak["verdict"] == "reproduced" and 0.025 < weak["p_value"] < 0.05
    fam = stats.adjust_family([strong, weak, extra] + [stats.decide([0.1, -0.1, 0.1, -0.1, 0.0],
                                                                    family="paper claim")])
    assert fam[0]["verdict"] == "reproduced" and fam[0]["p_adjusted"] == pytest.approx(3 * strong["p_value"])
    assert fam[1]["p_adjusted"] == pytest.approx(min(1, 2 * weak["p_value"]))
    assert fam[1]["verdict"] == "inconclusive" and "Holm" in fam[1]["reason"]  # significant alone, not in the family
    assert fam[2] == extra and fam[2]["family"] == "exploratory"  # exploratory: never adjusted
    assert weak["verdict"] == "reproduced"  # the inputs are not changed


def _bimodal_rate(n_seeds, rule, draws=2000, seed=7):
    """+10 points with probability 0.8, -40 with 0.2 (true mean 0), a point of noise, per seed."""
    rng = np.random.default_rng(seed)
    gains = np.where(rng.random((draws, n_seeds)) < 0.8, 0.10, -0.40) + rng.normal(0, 0.01, (draws, n_seeds))
    return float(np.mean([rule(list(g)) == "reproduced" for g in gains]))


def test_bimodal_seeds_are_not_reproduced_half_the_time():
    old = _bimodal_rate(3, lambda g: stats.verdict(*(lambda s: (s["ci_low"], s["ci_high"]))(stats.across_seeds(g))))
    assert old == pytest.approx(0.8**3, abs=0.05)  # the t interval alone: about half the time
    new = lambda g: stats.decide(g, within_se=0.01)["verdict"]  # noqa: E731
    assert _bimodal_rate(3, new) == 0.0  # 3 seeds can never be enough
    # 5 seeds: "reproduced" needs all 5 on the paper's side, probability 0.8^5 = 0.33 -> the bound
    # (plus 3 Monte Carlo standard errors); 1 in 3 is what 5 seeds that all gain cannot tell from a real gain
    bound = 0.8**5 + 3 * math.sqrt(0.8**5 * (1 - 0.8**5) / 2000)
    assert _bimodal_rate(5, new) <= bound
    assert _bimodal_rate(10, new, draws=500) <= 0.8**10 + 3 * math.sqrt(0.8**10 * (1 - 0.8**10) / 500)
    # and a real, consistent gain still comes back
    rng = np.random.default_rng(1)
    real = np.mean([stats.decide(list(rng.normal(0.1, 0.02, 5)), within_se=0.02)["verdict"] == "reproduced"
                    for _ in range(300)])
    assert real > 0.9


def test_mean_interval_respects_fractions():
    # the example: 0.15 and 0.25 on 10 problems got the same Wilson interval on rounded counts
    assert stats.mean_interval([0.15] * 10) != stats.mean_interval([0.25] * 10)
    assert stats.mean_interval([0.15] * 10) == pytest.approx(stats.wilson_interval(1.5, 10), abs=1e-4)
    assert stats.mean_interval([1, 0, 1, 1, 0]) == pytest.approx(stats.wilson_interval(3, 5), abs=1e-4)  # 0/1: Wilson on the count
    assert stats.mean_interval({7: 1.0, 9: 0.0}) == pytest.approx(stats.wilson_interval(1, 2), abs=1e-4)
    assert stats.mean_interval([]) == (0.0, 1.0)
    x = [0, 0.5, 0.25, 1, 0, 0, 0.25, 0.5, 0, 0]
    lo, hi = stats.mean_interval(x, seed=0)
    assert lo < np.mean(x) < hi and (lo, hi) == stats.mean_interval(x, seed=0)
    rng = np.random.default_rng(0)
    boot = rng.choice(x, size=(2000, 10)).mean(axis=1)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(boot, [0.025, 0.975])), abs=0.03)


unit = hs.floats(0, 1, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(hs.lists(hs.tuples(unit, unit), min_size=1, max_size=30))
def test_paired_bootstrap_property_never_zero_width_and_contains_the_mean(pairs):
    a, b = zip(*pairs)
    lo, hi = stats.paired_bootstrap(a, b, n_boot=200)
    m = float(np.mean(np.subtract(b, a)))
    assert lo < hi and lo - 1e-9 <= m <= hi + 1e-9 and -1 <= lo and hi <= 1


@settings(max_examples=60, deadline=None)
@given(hs.lists(unit, min_size=1, max_size=30))
def test_mean_interval_property(scores):
    lo, hi = stats.mean_interval(scores, n_boot=200)
    assert 0 <= lo < hi <= 1 and lo - 1e-9 <= float(np.mean(scores)) <= hi + 1e-9


diffs_st = hs.lists(hs.floats(-1, 1, allow_nan=False), min_size=0, max_size=8)


@settings(max_examples=150, deadline=None)
@given(diffs_st, hs.floats(0, 0.1), hs.sampled_from([1, -1]))
def test_decide_properties(diffs, se, direction):
    d = stats.decide(diffs, within_se=se, direction=direction)
    lo, hi = d["interval"]
    assert not (lo == hi and math.isfinite(lo))  # identical seeds never give a zero-width interval
    assert 0 <= d["p_value"] <= 1 and d["verdict"] in stats.VERDICTS
    if d["verdict"] != "inconclusive":  # a verdict needs enough seeds, all agreeing, and an interval off zero
        n = len(diffs)
        assert n >= stats.MIN_SEEDS and d["seeds_same_sign"] in (f"{n} of {n}", f"0 of {n}")
        assert lo > 0 or hi < 0
    # the rule is symmetric: flipping every difference and the direction changes nothing
    flipped = stats.decide([-x for x in diffs], within_se=se, direction=-direction)
    assert flipped["verdict"] == d["verdict"] and flipped["seeds_same_sign"] == d["seeds_same_sign"]


@settings(max_examples=100, deadline=None)
@given(hs.lists(hs.floats(0, 1), max_size=12))
def test_holm_properties(ps):
    adj = stats.holm(ps)
    assert all(p - 1e-12 <= q <= 1 for p, q in zip(ps, adj))
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    assert all(adj[i] <= adj[j] + 1e-12 for i, j in zip(order, order[1:]))


def test_exploratory_comparisons_may_decide_on_three_agreeing_seeds_and_say_what_carries_it():
    """The course's mechanisms (not the paper's claims) run 3 seeds: a large, consistent effect is called, with
    the reason naming the normality it rests on; a seed against, or 2 seeds, stays inconclusive."""
    strong = stats.decide([0.40, 0.35, 0.45], within_se=0.02, family="exploratory")
    assert strong["verdict"] == "reproduced" and "normality" in strong["reason"]
    assert stats.decide([0.40, -0.05, 0.45], within_se=0.02, family="exploratory")["verdict"] == "inconclusive"
    assert stats.decide([0.40, 0.45], within_se=0.02, family="exploratory")["verdict"] == "inconclusive"
    assert stats.decide([0.40, 0.35, 0.45], within_se=0.02)["verdict"] == "inconclusive"  # a paper claim needs 5


def test_exploratory_mde_is_finite_at_three_seeds_and_a_paper_claims_is_not():
    assert stats.minimum_detectable_effect(3, 0.02) == math.inf  # a paper claim needs 5 seeds
    three = stats.minimum_detectable_effect(3, 0.02, min_seeds=stats.EXPLORATORY_MIN_SEEDS)
    assert 0.02 < three < stats.minimum_detectable_effect(2, 0.02, min_seeds=2)
    assert stats.decide([0.01, 0.03, 0.02], family="exploratory")["mde"] == pytest.approx(three, rel=0.5)
    assert math.isfinite(stats.decide([0.01, 0.03, 0.02], family="exploratory")["mde"])
    assert stats.decide([0.01, 0.03, 0.02])["mde"] == math.inf


def test_planned_mde_from_a_pilot():
    plan = stats.planned_mde([0.50, 0.56, 0.53], n_seeds=3, n_problems=500)
    assert plan["sd"] == pytest.approx(0.03)
    assert plan["sd_difference"] == pytest.approx(max(math.sqrt(2) * 0.03, math.sqrt(2 * 0.53 * 0.47 / 500)))
    assert plan["mde"] == pytest.approx(stats.minimum_detectable_effect(3, plan["sd_difference"], min_seeds=3))
    more = stats.planned_mde([0.50, 0.56, 0.53], n_seeds=8, n_problems=500)
    assert more["mde"] < plan["mde"]  # more seeds find smaller effects
    tight = stats.planned_mde([0.53, 0.53, 0.53], n_seeds=3, n_problems=500)
    assert tight["sd_difference"] == pytest.approx(tight["se_floor"]) and tight["mde"] > 0  # identical seeds: the floor
    assert stats.planned_mde([0.5, 0.6], 3, family="paper claim")["mde"] == math.inf
    with pytest.raises(ValueError, match="at least 2 seeds"):
        stats.planned_mde([0.5], 3)
    with pytest.raises(ValueError, match="family"):
        stats.planned_mde([0.5, 0.6], 3, family="both")
