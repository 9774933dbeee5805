"""Statistics for replication verdicts: intervals, paired tests, across-seed intervals, one verdict rule.

Two models are compared on the *same* problems (paired), one seed at a time, then the per-seed
differences are summarised across seeds with a standard error of two parts: the seeds' spread, which
averages out as seeds are added, and the problems', which every seed shares and which does not
(:func:`across_seeds`). :func:`decide` is the one verdict rule (:data:`VERDICT_RULE`); it returns a dict
beside every verdict: the interval, the p-value, the minimum detectable effect of the whole rule, how
many seeds moved each way and whether the interval contains the paper's effect::

    >>> d = paired_difference(base_scores, trained_scores)          # one seed, same problems
    >>> dec = decide([0.21, 0.18, 0.25, 0.2, 0.22], problem_se=0.02, direction=+1, paper_effect=0.276)
    >>> dec["verdict"], dec["seeds_agree"], dec["n_seeds"]
    ('supported', 5, 5)
    >>> adjust_family([dec, ...])                                   # Holm across the paper's five claims

scipy.stats does the exact McNemar (binomtest), the bootstrap and the t quantiles; only the Wilson
interval and Holm's adjustment are written out, because notebooks teach them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
from scipy import optimize as _opt
from scipy import stats as _st

# The words of a verdict. A claim of the paper is supported, contradicted, absent (smaller than a stated margin)
# or undecided; an exploratory comparison (the course's own, never the paper's) finds a direction or not, and
# never "supports" anything: its p is not adjusted over a family.
SUPPORTED, CONTRADICTED, INCONCLUSIVE, ABSENT = "supported", "contradicted", "inconclusive", "absent"
FOUND, OPPOSITE = "direction found (exploratory)", "opposite direction found (exploratory)"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, ABSENT)  # a paper claim's
EXPLORATORY_VERDICTS = (FOUND, OPPOSITE, INCONCLUSIVE, ABSENT)
ALL_VERDICTS = (*VERDICTS, FOUND, OPPOSITE)
ALPHA = 0.05  # two-sided, for the interval, the p-value, Holm and the minimum detectable effect
POWER = 0.80  # for the minimum detectable effect
# The fewest seeds the rule decides on: 2 degrees of freedom for the seeds' spread (with 2 seeds, t(1) has
# infinite variance). No count of agreeing signs is asked: it made power fall as seeds were added.
MIN_SEEDS = 3
EXPLORATORY_MIN_SEEDS = MIN_SEEDS  # one minimum for both families
# The paper's claims are one fixed family (supersmall.report.claim_specs: five), Holm-adjusted together; a claim
# without runs counts as p = 1, so the family never shrinks to make the others pass.
PAPER_FAMILY_SIZE = 5
# "absent": the 95% interval lies inside a stated margin; the kit's reports state +-MARGIN (choice: 3 points, about
# two seeds' paired standard errors on 500 problems; an equivalence reading at 0.025 per side, not adjusted over
# the family). decide() states none unless given one.
MARGIN = 0.03
VERDICT_RULE = (f"A claim is decided on at least {MIN_SEEDS} seeds by a two-sided t test of the mean paired "
                "difference across seeds, whose standard error adds the seeds' spread (s^2/k) to the problems' "
                "(the standard error of the per-problem, seed-averaged difference, shared by every seed and so "
                "not divided by k; the seeds' k - 1 degrees of freedom): a claim of the paper is 'supported' when "
                f"the Holm-adjusted p over the paper's {PAPER_FAMILY_SIZE} claims (a missing claim counts as "
                "p = 1) is below 0.05 on the paper's side, 'contradicted' when it is on the other side, 'absent' "
                f"when the 95% interval lies inside a stated margin (the kit's reports: ±{100 * MARGIN:.0f} points), "
                "and 'inconclusive' otherwise; "
                "an exploratory comparison uses its own p and reads 'direction found (exploratory)' or "
                "'opposite direction found (exploratory)', never 'supported'.")
CONDITIONAL = ("Intervals count both the seeds and the drawn problems as chance: they say what other seeds on "
               "other problems of the same kind would give, with the problems' part estimated from these "
               "problems.")
NO_TRANSFER = "not read: a stand-in model and task, so only the direction transfers, not the size"
FAMILIES = ("paper claim", "exploratory")


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (95% by default); (0, 1) when n == 0.

    The ends are exact at the edges (0 when k == 0, 1 when k == n): the formula's floating-point
    value there is 1e-16 off (0.9999999999999999 at k = n = 100), which would put the estimate outside
    its own interval and make a plotted error bar negative. The interval always contains k / n.
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"wilson_interval needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k == 0 else min(p, max(0.0, centre - half))
    high = 1.0 if k == n else max(p, min(1.0, centre + half))
    return low, high


def mean_interval(scores: Mapping[Any, float] | Sequence[float], n_boot: int = 2000, seed: int = 0,
                  confidence: float = 0.95) -> tuple[float, float]:
    """Interval of a mean score over problems (pass@1): Wilson when every score is 0 or 1, else a
    percentile bootstrap over problems (a problem's samples stay together, so a problem solved 2 of 4
    times counts once, as 0.5; never Wilson on a rounded count). ``scores``: per-problem values in [0, 1].

    When every problem has the same fractional score m the bootstrap has nothing to resample; Wilson's
    interval at p = m stands in (a [0, 1] score with mean m varies at most as a 0/1 one does, m(1 - m)).
    """
    x = np.asarray(list(scores.values()) if isinstance(scores, Mapping) else list(scores), dtype=float)
    n = int(x.size)
    if n == 0:
        return 0.0, 1.0
    z = round(float(_st.norm.ppf(0.5 + confidence / 2)), 2)  # 1.96 at 95%, as wilson_interval
    if np.all((x == 0) | (x == 1)):
        return wilson_interval(int(x.sum()), n, z)
    if np.all(x == x[0]):
        return wilson_interval(float(x.sum()), n, z)  # a fractional count, on purpose (p = m)
    means = x[np.random.default_rng(seed).integers(0, n, size=(n_boot, n))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    m = float(x.mean())
    return min(m, float(lo)), max(m, float(hi))


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (a right and b wrong, and the reverse).

    Under "no difference" each discordant problem is a fair coin, so this is a binomial test of
    ``a_only`` out of ``a_only + b_only`` at p = 0.5; 1.0 when there are no discordant problems.
    """
    n = a_only + b_only
    if n == 0:
        return 1.0
    return float(_st.binomtest(a_only, n, 0.5).pvalue)


