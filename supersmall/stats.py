"""Statistics for replication verdicts: intervals, paired tests, across-seed intervals, one verdict rule.

Two models are compared on the *same* problems (paired), one seed at a time, then the per-seed
differences are summarised across seeds. :func:`decide` is the one verdict rule (:data:`VERDICT_RULE`);
it returns a dict beside every verdict: the interval, the p-value, the minimum detectable effect,
how many seeds agree in sign and whether the interval contains the paper's effect::

    >>> d = paired_difference(base_scores, trained_scores)          # one seed, same problems
    >>> dec = decide([0.21, 0.18, 0.25, 0.2, 0.22], within_se=0.02, direction=+1, paper_effect=0.276)
    >>> dec["verdict"], dec["seeds_same_sign"]
    ('reproduced', '5 of 5')
    >>> adjust_family([dec, ...])                                   # Holm across the paper's claims

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

VERDICTS = ("reproduced", "not reproduced", "inconclusive")
ALPHA = 0.05  # two-sided, for the interval, the p-value, Holm and the minimum detectable effect
POWER = 0.80  # for the minimum detectable effect
# The fewest seeds whose agreeing signs alone are evidence: k of k on the paper's side has one-sided
# sign-test p = 0.5^k, below ALPHA from k = 5 on (3 seeds: 0.125). Fewer seeds rest on normality alone.
MIN_SEEDS = math.ceil(math.log(ALPHA) / math.log(0.5))
# Exploratory comparisons (the course's mechanisms and extras, never the paper's claims) may be decided on
# fewer seeds, all agreeing: their verdict then rests on the t interval's normality, and says so.
EXPLORATORY_MIN_SEEDS = 3
VERDICT_RULE = (f"A claim of the paper is 'reproduced' when at least {MIN_SEEDS} seeds all moved the paper's way, the 95% "
                "Student-t interval of the mean paired difference across seeds (its spread floored at one "
                "seed's paired standard error) lies strictly on the paper's side of zero, and the Holm-adjusted "
                "p-value over the paper's claims is below 0.05; 'not reproduced' when the same holds on the "
                f"other side; 'inconclusive' otherwise; an exploratory comparison needs {EXPLORATORY_MIN_SEEDS} or more "
                "seeds, all agreeing, and its unadjusted p; with fewer than "
                f"{MIN_SEEDS} its verdict rests on the normality of the seeds' spread.")
CONDITIONAL = ("Intervals are conditional on the evaluation problems: they say what other seeds would give on "
               "these problems, not on other problems of the same kind.")
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


def within_seed_se(within_se: float | Sequence[float] | None) -> float:
    """The root mean square of the per-seed standard errors, NaNs left out (0 when none are given): the floor of
    the spread between seeds (:func:`across_seeds`)."""
    if within_se is None:
        return 0.0
    se = np.atleast_1d(np.asarray(within_se, dtype=float))
    se = se[np.isfinite(se)]
    return float(np.sqrt(np.mean(se ** 2))) if se.size else 0.0


def across_seeds(diffs: Sequence[float], within_se: float | Sequence[float] | None = None,
                 confidence: float = 0.95) -> dict[str, Any]:
    """Mean of per-seed differences with a Student-t interval and its two-sided p-value (mean = 0).

    Seeds are the unit of replication: each seed's difference already averages over the problems,
    so the spread between seeds is what says whether a result would come back on a rerun. That spread
    is floored at the within-seed standard error (``within_se``: the seeds' paired standard errors, see
    :func:`paired_difference`; their root mean square is the floor): seeds that agree more closely than
    one seed's measurement can resolve (a deterministic run solving the same problem every time) are not
    evidence of precision. With fewer than 2 seeds, or no spread and no floor, the interval is
    (-inf, inf) and the p-value 1.
    """
    x = np.asarray(diffs, dtype=float)
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    sd = float(x.std(ddof=1)) if n >= 2 else math.nan
    floor = within_seed_se(within_se)
    sd_used = max(sd, floor) if n >= 2 else math.nan
    out = {"mean": mean, "ci_low": -math.inf, "ci_high": math.inf, "n_seeds": n, "sd": sd, "se_floor": floor,
           "sd_used": sd_used, "p_value": 1.0}
    if n < 2 or sd_used == 0.0:
        return out
    scale = sd_used / math.sqrt(n)
    lo, hi = (float(v) for v in _st.t.interval(confidence, n - 1, loc=mean, scale=scale))
    if not hi > lo:  # a spread below floating-point resolution: no interval, as with no spread at all
        return out
    p = float(2 * _st.t.sf(abs(mean) / scale, n - 1))
    return {**out, "ci_low": lo, "ci_high": hi, "p_value": p}


def minimum_detectable_effect(n_seeds: int, sd: float, alpha: float = ALPHA, power: float = POWER,
                              min_seeds: int = MIN_SEEDS) -> float:
    """The smallest true mean difference a two-sided one-sample t test on ``n_seeds`` per-seed differences
    with spread ``sd`` finds with probability ``power`` (noncentral t, exact); inf below ``min_seeds``
    seeds, where the verdict rule cannot decide at all: :data:`MIN_SEEDS` for a paper claim,
    :data:`EXPLORATORY_MIN_SEEDS` for an exploratory comparison (whose rule also asks every seed to agree,
    which a t test with this power nearly always implies at 3 seeds, so the figure is a close lower bound)."""
    if n_seeds < max(2, min_seeds) or not math.isfinite(sd) or sd <= 0:  # no spread, no test: nothing detectable
        return math.inf
    return sd * _mde_per_sd(n_seeds, alpha, power)


@cache
def _mde_per_sd(n_seeds: int, alpha: float, power: float) -> float:
    """The minimum detectable effect in units of the per-seed sd (it scales with sd, so solve once per n)."""
    df, crit = n_seeds - 1, float(_st.t.ppf(1 - alpha / 2, n_seeds - 1))

    def short(delta: float) -> float:
        nc = delta * math.sqrt(n_seeds)
        return float(np.nan_to_num(_st.nct.sf(crit, df, nc)) + np.nan_to_num(_st.nct.cdf(-crit, df, nc))) - power

    return float(_opt.brentq(short, 0.0, (crit + 4) / math.sqrt(n_seeds)))  # power > 0.9 at the top


def planned_mde(pilot: Sequence[float], n_seeds: int, n_problems: int | None = None,
                family: str = "exploratory", power: float = POWER) -> dict[str, Any]:
    """What an experiment of ``n_seeds`` paired seeds can detect, planned from a pilot before it runs.

    ``pilot``: one condition's score on each of a few seeds (e.g. held-out accuracy of the ZeroGRPO runs).
    Two conditions trained on the same seed still differ by two runs' worth of seed noise, so the per-seed
    difference's spread is taken as sqrt(2) x the pilot's sd, floored (as :func:`across_seeds` does) at the
    unpaired standard error of a difference of two accuracies on ``n_problems`` problems, an upper bound of
    the paired one. Returns the pilot's ``sd``, the planned ``sd_difference``, the ``mde`` (80% power,
    :func:`minimum_detectable_effect`, with ``family``'s seed minimum) and the ``n_seeds``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    x = np.asarray(pilot, dtype=float)
    if x.size < 2:
        raise ValueError(f"a pilot needs at least 2 seeds to have a spread, got {x.size}")
    sd = float(x.std(ddof=1))
    p = float(np.clip(x.mean(), 0.0, 1.0))
    floor = math.sqrt(2 * p * (1 - p) / n_problems) if n_problems else 0.0
    sd_diff = max(math.sqrt(2) * sd, floor)
    least = EXPLORATORY_MIN_SEEDS if family == "exploratory" else MIN_SEEDS
    return {"sd": sd, "sd_difference": sd_diff, "se_floor": floor, "n_seeds": n_seeds, "family": family,
            "mde": minimum_detectable_effect(n_seeds, sd_diff, power=power, min_seeds=least)}


