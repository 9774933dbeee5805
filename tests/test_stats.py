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


def test_across_seeds_is_the_student_t_interval_when_problems_add_nothing():
    s = stats.across_seeds([0.1, 0.2, 0.3])
    # mean 0.2, sd 0.1, t(0.975, df=2) = 4.302653: half-width 4.302653 * 0.1 / sqrt(3) = 0.248414
    assert s["mean"] == pytest.approx(0.2) and s["sd"] == pytest.approx(0.1) and s["n_seeds"] == 3
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((-0.048414, 0.448414), abs=1e-6)
    assert s["p_value"] == pytest.approx(st.ttest_1samp([0.1, 0.2, 0.3], 0.0).pvalue)
    assert s["df"] == 2 and s["share_seeds"] == 1.0
    one = stats.across_seeds([0.4])
    assert (one["ci_low"], one["ci_high"]) == (-math.inf, math.inf) and one["n_seeds"] == 1
    same = stats.across_seeds([0.05, 0.05])  # identical seeds and no problem-level error: no interval
    assert (same["ci_low"], same["ci_high"]) == (-math.inf, math.inf) and same["p_value"] == 1.0


def test_across_seeds_adds_the_problems_shared_error_by_hand():
    s = stats.across_seeds([0.1, 0.2, 0.3], problem_se=0.05)
    a, b2 = 0.01 / 3, 0.05 ** 2
    se, df = math.sqrt(a + b2), 2  # the seeds' k - 1 degrees of freedom (conservative when b2 > 0)
    assert s["se"] == pytest.approx(se) and s["df"] == pytest.approx(df)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((0.2 - st.t.ppf(0.975, df) * se, 0.2 + st.t.ppf(0.975, df) * se))
    assert s["p_value"] == pytest.approx(2 * st.t.sf(0.2 / se, df))
    assert s["share_seeds"] == pytest.approx(a / (a + b2)) and s["share_problems"] == pytest.approx(b2 / (a + b2))
    # without problem_se, the seeds' own paired standard errors bound it (their root mean square)
    bound = stats.across_seeds([0.1, 0.1, 0.1], within_se=[0.03, 0.04, math.nan])
    assert bound["se_problems"] == pytest.approx(math.sqrt((0.03**2 + 0.04**2) / 2))
    assert bound["df"] == 2 and bound["se"] == pytest.approx(bound["se_problems"])


def _same_gain(k, gained, n=500):
    """k identical seeds, each gaining the same ``gained`` of ``n`` problems over one shared base."""
    base, trained = np.zeros(n), np.zeros(n)
    trained[:gained] = 1
    per = [stats.paired_difference(base, trained, n_boot=200) for _ in range(k)]
    return ([p["difference"] for p in per], [p["se"] for p in per],
            stats.problem_level_se([trained - base] * k))


def test_the_floor_does_not_shrink_with_the_number_of_seeds():
    """The issue's case: 5 identical seeds gaining the same 3 of 500 problems are one piece of evidence (McNemar
    on it: p = 0.25), not five. The problem-level error is shared by every seed, so it is not divided by k."""
    diffs, ses, pse = _same_gain(5, 3)
    for d in (stats.decide(diffs, ses), stats.decide(diffs, ses, problem_se=pse)):
        assert d["verdict"] == "inconclusive" and d["interval"][0] < 0 < d["interval"][1], d["reason"]
        assert d["p_value"] > 0.05 and d["share_problems"] == 1.0
    assert stats.mcnemar_exact(0, 3) == 0.25
    p5 = stats.decide(*_same_gain(5, 3)[:2])["p_value"]
    p50 = stats.decide(*_same_gain(50, 3)[:2])["p_value"]
    z = 0.006 / pse  # the evidence itself: the mean over its shared standard error
    assert 0.05 < p50 <= p5 and p50 >= 2 * st.norm.sf(z) - 1e-12  # ten times the seeds: never beyond the evidence
    # with 5 of 500 problems the paper's family (Holm over 5) still cannot call it
    fam = stats.adjust_family([stats.decide(*_same_gain(5, 5)[:2])])
    assert fam[0]["verdict"] == "inconclusive" and fam[0]["p_adjusted"] == pytest.approx(5 * fam[0]["p_value"])


