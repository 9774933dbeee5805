"""Statistics for replication verdicts: intervals, paired tests, across-seed intervals.

Two models are compared on the *same* problems (paired), one seed at a time, then the per-seed
differences are summarised across seeds with a Student-t interval. A verdict reads that interval:

    >>> d = paired_difference(base_scores, trained_scores)          # one seed, same problems
    >>> s = across_seeds([0.21, 0.18, 0.25])                        # one difference per seed
    >>> verdict(s["ci_low"], s["ci_high"], direction=+1)
    'reproduced'

scipy.stats does the exact McNemar (binomtest), the bootstrap and the t quantiles; only the Wilson
interval is written out, because a notebook teaches it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as _st

VERDICTS = ("reproduced", "not reproduced", "inconclusive")
VERDICT_RULE = ("A claim is 'reproduced' when the 95% interval of the mean paired difference across seeds "
                "lies strictly on the paper's side of zero, 'not reproduced' when it lies strictly on the "
                "other side, and 'inconclusive' when it contains zero.")


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (95% by default); (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


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

    When every difference is equal the interval is that difference, ``(d, d)``.
    """
    d = _diffs(a, b)
    if d.size == 0:
        return -math.inf, math.inf
    if np.all(d == d[0]):
        return float(d[0]), float(d[0])
    res = _st.bootstrap((d,), np.mean, n_resamples=n_boot, confidence_level=confidence,
                        method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_difference(a: Sequence[float], b: Sequence[float], **boot: Any) -> dict[str, Any]:
    """Two models scored on the same problems: mean(b - a), its bootstrap interval and McNemar's p.

    ``a`` and ``b`` are per-problem scores in [0, 1] aligned by problem (fractions are fine: pass@1
    over several samples). ``a_better`` counts problems where a scores higher, ``b_better`` the
    reverse; for 0/1 scores ``mcnemar_p`` is the exact McNemar test, for fractions it is the sign
    test on the problems whose scores differ. ``boot`` goes to :func:`paired_bootstrap`.
    """
    d = _diffs(a, b)
    lo, hi = paired_bootstrap(a, b, **boot)
    a_better, b_better = int(np.sum(d < 0)), int(np.sum(d > 0))
    return {"n": int(d.size), "difference": float(d.mean()) if d.size else math.nan, "ci_low": lo, "ci_high": hi,
            "a_better": a_better, "b_better": b_better, "mcnemar_p": mcnemar_exact(a_better, b_better)}


def across_seeds(diffs: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean of per-seed differences with a Student-t interval; (-inf, inf) with fewer than 2 seeds.

    Seeds are the unit of replication: each seed's difference already averages over the problems,
    so the spread between seeds is what says whether a result would come back on a rerun.
    """
    x = np.asarray(diffs, dtype=float)
    n = int(x.size)
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "ci_low": -math.inf, "ci_high": math.inf, "n_seeds": n, "sd": math.nan}
    sd = float(x.std(ddof=1))
    if sd == 0.0:
        lo = hi = mean
    else:
        lo, hi = (float(v) for v in _st.t.interval(confidence, n - 1, loc=mean, scale=sd / math.sqrt(n)))
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "n_seeds": n, "sd": sd}


def verdict(ci_low: float, ci_high: float, direction: int = +1) -> str:
    """Read an interval of (measured - reference) against the paper's direction (+1 up, -1 down).

    ``reproduced``: the interval lies strictly on the paper's side of zero; ``not reproduced``: it
    lies strictly on the other side; ``inconclusive``: it contains zero (or is undefined).
    """
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
