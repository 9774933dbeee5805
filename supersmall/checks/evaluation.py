"""Checks for exercise 06: the Wilson score interval and a paired (McNemar) comparison."""

from __future__ import annotations

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

    return run_check("wilson_interval", student, reference, cases)


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

    return run_check("paired_test", student, _reference_paired, cases, compare)