def _two_level_data(rng, k, n, seed_sd, problem_sd, base_rate=0.3, gain=0.05):
    """Simulated per-problem 0/1 scores: a shared base, k trained seeds; each problem has its own ease and
    gain (problem_sd), each seed its own shift (seed_sd). Returns the (k x n) paired differences."""
    ease = rng.normal(0, 1, n)
    p_base = 1 / (1 + np.exp(-(np.log(base_rate / (1 - base_rate)) + ease)))
    base = (rng.random(n) < p_base).astype(float)
    problem_gain = rng.normal(gain, problem_sd, n)
    seed_shift = rng.normal(0, seed_sd, k)
    p_trained = np.clip(p_base[None, :] + problem_gain[None, :] + seed_shift[:, None], 0, 1)
    trained = (rng.random((k, n)) < p_trained).astype(float)
    return trained - base[None, :]


@pytest.mark.parametrize(("k", "seed_sd", "problem_sd"), [(5, 0.03, 0.05), (5, 0.0, 0.1), (8, 0.06, 0.02), (3, 0.02, 0.2)])
def test_two_level_standard_error_agrees_with_a_two_level_bootstrap(k, seed_sd, problem_sd):
    """The standard error of :func:`stats.across_seeds` (s^2/k + SE^2 of the seed-averaged per-problem difference)
    against a bootstrap that resamples seeds and, independently, problems (the same problems for every seed,
    as in the experiment), on simulated data of each regime (seeds dominate, problems dominate, both)."""
    rng = np.random.default_rng(k * 100 + int(1000 * problem_sd))
    d = _two_level_data(rng, k, 500, seed_sd, problem_sd)
    s = stats.across_seeds(d.mean(axis=1), problem_se=stats.problem_level_se(d))
    boots = np.empty(2000)
    for i in range(boots.size):
        seeds, problems = rng.integers(0, k, k), rng.integers(0, d.shape[1], d.shape[1])
        boots[i] = d[seeds][:, problems].mean()
    boot_se = float(boots.std(ddof=1))
    # the bootstrap's own sd of a sd is about boot_se / sqrt(2 x 2000) (1.6%); the bootstrap shrinks the seeds'
    # variance by (k - 1) / k, the formula does not: agreement within that factor and 10%
    assert math.sqrt((k - 1) / k) * 0.9 < boot_se / s["se"] < 1.1, (boot_se, s["se"])


def test_the_seeds_degrees_of_freedom_keep_the_size_where_satterthwaites_do_not():
    """With no effect, 3 seeds and a problems' error beside the seeds' spread, the rule's t on k - 1 degrees of
    freedom calls at most 5% of claims at 0.05; Satterthwaite's data-dependent degrees of freedom call more
    (simulated, 100,000 experiments: Monte Carlo standard error 0.0007)."""
    rng = np.random.default_rng(3)
    k, b, n = 3, 0.01, 100_000
    sd = math.sqrt(10 * k) * b  # the seeds' part ten times the problems'
    m = rng.normal(0, math.sqrt(sd * sd / k + b * b), n)
    a = sd * sd * rng.chisquare(k - 1, n) / (k - 1) / k
    t = np.abs(m) / np.sqrt(a + b * b)
    rule = np.mean(2 * st.t.sf(t, k - 1) < 0.05)
    satterthwaite = np.mean(2 * st.t.sf(t, (k - 1) * (1 + b * b / a) ** 2) < 0.05)
    assert rule <= 0.05 + 3 * 0.0007 < 0.06 < satterthwaite
    s = stats.across_seeds([0.1, 0.15, 0.2], problem_se=b)
    assert s["df"] == k - 1