def _diffs(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_.shape != b_.shape or a_.ndim != 1:
        raise ValueError(f"paired scores need two 1-D sequences of one length, got {a_.shape} and {b_.shape}")
    return b_ - a_


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_boot: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(b - a), resampling problems (pairs stay together).

    Never zero-width. When every difference is the same ``d`` the bootstrap has nothing to resample,
    so the interval comes from the counts instead: n of n problems moved by ``d``, and Wilson's interval
    for n of n bounds the share of problems that would (3 problems, all +1: [+0.44, +1]); when every
    difference is 0, Wilson's interval for 0 of n bounds the share that would move either way.
    """
    d = _diffs(a, b)
    if d.size == 0:
        return -math.inf, math.inf
    if np.all(d == d[0]):
        z = round(float(_st.norm.ppf(0.5 + confidence / 2)), 2)  # 1.96 at 95%, as wilson_interval
        if d[0] == 0:
            u = wilson_interval(0, int(d.size), z)[1]
            return -u, u
        lo, hi = sorted((float(d[0]) * wilson_interval(int(d.size), int(d.size), z)[0], float(d[0])))
        return lo, hi
    res = _st.bootstrap((d,), np.mean, n_resamples=n_boot, confidence_level=confidence,
                        method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_difference(a: Sequence[float], b: Sequence[float], **boot: Any) -> dict[str, Any]:
    """Two models scored on the same problems: mean(b - a), its bootstrap interval, its standard error
    and McNemar's p.

    ``a`` and ``b`` are per-problem scores in [0, 1] aligned by problem (fractions are fine: pass@1
    over several samples). ``a_better`` counts problems where a scores higher, ``b_better`` the
    reverse; for 0/1 scores ``mcnemar_p`` is the exact McNemar test, for fractions it is the sign
    test on the problems whose scores differ. ``se`` is sd(b - a) / sqrt(n), or, when every difference
    is equal, the half-width of :func:`paired_bootstrap`'s interval / 1.96 (never 0). ``boot`` goes to
    :func:`paired_bootstrap`.
    """
    d = _diffs(a, b)
    lo, hi = paired_bootstrap(a, b, **boot)
    a_better, b_better = int(np.sum(d < 0)), int(np.sum(d > 0))
    if d.size == 0:
        se = math.nan
    elif np.all(d == d[0]):
        se = (hi - lo) / (2 * 1.96)
    else:
        se = float(d.std(ddof=1) / math.sqrt(d.size))
    return {"n": int(d.size), "difference": float(d.mean()) if d.size else math.nan, "ci_low": lo, "ci_high": hi,
            "se": se, "a_better": a_better, "b_better": b_better, "mcnemar_p": mcnemar_exact(a_better, b_better)}


def _rms(se: float | Sequence[float] | None) -> float:
    """The root mean square of standard errors (NaN ones left out; 0 when none are given)."""
    if se is None:
        return 0.0
    x = np.atleast_1d(np.asarray(se, dtype=float))
    x = x[np.isfinite(x)]
    return float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0


def problem_level_se(per_problem: Sequence[Sequence[float]]) -> float:
    """The problem-level standard error of a mean difference over seeds: ``per_problem[s][j]`` is seed s's
    paired difference on problem j (every seed on the same problems); the seeds are averaged per problem
    first, then the standard error of that mean over the n problems is sd / sqrt(n). It does not shrink as
    seeds are added: every seed answers the same problems (against one shared base evaluation), so which
    problems were drawn is an error all seeds share."""
    x = np.asarray(per_problem, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"problem_se needs a (seeds x problems) array with 2+ problems, got shape {x.shape}")
    d = x.mean(axis=0)
    if np.all(d == d[0]):  # every problem moved alike: no spread to read, bound it as paired_bootstrap does
        lo, hi = paired_bootstrap(np.zeros(d.size), d)
        return (hi - lo) / (2 * 1.96)
    return float(d.std(ddof=1) / math.sqrt(d.size))


def across_seeds(diffs: Sequence[float], within_se: float | Sequence[float] | None = None,
                 confidence: float = 0.95, problem_se: float | None = None) -> dict[str, Any]:
    """Mean of per-seed differences with its two-level standard error, a t interval and the two-sided p.

    The estimate carries two errors. Seeds: a rerun with other seeds trains other models, so the spread s of
    the k per-seed differences gives s^2 / k. Problems: every seed is scored on the *same* problems, so the
    luck of which problems were drawn is shared by all seeds and does not average out over them; its part is
    ``problem_se``^2 (:func:`problem_level_se`: the standard error of the per-problem, seed-averaged difference), not
    divided by k. SE^2 = s^2 / k + problem_se^2, on the seeds' k - 1 degrees of freedom: exact when the
    problems' part is 0 and conservative otherwise, for any split between the two (Satterthwaite's
    data-dependent degrees of freedom are liberal at 3 seeds: tests/test_stats.py simulates both). When only the seeds' own paired standard errors are
    known (``within_se``), their root mean square stands in for ``problem_se``: an upper bound, as the sd of
    a mean over seeds is at most the mean of their sds. The result names both parts (``se_seeds``,
    ``se_problems``) and their shares of the variance. Below 2 seeds, or with no error at all, the interval
    is (-inf, inf) and p = 1.
    """
    x = np.asarray(diffs, dtype=float)
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    sd = float(x.std(ddof=1)) if n >= 2 else math.nan
    b = float(problem_se) if problem_se is not None and math.isfinite(problem_se) else _rms(within_se)
    a = sd * sd / n if n >= 2 else math.nan
    out = {"mean": mean, "ci_low": -math.inf, "ci_high": math.inf, "n_seeds": n, "sd": sd, "sd_used": sd,
           "se_seeds": math.sqrt(a) if n >= 2 else math.nan, "se_problems": b, "se": math.nan, "df": math.nan,
           "share_seeds": math.nan, "share_problems": math.nan, "p_value": 1.0}
    if n < 2 or a + b * b == 0.0:
        return out
    se = math.sqrt(a + b * b)
    df = float(n - 1)  # the seeds' degrees of freedom: valid (conservative) whatever the problems' share
    lo, hi = mean + np.array([-1.0, 1.0]) * _crit(1 - confidence, df) * se
    if not hi > lo:  # an error below floating-point resolution: no interval, as with none at all
        return out
    p = float(2 * _st.t.sf(abs(mean) / se, df))
    return {**out, "ci_low": float(lo), "ci_high": float(hi), "se": se, "df": df,
            "share_seeds": a / (a + b * b), "share_problems": b * b / (a + b * b), "p_value": p}


def _crit(alpha: float, df: float | np.ndarray) -> Any:
    """The two-sided critical value at ``alpha``: Student t on ``df`` (normal where df is infinite)."""
    df = np.asarray(df, dtype=float)
    z = float(_st.norm.ppf(1 - alpha / 2))
    out = np.where(np.isinf(df), z, _st.t.ppf(1 - alpha / 2, np.where(np.isinf(df), 1.0, df)))
    return float(out) if out.ndim == 0 else out


def rule_power(effect: float, n_seeds: int, sd: float, problem_se: float = 0.0, alpha: float = ALPHA,
               family_size: int = 1, nodes: int = 2000) -> float:
    """The probability that :func:`decide` (with :func:`adjust_family`) decides a claim whose true mean
    difference is ``effect`` (either side), exactly, for the rule as written: seeds' differences normal with
    spread ``sd`` around the truth plus one shared problem-draw error of sd ``problem_se``, the t test of
    :func:`across_seeds` (k - 1 degrees of freedom), at the worst step of Holm over
    ``family_size`` claims (alpha / family_size: every other claim of the family null or missing). The
    estimated seed variance s^2 = sd^2 chi2(k-1)/(k-1) is integrated out on ``nodes`` quantiles (midpoint
    rule); with ``problem_se`` = 0 this is the noncentral t power of the one-sample t test. 0 below
    :data:`MIN_SEEDS` seeds (the rule decides nothing there)."""
    k, level = int(n_seeds), alpha / family_size
    if k < max(2, MIN_SEEDS) or not math.isfinite(sd) or sd < 0 or (sd == 0 and problem_se <= 0):
        return 0.0
    b2 = problem_se ** 2
    tau = math.sqrt(sd * sd / k + b2)  # the estimate's true sd: seeds and the problem draw
    crit = _crit(level, k - 1)
    if sd == 0:
        c = crit * problem_se
        return float(_st.norm.cdf((effect - c) / tau) + _st.norm.cdf((-effect - c) / tau))
    w = _st.chi2.ppf((np.arange(nodes) + 0.5) / nodes, k - 1) / (k - 1)
    c = crit * np.sqrt(sd * sd * w / k + b2)
    return float(np.mean(_st.norm.cdf((effect - c) / tau) + _st.norm.cdf((-effect - c) / tau)))


def minimum_detectable_effect(n_seeds: int, sd: float, alpha: float = ALPHA, power: float = POWER,
                              min_seeds: int | None = None, problem_se: float = 0.0, family_size: int = 1) -> float:
    """The smallest true mean difference the verdict rule decides with probability ``power``
    (:func:`rule_power`: the whole rule, its two-level standard error and Holm's worst step over
    ``family_size`` claims, exactly): per-seed differences spread by ``sd``, the problem-level standard error
    ``problem_se`` (:func:`across_seeds`). It falls as seeds are added, to the floor the shared problems set
    (about 2.8 x ``problem_se``), never below. inf below ``min_seeds`` (:data:`MIN_SEEDS` by default) or
    with no spread at all."""
    least = max(2, MIN_SEEDS if min_seeds is None else min_seeds)
    pse = 0.0 if problem_se is None or not math.isfinite(problem_se) else float(problem_se)
    if n_seeds < least or not math.isfinite(sd) or sd < 0 or (sd == 0 and pse <= 0):
        return math.inf
    return _mde(int(n_seeds), float(sd), pse, alpha, power, int(family_size))


@cache
def _mde(n_seeds: int, sd: float, pse: float, alpha: float, power: float, family_size: int) -> float:
    def short(delta: float) -> float:
        return rule_power(delta, n_seeds, sd, pse, alpha, family_size) - power

    top = math.sqrt(sd * sd / n_seeds + pse * pse) * 10
    while short(top) < 0:
        top *= 2
    return float(_opt.brentq(short, 0.0, top, xtol=1e-10))


def planned_mde(pilot: Sequence[float], n_seeds: int, n_problems: int | None = None,
                family: str = "exploratory", power: float = POWER) -> dict[str, Any]:
    """What an experiment of ``n_seeds`` paired seeds can detect, planned from a pilot before it runs.

    ``pilot``: one condition's score on each of a few seeds (e.g. held-out accuracy of the ZeroGRPO runs).
    Two conditions trained on the same seed still differ by two runs' worth of seed noise, so the per-seed
    difference's spread is taken as sqrt(2) x the pilot's sd. The problems' shared part (:func:`across_seeds`)
    is bounded by the unpaired standard error of a difference of two accuracies on ``n_problems`` problems
    (pairing only lowers it). Returns the pilot's ``sd``, the planned ``sd_difference``, that bound
    (``se_floor``), the ``mde`` of the whole rule (80% power, :func:`minimum_detectable_effect`; for a paper
    claim at Holm's worst step over :data:`PAPER_FAMILY_SIZE`) and the ``n_seeds``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    x = np.asarray(pilot, dtype=float)
    if x.size < 2:
        raise ValueError(f"a pilot needs at least 2 seeds to have a spread, got {x.size}")
    sd = float(x.std(ddof=1))
    p = float(np.clip(x.mean(), 0.0, 1.0))
    floor = math.sqrt(2 * p * (1 - p) / n_problems) if n_problems else 0.0
    sd_diff = math.sqrt(2) * sd
    return {"sd": sd, "sd_difference": sd_diff, "se_floor": floor, "n_seeds": n_seeds, "family": family,
            "mde": minimum_detectable_effect(n_seeds, sd_diff, power=power, problem_se=floor,
                                             family_size=_family_size(family))}


def _family_size(family: str) -> int:
    return PAPER_FAMILY_SIZE if family == "paper claim" else 1


def size_reading(ci_low: float, ci_high: float, direction: int, paper_effect: float | None,
                 transfers: bool = True) -> str:
    """Does the interval contain the paper's effect (same units, signed), or exclude it, and on which side?"""
    if not transfers:
        return NO_TRANSFER
    if paper_effect is None or not math.isfinite(paper_effect):
        return "the paper prints no effect size for this claim"
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "no interval to read"
    lo, hi = sorted((direction * ci_low, direction * ci_high))
    effect = direction * paper_effect
    if lo <= effect <= hi:
        return "contains the paper's effect"
    return "excludes it (smaller)" if hi < effect else "excludes it (larger)"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment over one family: the i-th smallest of m p-values is multiplied by
    m - i (i from 0), made non-decreasing, capped at 1. Controls the family-wise error at any dependence."""
    m, out, running = len(p_values), [1.0] * len(p_values), 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: p_values[j])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        out[i] = running
    return out


def side(ci_low: float, ci_high: float, direction: int = +1) -> int:
    """Where an interval of (measured - reference) lies for a claim of ``direction`` (+1 up, -1 down): +1
    strictly on the claim's side of zero, -1 strictly on the other, 0 when it contains zero (or is NaN). A
    reading of the interval alone, not a verdict: :func:`decide` is the rule."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    if math.isnan(ci_low) or math.isnan(ci_high):
        return 0
    lo, hi = sorted((direction * ci_low, direction * ci_high))
    return 1 if lo > 0 else -1 if hi < 0 else 0


def _rule(n: int, mean: float, lo: float, hi: float, direction: int, p_adjusted: float,
          family: str = "paper claim", margin: float | None = None) -> tuple[str, str]:
    """The verdict and its reason, from the pieces :data:`VERDICT_RULE` names (the rule, written once)."""
    found, opposite = (SUPPORTED, CONTRADICTED) if family == "paper claim" else (FOUND, OPPOSITE)
    if n < MIN_SEEDS:
        return INCONCLUSIVE, f"{n} seed(s) are too few: the rule needs at least {MIN_SEEDS}"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE, "no interval (no spread between seeds and no problem-level error)"
    if margin is not None and -margin < lo and hi < margin:
        return ABSENT, (f"the interval [{100 * lo:+.1f}, {100 * hi:+.1f}] points lies inside the margin of "
                        f"±{100 * margin:.1f} points: any effect is smaller than that")
    which = side(lo, hi, direction)
    p_name = "Holm-adjusted p" if family == "paper claim" else "p"
    if p_adjusted < ALPHA and which != 0:
        where = "the claimed side" if which > 0 else "the other side"
        return (found if which > 0 else opposite), f"{p_name} = {p_adjusted:.3g} < {ALPHA}, on {where}"
    if which != 0:
        return INCONCLUSIVE, f"the interval is off zero, but the {p_name} = {p_adjusted:.3g} is not below {ALPHA}"
    return INCONCLUSIVE, "the interval contains zero"


def decide(diffs: Sequence[float], within_se: float | Sequence[float] | None = None, direction: int = +1,
           paper_effect: float | None = None, size_transfers: bool = True, family: str = "paper claim",
           confidence: float = 0.95, problem_se: float | None = None,
           margin: float | None = None) -> dict[str, Any]:
    """The verdict rule (:data:`VERDICT_RULE`) on per-seed differences (measured - reference, one per seed).

    ``problem_se``: the standard error of the per-problem, seed-averaged difference (:func:`problem_level_se`);
    without it ``within_se`` (the seeds' paired standard errors) bounds it (:func:`across_seeds`);
    ``direction``: +1 when the claim says up, -1 down; ``paper_effect``: the paper's difference in the same
    units (e.g. 0.350 - 0.074), read by :func:`size_reading` when ``size_transfers``; ``family``:
    ``"paper claim"`` (Holm-adjusted together by :func:`adjust_family`; verdicts :data:`VERDICTS`) or
    ``"exploratory"`` (never adjusted; verdicts :data:`EXPLORATORY_VERDICTS`); ``margin``: "absent" when the
    interval lies inside ±margin (None: never). Returns the interval, ``p_value`` and ``p_adjusted`` (equal
    until :func:`adjust_family`), ``mde`` (the whole rule's, 80% power; a paper claim's at Holm's worst step),
    ``seeds_agree`` and ``seeds_against`` (counts), ``size``, the standard error's two parts and their shares,
    ``verdict`` and ``reason``.
    """
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    x = [float(d) for d in diffs]
    s = across_seeds(x, within_se, confidence, problem_se)
    agree, against = sum(1 for d in x if direction * d > 0), sum(1 for d in x if direction * d < 0)
    verdict_, reason = _rule(s["n_seeds"], s["mean"], s["ci_low"], s["ci_high"], direction, s["p_value"], family,
                             margin)
    mde = minimum_detectable_effect(s["n_seeds"], s["sd"], problem_se=s["se_problems"],
                                    family_size=_family_size(family)) if s["n_seeds"] >= 2 else math.inf
    return {"verdict": verdict_, "reason": reason, "mean": s["mean"], "interval": [s["ci_low"], s["ci_high"]],
            "n_seeds": s["n_seeds"], "sd": s["sd"], "sd_used": s["sd"], "se": s["se"], "se_seeds": s["se_seeds"],
            "se_problems": s["se_problems"], "share_seeds": s["share_seeds"],
            "share_problems": s["share_problems"], "df": s["df"],
            "p_value": s["p_value"], "p_adjusted": s["p_value"], "family": family, "mde": mde,
            "seeds_agree": agree, "seeds_against": against, "margin": margin,
            "direction": direction, "paper_effect": paper_effect,
            "size": size_reading(s["ci_low"], s["ci_high"], direction, paper_effect, size_transfers),
            "rule": VERDICT_RULE, "conditional": CONDITIONAL}


def adjust_family(decisions: Sequence[dict[str, Any]], family_size: int | None = None) -> list[dict[str, Any]]:
    """Holm across the ``"paper claim"`` decisions, one fixed family of ``family_size`` claims
    (:data:`PAPER_FAMILY_SIZE` by default; a claim with no decision counts as p = 1, so leaving a claim out
    never makes the others easier to pass); each gets ``p_adjusted`` and the verdict the rule gives with it.
    Exploratory decisions come back unchanged. Works on :func:`decide` dicts and on report rows that carry the
    same keys (``p_value``, ``interval``, ``direction``, ``n_seeds``, ``mean`` or ``mean_difference``)."""
    out = [dict(d) for d in decisions]
    members = [i for i, d in enumerate(out) if d.get("family") == "paper claim"]
    m = max(len(members), PAPER_FAMILY_SIZE if family_size is None else family_size)
    ps = [out[i]["p_value"] for i in members] + [1.0] * (m - len(members))
    for i, p_adj in zip(members, holm(ps)):
        d = out[i]
        lo, hi = d["interval"]
        lo, hi = -math.inf if lo is None else lo, math.inf if hi is None else hi  # JSON writes inf as null
        d["p_adjusted"] = p_adj
        d["verdict"], d["reason"] = _rule(d["n_seeds"], d.get("mean", d.get("mean_difference")), lo, hi,
                                          d["direction"], p_adj, "paper claim", d.get("margin"))
        d["family_size"] = m
    return out


def prediction_interval(values: Sequence[float], n_new: int = 1, confidence: float = 0.95,
                        sd_floor: float = 0.0) -> tuple[float, float]:
    """Where the mean of ``n_new`` fresh draws of the same experiment will land, from ``k`` past draws.

    ``mean ± t(k-1) · sd · sqrt(1/k + 1/n_new)`` (Student t, k - 1 degrees of freedom): wider than the
    confidence interval of the mean, because the new draws carry their own spread. The README's "a rerun
    lands in" ranges are this interval with ``n_new`` = the seeds of a rerun. ``sd_floor`` floors the spread
    (one draw's own standard error: draws that happen to agree do not promise the next one the same value, as
    in :func:`across_seeds`). (-inf, inf) below 2 draws.
    """
    x = np.asarray(values, dtype=float)
    k = int(x.size)
    if k < 2 or n_new < 1:
        return -math.inf, math.inf
    sd = max(float(x.std(ddof=1)), sd_floor)
    half = float(_st.t.ppf(0.5 + confidence / 2, k - 1)) * sd * math.sqrt(1 / k + 1 / n_new)
    return float(x.mean()) - half, float(x.mean()) + half
