"""Checks for exercise 08: a replication verdict from per-seed paired differences (:func:`supersmall.stats.decide`)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from scipy import stats as st

from supersmall import stats
from supersmall.checks.core import Case, run_check


def reference_verdict(diffs: Sequence[float], direction: int, within_se: float = 0.0) -> str:
    """:func:`supersmall.stats.decide`'s verdict (one claim on its own: no Holm family)."""
    return stats.decide(diffs, within_se=within_se, direction=direction)["verdict"]


def buggy_verdict(diffs: Sequence[float], direction: int, within_se: float = 0.0, min_seeds: int | None = None,
                  shared: bool = True, problems: bool = True) -> str:
    """The rule with one common bug injected (for the check's hints); the defaults are the rule itself: the
    mean's standard error adds the seeds' spread (s^2 / n) to the problems' shared error (``within_se``^2, not
    divided by n: every seed answers the same problems), on the seeds' n - 1 degrees of freedom."""
    n = len(diffs)
    if n < (stats.MIN_SEEDS if min_seeds is None else min_seeds) or n < 2:
        return "inconclusive"
    m = sum(diffs) / n
    a = sum((x - m) ** 2 for x in diffs) / (n - 1) / n
    b2 = (within_se ** 2 if shared else within_se ** 2 / n) if problems else 0.0
    if a + b2 == 0:
        return "inconclusive"
    t = abs(m) / math.sqrt(a + b2)
    p = float(2 * st.t.sf(t, n - 1))
    if p >= stats.ALPHA or m == 0:
        return "inconclusive"
    return "supported" if direction * m > 0 else "contradicted"


def check_verdict(fn: Callable[[Sequence[float], int, float], str]) -> bool:
    """``fn(diffs, direction, within_se)`` -> "supported" | "contradicted" | "inconclusive", as the library
    decides one claim on its own (no Holm family, no margin): at least ``stats.MIN_SEEDS`` seeds, and a
    two-sided t test at 0.05 whose standard error adds the seeds' spread to the problems' shared error
    (``within_se``, not divided by the number of seeds)."""
    rng = random.Random(3)
    five = [0.20, 0.18, 0.25, 0.21, 0.22]
    cases = [Case((five, +1, 0.02), label="five seeds improve, as the paper says"),
             Case((five, -1, 0.02), label="the paper says it drops, every seed improves"),
             Case(([-x for x in five], -1, 0.02), label="a drop the paper predicted"),
             Case(([0.10, -0.05, 0.08, 0.12, 0.09], +1, 0.01), label="one seed disagrees"),
             Case(([0.30], +1, 0.02), label="one seed: no spread to estimate, so no claim"),
             Case(([], +1, 0.02), label="no seeds"),
             Case(([0.30, 0.31], +1, 0.001), label="two seeds: too few, whatever the interval"),
             Case(([0.2, 0.18, 0.25], +1, 0.02), label="three seeds: the fewest the rule decides on"),
             Case(([0.1] * 5, +1, 0.02), label="identical seeds: the problems' error remains"),
             Case(([0.006] * 5, +1, 0.0035), label="identical tiny gains (3 of 500 problems): the shared error, not / n"),
             Case(([0.1] * 5, +1, 0.0), label="identical seeds and no floor: no interval"),
             Case(([0.1] * 5, -1, 0.02), label="all equal, against the paper"),
             Case(([0.0] * 5, +1, 0.02), label="all zero: not strictly on either side"),
             Case(([0.30, 0.28, 0.33, 0.31, -0.01], +1, 0.01), label="one seed went the other way: no veto"),
             Case(([0.05, 0.04, 0.06, 0.05, 0.05], +1, 0.03), label="a floor wider than the spread")]
    for i in range(30):
        n = rng.randint(3, 8)
        mu, sd = rng.choice([-0.1, -0.02, 0.0, 0.03, 0.2]), rng.choice([0.01, 0.05, 0.1])
        diffs = [round(rng.gauss(mu, sd), 4) for _ in range(n)]
        cases.append(Case((diffs, rng.choice([1, -1]), rng.choice([0.0, 0.01, 0.03])), label=f"random #{i + 1}"))

    def student(diffs, direction, within_se):
        return fn(list(diffs), direction, within_se)

    hints = [(lambda d, k, w: buggy_verdict(d, k, w, min_seeds=2),
              f"fewer than {stats.MIN_SEEDS} seeds give no verdict, whatever the interval says"),
             (lambda d, k, w: buggy_verdict(d, k, w, shared=False),
              "the problems' error is shared by every seed: add within_se^2 itself, not within_se^2 / n"),
             (lambda d, k, w: buggy_verdict(d, k, w, problems=False),
              "the problems' error is missing: SE^2 = s^2 / n + within_se^2, or identical seeds look certain"),
             (lambda d, k, w: buggy_verdict(d, +1, w),
              "direction is ignored: with direction = -1 the paper predicts a drop, so a drop reproduces it")]
    return run_check("verdict", student, reference_verdict, cases, hints=hints)