def test_rule_power_is_the_noncentral_t_without_a_problem_term():
    for k in (3, 5, 8, 12):
        crit = st.t.ppf(0.975, k - 1)
        for delta in (0.5, 1.0, 2.0):
            nc = delta * math.sqrt(k)
            exact = st.nct.sf(crit, k - 1, nc) + st.nct.cdf(-crit, k - 1, nc)
            assert stats.rule_power(delta, k, 1.0) == pytest.approx(exact, abs=2e-4)
    assert stats.minimum_detectable_effect(30, 1.0) == pytest.approx(
        (st.norm.ppf(0.975) + st.norm.ppf(0.8)) / math.sqrt(30), rel=0.05)
    assert stats.rule_power(1.0, 2, 1.0) == 0.0 and stats.minimum_detectable_effect(2, 1.0) == math.inf
    # the MDE falls with seeds, to the floor the shared problems set (~2.8 problem_se), never below
    mdes = [stats.minimum_detectable_effect(k, 0.03, problem_se=0.01) for k in (3, 5, 8, 12, 50, 400)]
    assert all(x > y for x, y in zip(mdes, mdes[1:])) and mdes[-1] > 2.8 * 0.01 * 0.99
    # a paper claim's MDE is at Holm's worst step: alpha / 5
    assert stats.minimum_detectable_effect(5, 1.0, family_size=5) == pytest.approx(
        stats.minimum_detectable_effect(5, 1.0, alpha=0.01))


def _simulated_power(effect, k, sd, pse, family_size, sims, rng):
    """How often the rule as the code runs it (across_seeds, then adjust_family over a family whose other
    members are missing, p = 1) decides a true effect; seeds share one problem-draw error of sd ``pse``."""
    hits = 0
    for _ in range(sims):
        diffs = effect + rng.normal(0, pse) + rng.normal(0, sd, k)
        s = stats.across_seeds(diffs, problem_se=pse)
        row = {"p_value": s["p_value"], "interval": [s["ci_low"], s["ci_high"]], "direction": 1, "n_seeds": k,
               "mean": s["mean"], "family": "paper claim" if family_size > 1 else "exploratory",
               "verdict": None, "reason": ""}
        if family_size > 1:
            row = stats.adjust_family([row], family_size)[0]
        else:
            row["verdict"] = stats._rule(k, s["mean"], s["ci_low"], s["ci_high"], 1, s["p_value"], "exploratory")[0]
        hits += row["verdict"] in (stats.SUPPORTED, stats.FOUND)
    return hits / sims


@pytest.mark.slow
@pytest.mark.parametrize("family_size", [1, stats.PAPER_FAMILY_SIZE])
def test_simulated_power_at_the_printed_mde_is_80_percent_and_grows_with_seeds(family_size):
    """Power of the whole rule at the MDE it prints: 0.80 +/- 0.02 for 3, 5, 8 and 12 seeds (6,000 simulated
    experiments each, seeded: Monte Carlo standard error sqrt(0.8 x 0.2 / 6000) = 0.005, so +/- 0.02 is 4 standard
    errors), with a problem-level error beside the seeds' spread; at one fixed effect power never falls as
    seeds are added (exactly, and in simulation within 3 Monte Carlo standard errors); and with no effect the
    rule keeps its size."""
    rng = np.random.default_rng(29 + family_size)
    sd, pse, sims = 0.03, 0.01, 6000
    for k in (3, 5, 8, 12):
        mde = stats.minimum_detectable_effect(k, sd, problem_se=pse, family_size=family_size)
        assert stats.rule_power(mde, k, sd, pse, family_size=family_size) == pytest.approx(0.8, abs=1e-6)
        assert _simulated_power(mde, k, sd, pse, family_size, sims, rng) == pytest.approx(0.8, abs=0.02), k
    fixed = stats.minimum_detectable_effect(5, sd, problem_se=pse, family_size=family_size)
    exact = [stats.rule_power(fixed, k, sd, pse, family_size=family_size) for k in range(3, 13)]
    assert all(x < y for x, y in zip(exact, exact[1:]))
    sim = [_simulated_power(fixed, k, sd, pse, family_size, 3000, rng) for k in (3, 5, 8, 12)]
    assert all(y >= x - 3 * math.sqrt(0.25 / 3000) for x, y in zip(sim, sim[1:])), sim
    # and with no effect the rule calls the claimed side at most alpha / 2 of the time (at Holm's worst step,
    # alpha / (2 x family_size)), within 3 Monte Carlo standard errors of 4,000 experiments
    for k in (3, 5):
        null = _simulated_power(0.0, k, sd, pse, family_size, 4000, rng)
        assert null <= stats.ALPHA / (2 * family_size) + 3 * math.sqrt(0.025 * 0.975 / 4000), (k, null)


