"""Checks for exercise 04: difficulty bucketing (a rule, and a design) and what a cumulative schedule draws."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

from supersmall import curriculum
from supersmall.checks.core import Case, close, run_check


def check_difficulty_level(fn: Callable[[float, str], int]) -> bool:
    """``fn(d, scheme)`` must match :func:`supersmall.curriculum.difficulty_level` (round is half-up)."""
    rng = random.Random(0)
    cases = [Case((d, s), label="boundary") for d in (2.5, 3.49, 3.5, 4.0, 0.0, 8.5) for s in ("round", "floor")]
    cases += [Case((round(rng.uniform(0, 10), 2), rng.choice(["round", "floor"])), label=f"random #{i + 1}")
              for i in range(30)]
    hints = [(lambda d, scheme: round(d) if scheme == "round" else int(math.floor(d)),
              "looks like Python's round, which rounds half to *even* (round(2.5) = 2): half-up is floor(d + 0.5)"),
             (lambda d, scheme: int(math.floor(d + 0.5)) if scheme == "round" else math.ceil(d),
              "floor rounds down (3.9 -> 3), not up")]
    return run_check("difficulty_level", fn, curriculum.difficulty_level, cases, hints=hints)


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


# --- 4.1: design a bucketing --------------------------------------------------------------------------
def _level_problem(difficulties, levels, n_levels) -> str:
    """What breaks the rules of a bucketing, or "ok"."""
    if len(levels) != len(difficulties):
        return f"{len(levels)} levels for {len(difficulties)} problems"
    if any(not isinstance(lv, int) or isinstance(lv, bool) or not 1 <= lv <= n_levels for lv in levels):
        return f"levels must be integers 1..{n_levels}"
    by_d: dict[float, set[int]] = {}
    for d, lv in zip(difficulties, levels):
        by_d.setdefault(d, set()).add(lv)
    if any(len(v) > 1 for v in by_d.values()):
        return "two problems of the same difficulty got different levels"
    order = sorted(by_d)
    if any(min(by_d[a]) > min(by_d[b]) for a, b in zip(order, order[1:])):
        return "a harder problem got a lower level"
    if set(levels) != set(range(1, n_levels + 1)):
        return f"level(s) {sorted(set(range(1, n_levels + 1)) - set(levels))} empty"
    return "ok"


def reference_balanced_max(difficulties, n_levels) -> int:
    """The smallest possible size of the largest level: every set of cut points between distinct difficulties."""
    values = sorted(set(difficulties))
    if len(values) < n_levels:
        raise ValueError(f"{len(values)} distinct difficulties cannot fill {n_levels} levels")
    counts = [sum(1 for d in difficulties if d == v) for v in values]
    best = len(difficulties)
    for cuts in itertools.combinations(range(1, len(values)), n_levels - 1):
        edges = (0, *cuts, len(values))
        best = min(best, max(sum(counts[a:b]) for a, b in zip(edges, edges[1:])))
    return best


def _quantile_levels(difficulties, n_levels):  # the greedy cut: a problem's level from its rank
    order = sorted(difficulties)
    n = len(order)
    return [min(n_levels, 1 + order.index(d) * n_levels // n) for d in difficulties]


def check_balanced_levels(fn: Callable[[list[float], int], list[int]]) -> bool:
    """``fn(difficulties, n_levels)`` -> a level 1..n_levels per problem: equal difficulties share a level, a harder
    problem never gets a lower one, every level is used, and the largest level is as small as any such bucketing
    allows. Fewer distinct difficulties than levels: raise ``ValueError``. The check compares
    ``(what breaks the rules or "ok", size of the largest level)``."""
    rng = random.Random(4)
    grid = [x / 2 for x in range(6, 19)]  # DeepMath-like: 3.0, 3.5, ..., 9.0
    cases = [Case(([1.0, 2.0, 3.0, 4.0], 2), label="four distinct: two levels of two"),
             Case(([3.0, 3.0, 3.0, 3.5, 4.0, 4.5], 2), label="ties: the three 3.0s stay together"),
             Case(([5.0, 4.0, 3.0, 6.0, 3.0, 5.5], 3), label="unsorted input"),
             Case(([3.0, 3.5, 4.0, 4.0, 4.0, 4.0, 4.5, 5.0], 3),
                  label="a big tie in the middle: a quantile cut is not the best"),
             Case(([3.0, 3.0, 4.0], 3), label="two distinct difficulties cannot fill 3 levels: ValueError")]
    for i in range(20):
        n = rng.randint(6, 30)
        weights = [rng.random() ** 2 for _ in grid]
        cases.append(Case(([rng.choices(grid, weights)[0] for _ in range(n)], rng.randint(2, 5)),
                          label=f"random #{i + 1}"))

    def summary(levels_fn):
        def run(difficulties, n_levels):
            levels = [int(x) if float(x).is_integer() else x for x in levels_fn(list(difficulties), n_levels)]
            sizes = [levels.count(lv) for lv in set(levels)]
            return _level_problem(difficulties, levels, n_levels), max(sizes, default=0)
        return run

    def reference(difficulties, n_levels):
        return "ok", reference_balanced_max(difficulties, n_levels)

    def rounded(difficulties, n_levels):
        return [min(n_levels, max(1, curriculum.difficulty_level(d) - 2)) for d in difficulties]

    hints = [(summary(_quantile_levels),
              "looks like cuts at the quantiles (a problem's level from its rank): with ties that does not always "
              "give the smallest largest level; with ~12 distinct difficulties you can try every set of cut points "
              "(itertools.combinations)"),
             (summary(rounded), "looks like fixed cut points (rounded difficulty): the task is to choose them from the data")]
    return run_check("balanced_levels", summary(fn), reference, cases, compare=lambda e, g: e == g, hints=hints)


# --- 4.2: what a cumulative stage draws -------------------------------------------------------------------
def reference_cumulative_shares(stage_levels, level_sizes, cumulative=True, by="problem"):
    """Per stage, {level: share of that stage's draws}; ``cumulative=False`` / ``by="level"`` inject bugs."""
    out, seen = [], set()
    for levels in stage_levels:
        seen |= set(levels)
        pool = {lv: level_sizes.get(lv, 0) for lv in (seen if cumulative else set(levels))}
        pool = {lv: n for lv, n in pool.items() if n > 0}
        if not pool:
            raise ValueError(f"stage {levels} has no problems in the pool")
        total = sum(pool.values())
        out.append({lv: (n / total if by == "problem" else 1 / len(pool)) for lv, n in sorted(pool.items())})
    return out


def check_cumulative_shares(fn: Callable[[list[tuple[int, ...]], dict[int, int]], list[dict[int, float]]]) -> bool:
    """``fn(stage_levels, level_sizes)`` -> per stage, ``{level: share}`` of the problems a *cumulative* schedule
    draws in that stage (:func:`supersmall.curriculum.build_schedule` draws uniformly from the pool of every level
    seen so far); levels with no problems are left out; a stage with an empty pool raises ``ValueError``."""
    rng = random.Random(1)
    cases = [Case(([(1, 2, 3), (4,), (5,)], {1: 10, 2: 10, 3: 10, 4: 10, 5: 10}), label="equal sizes"),
             Case(([(1, 2, 3), (4,), (5,)], {1: 500, 2: 1500, 3: 8000, 4: 9000, 5: 16000}),
                  label="made-up sizes growing with the level: level 5 is the biggest, yet under half of its cumulative stage"),
             Case(([(4,), (1, 2)], {1: 3, 2: 0, 4: 1}), label="a level with no problems is left out"),
             Case(([(6,)], {1: 5}), label="a stage whose pool is empty: ValueError")]
    for i in range(20):
        sizes = {lv: rng.choice([0, 1, 5, 40, 300]) for lv in range(1, 8)}
        sizes[rng.randint(1, 7)] = 7  # at least one non-empty level
        stages = [tuple(rng.sample(range(1, 8), rng.randint(1, 3))) for _ in range(rng.randint(1, 4))]
        stages[0] = (*stages[0], max(sizes, key=sizes.get))  # the first stage has problems
        cases.append(Case((stages, sizes), label=f"random #{i + 1}"))

    def student(stage_levels, level_sizes):
        return [{int(k): float(v) for k, v in d.items() if v} for d in fn(list(stage_levels), dict(level_sizes))]

    def compare(expected, got):
        return len(expected) == len(got) and all(
            e.keys() == g.keys() and all(close(e[k], g[k]) for k in e) for e, g in zip(expected, got))

    hints = [(lambda s, z: reference_cumulative_shares(s, z, cumulative=False),
              "looks like the staged schedule: a cumulative stage also draws every earlier stage's levels"),
             (lambda s, z: reference_cumulative_shares(s, z, by="level"),
              "each level gets an equal share: the pool is drawn uniformly by *problem*, so a level's share is its "
              "size over the pool's size")]
    return run_check("cumulative_shares", student, reference_cumulative_shares, cases, compare, hints=hints)