def seeds_same_sign(diffs: Sequence[float], direction: int = +1) -> str:
    """How many seeds moved the paper's way (strictly), as ``"k of n"``."""
    return f"{sum(1 for d in diffs if direction * d > 0)} of {len(diffs)}"


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


def _rule(n: int, agree: int, disagree: int, lo: float, hi: float, direction: int,
          p_adjusted: float, family: str = "paper claim") -> tuple[str, str]:
    """The verdict and its reason, from the pieces :data:`VERDICT_RULE` names (the rule, written once)."""
    if math.isnan(lo) or math.isnan(hi):
        return VERDICTS[2], "no interval"
    lo, hi = sorted((direction * lo, direction * hi))
    side = "the paper's side" if lo > 0 else "the other side" if hi < 0 else None
    if side is None:
        return VERDICTS[2], "the interval contains zero"
    least = MIN_SEEDS if family == "paper claim" else EXPLORATORY_MIN_SEEDS
    if n < least:
        return VERDICTS[2], (f"the interval is on {side}, but {n} seed(s) are too few "
                             f"(at least {least}: {n} agreeing signs have p = {0.5 ** max(n, 0):.3g})")
    if (agree if lo > 0 else disagree) != n:
        return VERDICTS[2], f"the interval is on {side}, but not every seed moved that way"
    if p_adjusted >= ALPHA:
        return VERDICTS[2], f"the interval is on {side}, but the Holm-adjusted p = {p_adjusted:.3g}"
    return (VERDICTS[0], "every condition holds") if lo > 0 else (VERDICTS[1], "every condition holds, the other way")