@pytest.mark.parametrize(("lo", "hi", "direction", "expected"), [
    (0.01, 0.05, +1, 1), (-0.05, -0.01, +1, -1), (-0.01, 0.02, +1, 0), (0.0, 0.05, +1, 0),
    (0.01, 0.05, -1, -1), (-0.05, -0.01, -1, 1), (-math.inf, math.inf, +1, 0), (math.nan, 0.3, +1, 0),
])
def test_side_of_an_interval(lo, hi, direction, expected):
    assert stats.side(lo, hi, direction) == expected


def test_verdict_rule_is_one_sentence_and_direction_is_checked():
    assert stats.VERDICT_RULE.count(". ") == 0 and stats.VERDICT_RULE.endswith(".")
    assert str(stats.MIN_SEEDS) in stats.VERDICT_RULE and "Holm" in stats.VERDICT_RULE
    assert "agree" not in stats.VERDICT_RULE and "reproduced" not in stats.VERDICT_RULE
    with pytest.raises(ValueError):
        stats.side(0.1, 0.2, direction=0)
    with pytest.raises(ValueError):
        stats.decide([0.1] * 5, direction=0)
    with pytest.raises(ValueError, match="family"):
        stats.decide([0.1] * 5, family="confirmatory")


FIVE = [0.21, 0.18, 0.25, 0.20, 0.22]


@pytest.mark.parametrize(("label", "diffs", "within_se", "direction", "family", "margin", "verdict"), [
    ("five seeds agree", FIVE, 0.02, +1, "paper claim", None, "supported"),
    ("five seeds agree, the paper says down", FIVE, 0.02, -1, "paper claim", None, "contradicted"),
    ("a drop the paper predicted", [-x for x in FIVE], 0.02, -1, "paper claim", None, "supported"),
    ("identical tiny gains: the shared problems decide", [0.002] * 5, 0.002, +1, "paper claim", None, "inconclusive"),
    ("identical seeds, no problem error", [0.1] * 5, None, +1, "paper claim", None, "inconclusive"),
    ("identical large gains", [0.1] * 5, 0.02, +1, "paper claim", None, "supported"),
    ("one seed", [0.3], 0.02, +1, "paper claim", None, "inconclusive"),
    ("no seeds", [], 0.02, +1, "paper claim", None, "inconclusive"),
    ("two seeds: too few", FIVE[:2], 0.02, +1, "paper claim", None, "inconclusive"),
    ("three seeds decide", FIVE[:3], 0.02, +1, "paper claim", None, "supported"),
    ("one seed of six disagrees: no longer a veto", FIVE + [-0.01], 0.005, +1, "paper claim", None, "supported"),
    ("exploratory: a direction, never 'supported'", FIVE, 0.02, +1, "exploratory", None,
     "direction found (exploratory)"),
    ("exploratory, the other way", FIVE, 0.02, -1, "exploratory", None, "opposite direction found (exploratory)"),
    ("a precise null inside the margin", [0.004, -0.006, 0.002, 0.0, 0.001], 0.005, +1, "paper claim", 0.03, "absent"),
    ("the same null, no margin stated", [0.004, -0.006, 0.002, 0.0, 0.001], 0.005, +1, "paper claim", None,
     "inconclusive"),
    ("a wide null is not absent", [0.1, -0.05, 0.08, -0.12, 0.09], 0.02, +1, "exploratory", 0.03, "inconclusive"),
])
def test_decide_table(label, diffs, within_se, direction, family, margin, verdict):
    d = stats.decide(diffs, within_se=within_se, direction=direction, family=family, margin=margin)
    assert d["verdict"] == verdict, (label, d["reason"])
    assert d["verdict"] in (stats.VERDICTS if family == "paper claim" else stats.EXPLORATORY_VERDICTS)
    assert d["rule"] == stats.VERDICT_RULE and d["reason"]
    assert d["n_seeds"] == len(diffs) and d["p_adjusted"] == d["p_value"]
    assert d["seeds_agree"] == sum(direction * x > 0 for x in diffs)
    assert d["seeds_against"] == sum(direction * x < 0 for x in diffs)
    assert not (math.isfinite(d["interval"][0]) and d["interval"][0] == d["interval"][1])  # never zero width
    if len(diffs) < stats.MIN_SEEDS:
        assert d["mde"] == math.inf


