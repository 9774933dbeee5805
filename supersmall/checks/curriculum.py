"""Checks for exercise 04: difficulty bucketing and a cumulative schedule."""

from __future__ import annotations

import random
from collections.abc import Callable

from supersmall import curriculum
from supersmall.checks.core import Case, run_check


def check_difficulty_level(fn: Callable[[float, str], int]) -> bool:
    """``fn(d, scheme)`` must match :func:`supersmall.curriculum.difficulty_level` (round is half-up)."""
    rng = random.Random(0)
    cases = [Case((d, s), label="boundary") for d in (2.5, 3.49, 3.5, 4.0, 0.0, 8.5) for s in ("round", "floor")]
    cases += [Case((round(rng.uniform(0, 10), 2), rng.choice(["round", "floor"])), label=f"random #{i + 1}")
              for i in range(30)]
    return run_check("difficulty_level", fn, curriculum.difficulty_level, cases)


def check_cumulative_levels(fn: Callable[[list[tuple[int, ...]]], list[set[int]]]) -> bool:
    """``fn(stage_levels)`` must give, per stage, the set of levels a *cumulative* schedule draws from."""
    rng = random.Random(1)
    cases = [Case(([(1, 2, 3), (4,), (5,)],), label="the paper's stages"), Case(([(2,)],), label="one stage")]
    for i in range(20):
        stages = [tuple(rng.sample(range(1, 8), rng.randint(1, 3))) for _ in range(rng.randint(1, 4))]
        cases.append(Case((stages,), label=f"random #{i + 1}"))

    def reference(stage_levels):
        pool = [{"level": lvl, "prompt": str(lvl)} for lvl in range(1, 8) for _ in range(2)]
        spec = ",".join("+".join(map(str, s)) + ":1" for s in stage_levels)
        plan = curriculum.build_schedule(pool, spec, "cumulative", prompts_per_step=200, seed=0)
        return [{r["level"] for r in plan.rows_at(i)} for i in range(len(stage_levels))]

    return run_check("cumulative_levels", fn, reference, cases)
