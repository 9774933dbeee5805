"""Grading a verdict a student writes (notebook 09, the capstone): does the text say what the evidence says?

Course grading beside the checks; the verdict rule itself is :func:`supersmall.stats.decide`, the rows
:func:`supersmall.report.paired` writes.
"""

from __future__ import annotations

import math
import re
from typing import Any

from supersmall import stats
from supersmall.report import as_points, interval_points

# A written verdict: its verdict word (the first one in the text), an interval "[a, b]" and an "MDE x", in points
_SAID = re.compile(r"\b(not reproduced|did not reproduce|does not reproduce|failed to reproduce|inconclusive|"
                   r"reproduced|reproduces)\b")
_NO_EFFECT = re.compile(r"\b(no (?:real |clear |significant )?(?:effect|difference)|makes? no difference|"
                        r"does(?:n't| not) matter|the same accuracy)\b")
_NUM = r"([+-]?(?:inf|\d+(?:\.\d*)?|\.\d+))"
_INTERVAL = re.compile(rf"\[\s*{_NUM}\s*,\s*{_NUM}\s*\]")
_MDE = re.compile(rf"\b(?:mde|minimum detectable effect|smallest detectable effect)\b\D{{0,20}}?{_NUM}")
_TOL = 0.001  # a stated interval or MDE may be rounded to 0.1 points


def _read_statement(statement: str | dict[str, Any] | None) -> dict[str, Any]:
    """What a written verdict states: ``verdict``, ``interval`` and ``mde`` (fractions), ``direction``,
    ``no_effect``. Text states numbers in points (as :func:`interval_points` prints them), a dict in fractions."""
    if statement is None:
        return {}
    if isinstance(statement, dict):
        text = str(statement.get("verdict") or "").lower()
        said = {k: statement.get(k) for k in ("interval", "mde", "direction")}
    else:
        text, said = str(statement)[:5000].lower(), {}
        interval, mde = _INTERVAL.search(text), _MDE.search(text)
        said["interval"] = [float(v) / 100 for v in interval.groups()] if interval else None
        said["mde"] = float(mde.group(1)) / 100 if mde else None
    found = _SAID.search(" ".join(text.split()))
    word = found.group(1) if found else None
    said["verdict"] = {"reproduces": "reproduced", "inconclusive": "inconclusive", "reproduced": "reproduced",
                       None: None}.get(word, "not reproduced")
    said["no_effect"] = bool(_NO_EFFECT.search(text))
    return said


def _same(x: float, y: float) -> bool:
    return (x == y) if math.isinf(x) or math.isinf(y) else abs(x - y) <= _TOL


def _could_find(row: dict[str, Any]) -> str:
    """What the design could have detected (its MDE), in words."""
    if math.isfinite(row["mde"]):
        return f"with {row['n_seeds']} seeds the design could only have found effects of at least {as_points(row['mde'])} points (MDE)"
    return f"with {row['n_seeds']} seeds the design could not have detected any effect (MDE +inf: too few seeds)"