def decide(diffs: Sequence[float], within_se: float | Sequence[float] | None = None, direction: int = +1,
           paper_effect: float | None = None, size_transfers: bool = True, family: str = "paper claim",
           confidence: float = 0.95) -> dict[str, Any]:
    """The verdict rule (:data:`VERDICT_RULE`) on per-seed differences (measured - reference, one per seed).

    ``within_se``: the seeds' paired standard errors (the spread's floor, :func:`across_seeds`);
    ``direction``: +1 when the paper says up, -1 down; ``paper_effect``: the paper's difference in the same
    units (e.g. 0.350 - 0.074), read by :func:`size_reading` when ``size_transfers``; ``family``:
    ``"paper claim"`` (Holm-adjusted together by :func:`adjust_family`) or ``"exploratory"`` (never
    adjusted, and labelled so). Returns the interval, ``p_value`` and ``p_adjusted`` (equal until
    :func:`adjust_family`), ``mde`` (80% power), ``seeds_same_sign``, ``size``, ``verdict`` and ``reason``.
    """
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    x = [float(d) for d in diffs]
    s = across_seeds(x, within_se, confidence)
    agree, disagree = sum(1 for d in x if direction * d > 0), sum(1 for d in x if direction * d < 0)
    verdict_, reason = _rule(s["n_seeds"], agree, disagree, s["ci_low"], s["ci_high"], direction, s["p_value"], family)
    if family == "exploratory" and verdict_ != VERDICTS[2] and s["n_seeds"] < MIN_SEEDS:
        reason += f" (exploratory, {s['n_seeds']} seeds: the t interval's normality carries it)"
    return {"verdict": verdict_, "reason": reason, "mean": s["mean"], "interval": [s["ci_low"], s["ci_high"]],
            "n_seeds": s["n_seeds"], "sd": s["sd"], "se_floor": s["se_floor"], "sd_used": s["sd_used"],
            "p_value": s["p_value"], "p_adjusted": s["p_value"], "family": family,
            "mde": minimum_detectable_effect(s["n_seeds"], s["sd_used"],
                                             min_seeds=EXPLORATORY_MIN_SEEDS if family == "exploratory" else MIN_SEEDS),
            "seeds_same_sign": f"{agree} of {len(x)}", "seeds_against": disagree,
            "direction": direction, "paper_effect": paper_effect,
            "size": size_reading(s["ci_low"], s["ci_high"], direction, paper_effect, size_transfers),
            "rule": VERDICT_RULE, "conditional": CONDITIONAL}


def adjust_family(decisions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Holm across the ``"paper claim"`` decisions (one family); each gets ``p_adjusted`` and the verdict the
    rule gives with it. Exploratory decisions come back unchanged. Works on :func:`decide` dicts and on
    report rows that carry the same keys (``p_value``, ``interval``, ``direction``, ``seeds_same_sign``,
    ``seeds_against``)."""
    out = [dict(d) for d in decisions]
    members = [i for i, d in enumerate(out) if d.get("family") == "paper claim"]
    for i, p_adj in zip(members, holm([out[i]["p_value"] for i in members])):
        d = out[i]
        agree, n = (int(v) for v in d["seeds_same_sign"].split(" of "))
        d["p_adjusted"] = p_adj
        d["verdict"], d["reason"] = _rule(n, agree, d["seeds_against"], *d["interval"], d["direction"], p_adj)
    return out


def verdict(ci_low: float, ci_high: float, direction: int = +1) -> str:
    """The direction reading of an interval of (measured - reference) alone (+1 up, -1 down): strictly on
    the paper's side, strictly on the other, or containing zero. :func:`decide` adds the seeds, the
    spread floor and Holm; this is the first of its conditions."""
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction!r}")
    if math.isnan(ci_low) or math.isnan(ci_high):
        return VERDICTS[2]
    lo, hi = sorted((direction * ci_low, direction * ci_high))
    if lo > 0:
        return VERDICTS[0]
    if hi < 0:
        return VERDICTS[1]
    return VERDICTS[2]


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
