"""Checks for exercise 06: the Wilson score interval and a paired (McNemar) comparison."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from supersmall import stats
from supersmall.checks.core import Case, close, run_check


def check_wilson_interval(fn: Callable[..., tuple[float, float]]) -> bool:
    """``fn(k, n, z=1.96)`` -> ``(low, high)`` must match :func:`supersmall.stats.wilson_interval`."""
    rng = random.Random(0)
    cases = [Case((0, 0), label="no trials: the whole of [0, 1]"),
             Case((0, 10), label="k = 0: low is 0 but high is not (a Wald interval collapses here)"),
             Case((10, 10), label="k = n: high is 1 but low is not"),
             Case((100, 100), label="k = n = 100: high is exactly 1.0 (the formula's float gives 0.9999999999999999)"),
             Case((5, 10), label="half right"),
             Case((1, 500), label="rare success on MATH-500"),
             Case((250, 500), {"z": 2.576}, label="99% interval (z = 2.576)"),
             Case((3, 7), {"z": 1.0}, label="z = 1")]
    for i in range(25):
        n = rng.choice([1, 2, 5, 30, 100, 500, 5000])
        cases.append(Case((rng.randint(0, n), n), label=f"random #{i + 1}"))

    def student(k, n, z=1.96):
        return tuple(float(v) for v in fn(k, n, z=z))

    def reference(k, n, z=1.96):
        return stats.wilson_interval(k, n, z=z)

    def compare(expected, got):  # the ends at k = 0 and k = n must be exact, not 1e-16 off
        return close(expected, got) and all(g == e for e, g in zip(expected, got) if e in (0.0, 1.0))

    hints = [(lambda k, n, z=1.96: buggy_wilson(k, n, z, precedence=True, exact_ends=False, guard=False),
              "this still behaves like exercise 6.1's buggy version (all three bugs): start with n = 0"),
             (lambda k, n, z=1.96: buggy_wilson(k, n, z, precedence=True),
              "looks like z * z / 2 * n, which Python reads as (z^2 / 2) * n: write z * z / (2 * n)"),
             (lambda k, n, z=1.96: buggy_wilson(k, n, z, exact_ends=False),
              "the formula is right, but at k = 0 or k = n its end is a float a hair off 0 or 1 (0.9999999999999999): "
              "set low = 0.0 exactly when k == 0 and high = 1.0 when k == n"),
             (lambda k, n, z=1.96: buggy_wilson(k, n, z, wald=True),
              "looks like the Wald interval p +- z sqrt(p(1 - p) / n): it collapses to a point at k = 0 and k = n"),
             (lambda k, n, z=1.96: buggy_wilson(k, n, z, guard=False),
              "no trials (n = 0) divides by zero: the interval then knows nothing, return (0.0, 1.0)")]
    return run_check("wilson_interval", student, reference, cases, compare, hints=hints)


def buggy_wilson(k, n, z=1.96, precedence=False, exact_ends=True, wald=False, guard=True):
    """The Wilson interval with one common bug injected (for the check's hints)."""
    if n == 0 and guard:
        return 0.0, 1.0
    p = k / n
    if wald:
        h = z * math.sqrt(p * (1 - p) / n)
        return max(0.0, p - h), min(1.0, p + h)
    denom = 1 + z * z / n
    centre = (p + (z * z / 2 * n if precedence else z * z / (2 * n))) / denom
    half = z * math.sqrt(p * (1 - p) / n + (z * z / 4 * n * n if precedence else z * z / (4 * n * n))) / denom
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    if exact_ends:
        low, high = (0.0 if k == 0 else low), (1.0 if k == n else high)
    return low, high


def _reference_paired(a: Sequence[int], b: Sequence[int]) -> tuple[int, int, float]:
    if len(a) != len(b):
        raise ValueError(f"a and b must be aligned (same problems), got lengths {len(a)} and {len(b)}")
    a_only = sum(1 for x, y in zip(a, b) if x and not y)
    b_only = sum(1 for x, y in zip(a, b) if y and not x)
    return a_only, b_only, stats.mcnemar_exact(a_only, b_only)


def check_paired_test(fn: Callable[[Sequence[int], Sequence[int]], tuple[int, int, float]]) -> bool:
    """``fn(a, b)`` -> ``(a_only, b_only, p)``: discordant counts and :func:`supersmall.stats.mcnemar_exact`.

    ``a_only`` counts problems ``a`` solves and ``b`` does not, ``b_only`` the reverse; problems both
    solve (or both miss) say nothing about which model is better. Vectors of different lengths are
    not paired: raise ``ValueError``.
    """
    rng = random.Random(1)
    cases = [Case(([1, 1, 0, 0], [1, 1, 0, 0]), label="identical: no discordant problems, p = 1"),
             Case(([0] * 10, [1] * 10), label="b solves 10 more: p = 2 / 2**10"),
             Case(([1, 0, 1, 0, 1, 1], [0, 1, 1, 0, 1, 1]), label="one each way: p = 1"),
             Case(([1] * 30 + [0] * 70, [1] * 25 + [0] * 5 + [1] * 12 + [0] * 58),
                  label="agreements do not count: 5 vs 12"),
             Case(([], []), label="no problems"),
             Case(([1, 0], [1, 0, 1]), label="not aligned: raise ValueError")]
    for i in range(25):
        n = rng.choice([5, 20, 100, 500])
        pa, pb = rng.random(), rng.random()
        a = [int(rng.random() < pa) for _ in range(n)]
        b = [int(rng.random() < pb) for _ in range(n)]
        cases.append(Case((a, b), label=f"random #{i + 1}"))

    def student(a, b):
        a_only, b_only, p = fn(list(a), list(b))
        return int(a_only), int(b_only), float(p)

    def compare(expected, got):  # p-values can be tiny: compare them relatively, not to 1e-5
        return expected[:2] == got[:2] and close(expected[2], got[2], atol=1e-12, rtol=1e-6)

    def one_sided(a, b):
        a_only, b_only, _ = _reference_paired(a, b)
        n = a_only + b_only
        return a_only, b_only, sum(math.comb(n, i) for i in range(min(a_only, b_only) + 1)) / 2 ** n if n else 1.0

    def uncapped(a, b):
        a_only, b_only, _ = _reference_paired(a, b)
        n = a_only + b_only
        return a_only, b_only, 2 * sum(math.comb(n, i) for i in range(min(a_only, b_only) + 1)) / 2 ** n if n else 1.0

    def totals(a, b):
        _, _, p = _reference_paired(a, b)
        return sum(a), sum(b), p

    hints = [(one_sided, "looks one-sided: the question is whether the models differ either way, so double the "
                         "smaller tail (two-sided)"),
             (uncapped, "with a_only == b_only, twice the tail is above 1: a p-value is at most 1, min(1, ...)"),
             (totals, "those are the totals each model solved: count only the discordant problems (a right and b "
                      "wrong, and the reverse)")]
    return run_check("paired_test", student, _reference_paired, cases, compare, hints=hints)
