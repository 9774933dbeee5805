"""Checks for exercise 09, the capstone: plan the seeds from a pilot's spread, then write the verdict
that :func:`supersmall.checks.grade_verdict` grades."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from supersmall import report, stats
from supersmall.checks.core import Case, run_check
from supersmall.checks.verdicts import grade_verdict

EVIDENCE = ("mean", "interval", "n_seeds", "seeds_agree", "seeds_against", "p_value", "p_adjusted", "mde", "family",
            "direction", "margin")


def evidence(row: dict[str, Any]) -> dict[str, Any]:
    """What a verdict is written from: a decided row (:func:`supersmall.report.paired` or
    :func:`supersmall.stats.decide`) without its ``verdict`` and ``reason``."""
    return {k: row["mean_difference"] if k == "mean" and "mean" not in row else row.get(k) for k in EVIDENCE}


def check_seeds_needed(fn: Callable[[float, float], int | None]) -> bool:
    """``fn(sd, effect)`` -> the fewest seeds (2 to 50) whose minimum detectable effect
    (``stats.minimum_detectable_effect(n, sd)``: the whole rule's, 80% power) is at most ``effect``; None when no
    such count exists."""
    rng = random.Random(9)
    cases = [Case((0.02, 0.05), label="a pilot spread of 2 points, an effect of 5 points"),
             Case((0.02, 0.03), label="a smaller effect needs more seeds"),
             Case((0.01, 0.5), label="a huge effect: still the fewest seeds the rule can decide on"),
             Case((0.1, 0.001), label="an effect far below the spread: 50 seeds are not enough"),
             Case((0.0, 0.05), label="no spread: nothing to plan with"),
             Case((0.02, 0.0), label="an effect of zero is never detectable"),
             Case((0.02, -0.05), label="a negative effect: the size is what counts, and it must be positive")]
    for i in range(20):
        cases.append(Case((round(rng.uniform(0.005, 0.1), 4), round(rng.uniform(0.005, 0.2), 4)),
                          label=f"random #{i + 1}"))
    return run_check("seeds_needed", fn, report.seeds_needed, cases)


@dataclass(frozen=True)
class _Graded:
    """The row a written verdict is graded against, shown as its verdict, interval and MDE."""

    row: dict[str, Any]

    def __repr__(self) -> str:
        r = self.row
        return (f"a statement {grade_verdict.__name__} accepts: {r['verdict']} "
                f"{report.interval_points(r['interval'])} points, MDE {100 * r['mde']:+.1f} points ({r['reason']})")


def _rows() -> list[tuple[dict[str, Any], str]]:
    """Decided rows, each with a label: every way the rule can end, then seeded random ones."""
    five = [0.20, 0.18, 0.25, 0.21, 0.22]
    weak = stats.decide([0.06, 0.03, 0.09, 0.04, 0.05], within_se=0.01)  # p about 0.02 on its own
    family = stats.adjust_family([weak, *(stats.decide([0.1, -0.05, 0.08, -0.12, 0.09], within_se=0.02)
                                          for _ in range(3))])
    rows = [(stats.decide(five, within_se=0.02), "five seeds improve, as the claim says"),
            (stats.decide(five, within_se=0.02, direction=-1), "the claim says it drops, every seed improves"),
            (stats.decide([0.10, -0.05, 0.08, -0.12, 0.09], within_se=0.02), "the interval crosses zero"),
            (stats.decide(five[:3], within_se=0.02), "a paper claim on 3 seeds"),
            (stats.decide(five[:3], within_se=0.02, family="exploratory"), "an exploratory comparison on 3 seeds"),
            (stats.decide(five[:2], within_se=0.02), "2 seeds: too few for the rule"),
            (stats.decide([0.004, -0.006, 0.002, 0.0, 0.001], within_se=0.005, margin=0.03),
             "a precise null inside a stated margin of 3 points"),
            (stats.decide([0.30], within_se=0.02), "one seed: no interval"),
            (family[0], "off zero on its own, but Holm's p over the paper's 5 claims is too large")]
    rng = random.Random(19)
    for i in range(20):
        n = rng.randint(2, 8)
        mu, sd = rng.choice([-0.1, -0.02, 0.0, 0.03, 0.2]), rng.choice([0.01, 0.05, 0.1])
        rows.append((stats.decide([round(rng.gauss(mu, sd), 4) for _ in range(n)], within_se=rng.choice([0.0, 0.02]),
                                  direction=rng.choice([1, -1]), family=rng.choice(stats.FAMILIES),
                                  margin=rng.choice([None, 0.03])), f"random #{i + 1}"))
    return rows


def check_verdict_text(fn: Callable[[dict[str, Any]], str]) -> bool:
    """``fn(evidence)`` -> a written verdict (:func:`evidence`: a decided row without its verdict) that
    :func:`supersmall.checks.grade_verdict` accepts strictly: the rule's verdict, the interval across seeds in
    points, and for "inconclusive" the MDE, the smallest effect the design could have found."""
    decided = _rows()
    cases = [Case((evidence(r),), label=label) for r, label in decided]
    rows = {id(c.args[0]): r for c, (r, _) in zip(cases, decided)}  # each case's evidence -> its decided row

    def reference(ev: dict[str, Any]) -> _Graded:
        return _Graded(rows[id(ev)])

    def accepted(expected: _Graded, got: Any) -> bool:
        return isinstance(got, (str, dict)) and grade_verdict(got, expected.row, strict=True)[0]

    def feedback(expected: _Graded, got: Any) -> str:
        if not isinstance(got, (str, dict)):
            return f"return the verdict as text (a str), not {type(got).__name__}"
        return grade_verdict(got, expected.row, strict=True)[1]

    return run_check("verdict_text", fn, reference, cases, compare=accepted, explain=feedback)