def _why_inconclusive(row: dict[str, Any], said: str | None = None) -> str:
    """The first condition of the rule the row fails, as :func:`supersmall.stats.decide` checks them, told to
    someone who wrote ``said`` (a verdict, or None for "no effect")."""
    n, (lo, hi), direction = row["n_seeds"], row["interval"], row["direction"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"with {n} seed(s) there is no spread across seeds and so no interval: that is inconclusive"
    lo, hi = sorted((direction * lo, direction * hi))
    if lo <= 0 <= hi:
        if said == stats.VERDICTS[0]:
            return (f"the interval {interval_points(row['interval'])} points crosses zero: an effect of either sign "
                    "fits these seeds, so it is inconclusive")
        return (f"your interval crosses zero ({interval_points(row['interval'])} points): that is inconclusive, not "
                f"'no effect'; {_could_find(row)}")
    family = row.get("family", "paper claim")
    least = stats.MIN_SEEDS if family == "paper claim" else stats.EXPLORATORY_MIN_SEEDS
    if n < least:
        return (f"{n} seeds cannot reproduce a paper claim: needs {least}" if family == "paper claim" else
                f"{n} seeds cannot decide an exploratory claim: needs {least}")
    agree = int(row["seeds_same_sign"].split(" of ")[0]) if lo > 0 else row["seeds_against"]
    if agree != n:
        return (f"the interval is on one side of zero, but only {agree} of {n} seeds moved that way: the rule "
                "needs every seed")
    return (f"the interval is on one side of zero, but the Holm-adjusted p = {row['p_adjusted']:.3g} is not below "
            f"{stats.ALPHA} (the paper's claims are tested as one family)")


def grade_verdict(statement: str | dict[str, Any] | None, row: dict[str, Any], strict: bool = False) -> tuple[bool, str]:
    """Grade a written verdict against a decided row (:func:`paired` or :func:`supersmall.stats.decide`): is it
    the rule's verdict, and is what it states true? Returns ``(ok, feedback)``.

    ``statement``: text naming one of ``stats.VERDICTS`` (the first named counts), optionally with the interval
    across seeds as ``[lo, hi]`` and the ``MDE x``, both in points (e.g. ``"inconclusive: [-5.6, +3.1] points,
    MDE +inf points"``), or a dict with ``verdict`` and optional ``interval``, ``mde`` (fractions) and
    ``direction``. ``strict``: the interval must be stated, and an inconclusive verdict must state its MDE
    (the smallest effect the design could have found)."""
    lo, hi = row["interval"]  # a row read back from JSON holds null for an infinite end (_finite)
    row = {**row, "interval": [-math.inf if lo is None else lo, math.inf if hi is None else hi],
           "mde": math.inf if row.get("mde") is None else row["mde"]}
    said, truth = _read_statement(statement), row["verdict"]
    shown = f"{interval_points(row['interval'])} points"
    if not said.get("verdict"):
        if said.get("no_effect") and truth == stats.VERDICTS[2]:
            return False, f"'no effect' is not a verdict: {_why_inconclusive(row)}"
        return False, (f"no verdict found: write one of {', '.join(map(repr, stats.VERDICTS))} "
                       f"(the rule says {truth!r}: {row['reason']})")
    if said["verdict"] != truth:
        if truth == stats.VERDICTS[2]:
            return False, f"you wrote {said['verdict']!r}, but {_why_inconclusive(row, said['verdict'])}"
        if said["verdict"] == stats.VERDICTS[2]:
            agree = row["seeds_same_sign"] if truth == stats.VERDICTS[0] else f"{row['seeds_against']} of {row['n_seeds']}"
            return False, (f"every condition of the rule holds ({agree} seeds agree, interval {shown} off zero, "
                           f"p = {row['p_adjusted']:.3g}): the evidence decides it, write {truth!r}")
        side = "the claimed side" if truth == stats.VERDICTS[0] else "the other side"
        return False, (f"you wrote {said['verdict']!r}, but the interval {shown} lies on {side} of zero "
                       f"(the claim's direction is {row['direction']:+d}: b - a {'up' if row['direction'] > 0 else 'down'}): "
                       f"write {truth!r}")
    if said.get("direction") is not None and said["direction"] != row["direction"]:
        return False, f"the claim's direction is {row['direction']:+d}, you read it as {said['direction']:+d}"
    stated = said.get("interval")
    if stated is not None:
        lo, hi = (float(v) for v in stated)
        if not (_same(lo, row["interval"][0]) and _same(hi, row["interval"][1])):
            flipped = _same(-hi, row["interval"][0]) and _same(-lo, row["interval"][1])
            return False, (f"your interval {interval_points([lo, hi])} is not the row's {shown}"
                           + ("; it is the row's with the sign flipped: the difference is b - a" if flipped else ""))
    elif strict:
        return False, f"state the interval across seeds ({shown}): a verdict without its interval hides its precision"
    mde = said.get("mde")
    if mde is not None and not _same(float(mde), row["mde"]):
        return False, f"your MDE {as_points(float(mde))} points is not the design's {as_points(row['mde'])} points"
    if strict and truth == stats.VERDICTS[2] and mde is None:
        return False, (f"inconclusive is an honest answer only with the smallest effect the design could have "
                       f"found: state the MDE ({as_points(row['mde'])} points)")
    note = f"; {_could_find(row)}" if truth == stats.VERDICTS[2] else ""
    return True, f"right: {truth} ({row['reason']}; interval {shown}){note}"
