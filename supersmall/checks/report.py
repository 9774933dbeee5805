"""Checks for exercise 08: a replication verdict from per-seed paired differences."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from supersmall import stats
from supersmall.checks.core import Case, run_check


def reference_verdict(diffs: Sequence[float], direction: int) -> str:
    """:func:`supersmall.stats.across_seeds` (Student-t 95% interval), read by :func:`supersmall.stats.verdict`."""
    s = stats.across_seeds(diffs)
    return stats.verdict(s["ci_low"], s["ci_high"], direction)


def check_verdict(fn: Callable[[Sequence[float], int], str]) -> bool:
    """``fn(diffs, direction)`` -> "reproduced" | "not reproduced" | "inconclusive", as the library decides."""
    rng = random.Random(3)
    cases = [Case(([0.20, 0.18, 0.25], +1), label="every seed improves, as the paper says"),
             Case(([0.20, 0.18, 0.25], -1), label="the paper says it drops, every seed improves"),
             Case(([-0.04, -0.05, -0.03], -1), label="a drop the paper predicted"),
             Case(([0.10, -0.05, 0.08], +1), label="seeds disagree: the interval contains 0"),
             Case(([0.30], +1), label="one seed: no spread to estimate, so no claim"),
             Case(([], +1), label="no seeds"),
             Case(([0.2, 0.25], +1), label="two seeds: t with 1 df is 12.7, not 1.96"),
             Case(([0.1, 0.1, 0.1], +1), label="all equal and positive: the interval is one point"),
             Case(([0.1, 0.1, 0.1], -1), label="all equal, against the paper"),
             Case(([0.0, 0.0, 0.0, 0.0], +1), label="all zero: not strictly on either side")]
    for i in range(30):
        n = rng.randint(2, 6)
        mu, sd = rng.choice([-0.1, -0.02, 0.0, 0.03, 0.2]), rng.choice([0.01, 0.05, 0.1])
        diffs = [round(rng.gauss(mu, sd), 4) for _ in range(n)]
        cases.append(Case((diffs, rng.choice([1, -1])), label=f"random #{i + 1}"))

    def student(diffs, direction):
        return fn(list(diffs), direction)

    return run_check("verdict", student, reference_verdict, cases)