def test_decide_reads_size_and_power():
    d = stats.decide(FIVE, within_se=0.02, paper_effect=0.35)
    assert d["size"] == "excludes it (smaller)" and d["interval"][1] < 0.35
    assert stats.decide(FIVE, within_se=0.02, paper_effect=0.2)["size"] == "contains the paper's effect"
    assert stats.decide(FIVE, within_se=0.02, paper_effect=0.1)["size"] == "excludes it (larger)"
    assert stats.decide(FIVE, within_se=0.02, paper_effect=0.2, size_transfers=False)["size"] == stats.NO_TRANSFER
    assert "no effect" in stats.decide(FIVE, within_se=0.02)["size"]
    null = stats.decide([0.001, -0.002, 0.002, 0.0, -0.001], within_se=0.001, paper_effect=0.206)
    assert null["verdict"] == "inconclusive" and null["size"] == "excludes it (smaller)"
    # the MDE printed beside a paper claim is the whole rule's at Holm's worst step, its two-level error included
    assert d["mde"] == pytest.approx(stats.minimum_detectable_effect(5, d["sd"], problem_se=0.02, family_size=5))
    ex = stats.decide(FIVE, within_se=0.02, family="exploratory")
    assert ex["mde"] == pytest.approx(stats.minimum_detectable_effect(5, d["sd"], problem_se=0.02))
    assert ex["mde"] < d["mde"]


def test_holm_by_hand_and_the_fixed_family():
    # sorted 0.01, 0.03, 0.04, 0.5 -> 4 x 0.01, 3 x 0.03, max(0.09, 2 x 0.04), 1 x 0.5
    assert stats.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert stats.holm([]) == [] and stats.holm([0.3]) == [0.3]
    assert stats.holm([0.9, 0.9]) == [1.0, 1.0]
    strong = stats.decide([0.2, 0.21, 0.19, 0.2, 0.22], within_se=0.005)
    weak = stats.decide([0.05, 0.02, 0.08, 0.01, 0.06], within_se=0.005)
    extra = stats.decide([0.05, 0.02, 0.08, 0.01, 0.06], within_se=0.005, family="exploratory")
    assert weak["verdict"] == "supported" and 0.01 < weak["p_value"] < 0.05
    fam = stats.adjust_family([strong, weak, extra])
    # the family is the paper's five claims whatever was run: the 3 missing count as p = 1
    assert fam[0]["p_adjusted"] == pytest.approx(5 * strong["p_value"]) and fam[0]["verdict"] == "supported"
    assert fam[1]["p_adjusted"] == pytest.approx(min(1, 4 * weak["p_value"]))
    assert fam[1]["verdict"] == "inconclusive" and "Holm" in fam[1]["reason"]  # significant alone, not in the family
    assert fam[0]["family_size"] == stats.PAPER_FAMILY_SIZE
    assert fam[2] == extra and fam[2]["family"] == "exploratory"  # exploratory: never adjusted
    assert weak["verdict"] == "supported"  # the inputs are not changed
    # dropping a claim never makes the others easier to pass
    alone = stats.adjust_family([weak])[0]
    assert alone["p_adjusted"] == pytest.approx(min(1, 5 * weak["p_value"]))
    assert stats.adjust_family([weak], family_size=1)[0]["p_adjusted"] == weak["p_value"]

