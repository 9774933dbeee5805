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
                  floor: bool = True, signs: bool = True) -> str:
    """The rule with one common bug injected (for the check's hints); the defaults are the rule itself."""
    n = len(diffs)
    if n < (stats.MIN_SEEDS if min_seeds is None else min_seeds) or n < 2:
        return "inconclusive"
    m = sum(diffs) / n
    s = math.sqrt(sum((x - m) ** 2 for x in diffs) / (n - 1))
    s = max(s, within_se) if floor else s
    if s == 0:
        return "inconclusive"
    half = float(st.t.ppf(0.975, n - 1)) * s / math.sqrt(n)
    low, high = sorted((direction * (m - half), direction * (m + half)))
    if low > 0 and (not signs or all(direction * x > 0 for x in diffs)):
        return "reproduced"
    if high < 0 and (not signs or all(direction * x < 0 for x in diffs)):
        return "not reproduced"
    return "inconclusive"


def check_verdict(fn: Callable[[Sequence[float], int, float], str]) -> bool:
    """``fn(diffs, direction, within_se)`` -> "reproduced" | "not reproduced" | "inconclusive", as the library
    decides: at least ``stats.MIN_SEEDS`` seeds, all on one side, and a Student-t interval (spread floored at
    ``within_se``) strictly on that side."""
    rng = random.Random(3)
    five = [0.20, 0.18, 0.25, 0.21, 0.22]
    cases = [Case((five, +1, 0.02), label="five seeds improve, as the paper says"),
             Case((five, -1, 0.02), label="the paper says it drops, every seed improves"),
             Case(([-x for x in five], -1, 0.02), label="a drop the paper predicted"),
             Case(([0.10, -0.05, 0.08, 0.12, 0.09], +1, 0.01), label="one seed disagrees"),
             Case(([0.30], +1, 0.02), label="one seed: no spread to estimate, so no claim"),
             Case(([], +1, 0.02), label="no seeds"),
             Case(([0.2, 0.25], +1, 0.02), label="two seeds: too few, whatever the interval"),
             Case(([0.2, 0.18, 0.25], +1, 0.02), label="three seeds agree: p = 0.5^3 = 0.125, too few"),
             Case(([0.1] * 5, +1, 0.02), label="identical seeds: the spread is floored at within_se"),
             Case(([0.002] * 5, +1, 0.002), label="identical tiny gains: the floor makes the interval cross 0"),
             Case(([0.1] * 5, +1, 0.0), label="identical seeds and no floor: no interval"),
             Case(([0.1] * 5, -1, 0.02), label="all equal, against the paper"),
             Case(([0.0] * 5, +1, 0.02), label="all zero: not strictly on either side"),
             Case(([0.30, 0.28, 0.33, 0.31, -0.01], +1, 0.01), label="the interval clears 0, but one seed went the other way"),
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
             (lambda d, k, w: buggy_verdict(d, k, w, floor=False),
              "the spread is not floored: s = max(s, within_se), or identical seeds look infinitely precise"),
             (lambda d, k, w: buggy_verdict(d, k, w, signs=False),
              "the interval alone is not enough: every seed must also move the same way"),
             (lambda d, k, w: buggy_verdict(d, +1, w),
              "direction is ignored: with direction = -1 the paper predicts a drop, so a drop reproduces it")]
    return run_check("verdict", student, reference_verdict, cases, hints=hints)
