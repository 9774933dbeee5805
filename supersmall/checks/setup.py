"""Checks for notebook 00's warm-up exercise (how checks work)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from supersmall.checks.core import Case, run_check


def reference_pass_at_1(correct: Sequence[Sequence[bool]]) -> float:
    """pass@1 with n samples per problem: mean over problems of the fraction of correct samples."""
    if not correct:
        raise ValueError("correct is empty: no problems to score")
    return sum(sum(map(bool, row)) / len(row) for row in correct) / len(correct)


def check_pass_at_1(fn: Callable[[Sequence[Sequence[bool]]], float]) -> bool:
    """Warm-up: ``fn(correct)`` must equal :func:`reference_pass_at_1` on edge cases and random inputs.

    An empty ``correct`` (no problems) must raise, not return a number: ``ValueError`` as the reference
    does (a ``ZeroDivisionError`` from dividing by no problems is accepted too).
    """
    rng = random.Random(0)
    cases = [
        Case(([[True]],), label="one problem, one correct sample"),
        Case(([[False]],), label="one problem, one wrong sample"),
        Case(([[True, False, False, False]],), label="1 of 4 samples correct"),
        Case(([[True], [False], [True]],), label="three problems, one sample each"),
        Case(([[True, True], [False, False, False, True]],), label="different sample counts"),
        Case(([],), label="no problems at all: pass@1 is undefined, raise ValueError (not a number)",
             raises=(ValueError, ZeroDivisionError)),
    ]
    for i in range(20):
        rows = [[rng.random() < 0.4 for _ in range(rng.randint(1, 8))] for _ in range(rng.randint(1, 30))]
        cases.append(Case((rows,), label=f"random #{i + 1}"))
    return run_check("pass_at_1", fn, reference_pass_at_1, cases)