unit = hs.floats(0, 1, allow_nan=False)


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
@given(diffs_st, hs.floats(0, 0.1), hs.sampled_from([1, -1]), hs.sampled_from(["paper claim", "exploratory"]))
def test_decide_properties(diffs, se, direction, family):
    d = stats.decide(diffs, within_se=se, direction=direction, family=family)
    lo, hi = d["interval"]
    assert not (lo == hi and math.isfinite(lo))  # identical seeds never give a zero-width interval
    assert 0 <= d["p_value"] <= 1 and d["verdict"] in stats.ALL_VERDICTS
    if d["verdict"] != "inconclusive":  # a verdict needs enough seeds and an interval off zero
        assert len(diffs) >= stats.MIN_SEEDS and (lo > 0 or hi < 0) and d["p_value"] < stats.ALPHA
    if family == "exploratory":
        assert d["verdict"] not in (stats.SUPPORTED, stats.CONTRADICTED)
    # the rule is symmetric: flipping every difference and the direction changes nothing
    flipped = stats.decide([-x for x in diffs], within_se=se, direction=-direction, family=family)
    assert flipped["verdict"] == d["verdict"] and flipped["seeds_agree"] == d["seeds_agree"]


@settings(max_examples=100, deadline=None)
@given(hs.lists(hs.floats(0, 1), max_size=12))
def test_holm_properties(ps):
    adj = stats.holm(ps)
    assert all(p - 1e-12 <= q <= 1 for p, q in zip(ps, adj))
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    assert all(adj[i] <= adj[j] + 1e-12 for i, j in zip(order, order[1:]))




def test_planned_mde_from_a_pilot():
    plan = stats.planned_mde([0.50, 0.56, 0.53], n_seeds=3, n_problems=500)
    assert plan["sd"] == pytest.approx(0.03) and plan["sd_difference"] == pytest.approx(math.sqrt(2) * 0.03)
    floor = math.sqrt(2 * 0.53 * 0.47 / 500)
    assert plan["se_floor"] == pytest.approx(floor)
    assert plan["mde"] == pytest.approx(stats.minimum_detectable_effect(3, plan["sd_difference"], problem_se=floor))
    more = stats.planned_mde([0.50, 0.56, 0.53], n_seeds=8, n_problems=500)
    assert more["mde"] < plan["mde"]  # more seeds find smaller effects
    assert more["mde"] > 2.8 * floor * 0.99  # but never below what the shared problems allow
    tight = stats.planned_mde([0.53, 0.53, 0.53], n_seeds=3, n_problems=500)
    assert tight["sd_difference"] == 0 and math.isfinite(tight["mde"]) and tight["mde"] > 0
    paper = stats.planned_mde([0.5, 0.6], 5, family="paper claim")
    assert paper["mde"] > stats.planned_mde([0.5, 0.6], 5)["mde"]  # Holm's worst step over 5 claims
    with pytest.raises(ValueError, match="at least 2 seeds"):
        stats.planned_mde([0.5], 3)
    with pytest.raises(ValueError, match="family"):
        stats.planned_mde([0.5, 0.6], 3, family="both")
