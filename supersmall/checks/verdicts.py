"""Grading a verdict a student writes (notebook 09, the capstone): does the text say what the evidence says?

Course grading beside the checks; the verdict rule itself is :func:`supersmall.stats.decide`, the rows
:func:`supersmall.report.paired` writes. The words are the rule's (:data:`supersmall.stats.ALL_VERDICTS`): a
paper claim is "supported", "contradicted", "absent" or "inconclusive"; an exploratory comparison finds a
direction ("direction found (exploratory)") or not, and never "supports" or "reproduces" anything.
"""

from __future__ import annotations

import math
import re
from typing import Any

from supersmall import stats
from supersmall.report import as_points, interval_points

# A verdict word, its negation before it ("not 'reproduced'", "never supported") and what it means
_WORDS = [(r"opposite direction(?: found)?", stats.OPPOSITE), (r"direction found", stats.FOUND),
          (r"supported|supports", stats.SUPPORTED), (r"contradicted|contradicts", stats.CONTRADICTED),
          (r"inconclusive", stats.INCONCLUSIVE), (r"absent", stats.ABSENT),
          (r"(?:not |un)?reproduced|reproduces|did not reproduce|does not reproduce|failed to reproduce", "reproduced")]
_SAID = re.compile(r"\b(" + "|".join(f"(?:{w})" for w, _ in _WORDS) + r")\b")
_NEGATED = re.compile(r"\b(?:not|never|no longer|isn't|is not|n't)\W{0,3}$")
_NO_EFFECT = re.compile(r"\b(no (?:real |clear |significant )?(?:effect|difference)|makes? no difference|"
                        r"does(?:n't| not) matter|the same accuracy|(?:there is|has) no effect)\b")
_NUM = r"([+-]?(?:inf|\d+(?:\.\d*)?|\.\d+))"
_INTERVAL = re.compile(rf"\[\s*{_NUM}\s*,\s*{_NUM}\s*\]")
_MDE = re.compile(rf"\b(?:mde|minimum detectable effect|smallest detectable effect)\b\D{{0,20}}?{_NUM}")
_P = re.compile(r"\bp(?:[ -]?value)?\s*(?:\((?:holm|holm-adjusted|adjusted)\)\s*)?(=|<|<=|≈)\s*(\d*\.?\d+(?:e-?\d+)?)")
_SIGNIFICANT = re.compile(r"(?<!not )(?<!in)\bsignificant(?:ly)?\b")
_TOL = 0.001  # a stated interval or MDE with one decimal may be off by 0.1 points


def _meaning(word: str) -> str:
    return next(v for w, v in _WORDS if re.fullmatch(w, word))


def _decimals(number: str) -> int:
    return len(number.split(".")[1]) if "." in number else 0


def _read_statement(statement: str | dict[str, Any] | None) -> dict[str, Any]:
    """What a written verdict states: ``verdict`` (the first verdict word not negated), ``interval`` and ``mde``
    (fractions) with the tolerance their rounding allows, ``p`` (as written, with its tolerance),
    ``significant``, ``direction``, ``no_effect``. Text states numbers in points (as :func:`interval_points`
    prints them), a dict in fractions."""
    if statement is None:
        return {}
    said: dict[str, Any] = {"tol": _TOL, "p": None, "significant": False}
    if isinstance(statement, dict):
        text = str(statement.get("verdict") or "").lower()
        said.update({k: statement.get(k) for k in ("interval", "mde", "direction")})
    else:
        text = " ".join(str(statement)[:5000].lower().split())
        interval, mde, p = _INTERVAL.search(text), _MDE.search(text), _P.search(text)
        said["interval"] = [float(v) / 100 for v in interval.groups()] if interval else None
        if interval:  # an interval rounded to whole points is as right as one to a tenth
            said["tol"] = max(_TOL, 0.5 * 10 ** -min(_decimals(v) for v in interval.groups()) / 100 + 1e-9)
        said["mde"] = float(mde.group(1)) / 100 if mde else None
        if p:
            said["p"] = (p.group(1), float(p.group(2)), 0.5 * 10 ** -_decimals(p.group(2)) + 1e-12)
        said["significant"] = bool(_SIGNIFICANT.search(text))
    said["verdict"] = None
    for found in _SAID.finditer(text):
        if _NEGATED.search(text[:found.start()].rstrip("'\"‘’“” ")) or _NEGATED.search(text[:found.start()]):
            continue  # "not 'reproduced'", "never supported": what it is not
        said["verdict"] = _meaning(found.group(1))
        break
    said["no_effect"] = bool(_NO_EFFECT.search(text))
    return said


def _same(x: float, y: float, tol: float = _TOL) -> bool:
    return (x == y) if math.isinf(x) or math.isinf(y) else abs(x - y) <= tol


def _could_find(row: dict[str, Any]) -> str:
    """What the design could have detected (its MDE), in words."""
    if math.isfinite(row["mde"]):
        return f"with {row['n_seeds']} seeds the design could only have found effects of at least {as_points(row['mde'])} points (MDE)"
    return f"with {row['n_seeds']} seeds the design could not have detected any effect (MDE +inf: too few seeds)"


def _p_of(row: dict[str, Any]) -> float:
    """The p the row's verdict is decided on: Holm-adjusted for a paper claim, its own for an exploratory one."""
    return row["p_adjusted"] if row.get("family", "paper claim") == "paper claim" else row["p_value"]


def _why_inconclusive(row: dict[str, Any], said: str | None = None) -> str:
    """The first condition of the rule the row fails, as :func:`supersmall.stats.decide` checks them, told to
    someone who wrote ``said`` (a verdict, or None for "no effect")."""
    n, (lo, hi), direction = row["n_seeds"], row["interval"], row["direction"]
    if n < stats.MIN_SEEDS:
        return f"{n} seed(s) cannot decide a claim: the rule needs {stats.MIN_SEEDS}"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"with {n} seed(s) there is no interval: that is inconclusive"
    if stats.side(lo, hi, direction) == 0:
        if said in (stats.SUPPORTED, stats.FOUND, stats.CONTRADICTED, stats.OPPOSITE):
            return (f"the interval {interval_points(row['interval'])} points crosses zero: an effect of either sign "
                    "fits these seeds, so it is inconclusive")
        return (f"your interval crosses zero ({interval_points(row['interval'])} points): that is inconclusive, not "
                f"'no effect'; {_could_find(row)}")
    if row.get("family", "paper claim") == "paper claim":
        return (f"the interval is on one side of zero, but the Holm-adjusted p = {row['p_adjusted']:.3g} is not below "
                f"{stats.ALPHA} (the paper's claims are tested as one family)")
    return f"the interval is on one side of zero, but p = {row['p_value']:.3g} is not below {stats.ALPHA}"


def _words_for(row: dict[str, Any]) -> tuple[str, ...]:
    return stats.VERDICTS if row.get("family", "paper claim") == "paper claim" else stats.EXPLORATORY_VERDICTS


def grade_verdict(statement: str | dict[str, Any] | None, row: dict[str, Any], strict: bool = False) -> tuple[bool, str]:
    """Grade a written verdict against a decided row (:func:`paired` or :func:`supersmall.stats.decide`): is it
    the rule's verdict, in the rule's words for the row's family, and is what it states true? Returns
    ``(ok, feedback)``.

    ``statement``: text naming the verdict (the first verdict word that is not negated counts: "not
    'reproduced': inconclusive" says inconclusive), optionally with the interval across seeds as ``[lo, hi]``
    and the ``MDE x``, in points, rounded as you like (``[-6, +3]`` is right for ``[-5.6, +3.1]``), and a
    ``p = x`` that must be the row's (Holm-adjusted for a paper claim); "significant" needs p below 0.05; an
    inconclusive verdict that also says there is no effect is wrong (that is "absent", or unknown). Or a dict
    with ``verdict`` and optional ``interval``, ``mde`` (fractions) and ``direction``. ``strict``: the interval
    must be stated, and an inconclusive verdict must state its MDE (the smallest effect the design could have
    found)."""
    lo, hi = row["interval"]  # a row read back from JSON holds null for an infinite end (_finite)
    row = {**row, "interval": [-math.inf if lo is None else lo, math.inf if hi is None else hi],
           "mde": math.inf if row.get("mde") is None else row["mde"]}
    said, truth = _read_statement(statement), row["verdict"]
    shown = f"{interval_points(row['interval'])} points"
    words = _words_for(row)
    if said.get("verdict") == "reproduced":
        return False, (f"'reproduced' is not a verdict of the rule: write one of {', '.join(map(repr, words))} "
                       f"(the rule says {truth!r}: {row['reason']})")
    if not said.get("verdict"):
        if said.get("no_effect") and truth == stats.INCONCLUSIVE:
            return False, f"'no effect' is not a verdict: {_why_inconclusive(row)}"
        return False, (f"no verdict found: write one of {', '.join(map(repr, words))} "
                       f"(the rule says {truth!r}: {row['reason']})")
    if said["verdict"] not in words:
        return False, (f"{said['verdict']!r} is not a verdict for this row's family ({row.get('family')}): an "
                       f"exploratory comparison finds a direction, it does not decide a paper claim; the words are "
                       f"{', '.join(map(repr, words))}" if row.get("family") == "exploratory" else
                       f"{said['verdict']!r} is a verdict for the course's exploratory comparisons; a paper claim is "
                       f"{', '.join(map(repr, words))}")
    if said["verdict"] != truth:
        if truth == stats.INCONCLUSIVE:
            return False, f"you wrote {said['verdict']!r}, but {_why_inconclusive(row, said['verdict'])}"
        if truth == stats.ABSENT:
            return False, (f"the interval {shown} lies inside the stated margin of ±{100 * row['margin']:.1f} points: "
                           "the evidence says any effect is smaller than that, write 'absent'")
        if said["verdict"] in (stats.INCONCLUSIVE, stats.ABSENT):
            return False, (f"every condition of the rule holds (interval {shown} off zero, p = {_p_of(row):.3g}): "
                           f"the evidence decides it, write {truth!r}")
        side = "the claimed side" if truth in (stats.SUPPORTED, stats.FOUND) else "the other side"
        return False, (f"you wrote {said['verdict']!r}, but the interval {shown} lies on {side} of zero "
                       f"(the claim's direction is {row['direction']:+d}: b - a {'up' if row['direction'] > 0 else 'down'}): "
                       f"write {truth!r}")
    if truth == stats.INCONCLUSIVE and said.get("no_effect"):
        return False, (f"inconclusive means the evidence cannot tell; it does not say there is no effect "
                       f"({_could_find(row)}): drop 'no difference', or show the interval inside a margin ('absent')")
    if said.get("direction") is not None and said["direction"] != row["direction"]:
        return False, f"the claim's direction is {row['direction']:+d}, you read it as {said['direction']:+d}"
    stated = said.get("interval")
    if stated is not None:
        lo, hi = (float(v) for v in stated)
        tol = said.get("tol", _TOL)
        if not (_same(lo, row["interval"][0], tol) and _same(hi, row["interval"][1], tol)):
            flipped = _same(-hi, row["interval"][0], tol) and _same(-lo, row["interval"][1], tol)
            return False, (f"your interval {interval_points([lo, hi])} is not the row's {shown}"
                           + ("; it is the row's with the sign flipped: the difference is b - a" if flipped else ""))
    elif strict:
        return False, f"state the interval across seeds ({shown}): a verdict without its interval hides its precision"
    mde = said.get("mde")
    if mde is not None and not _same(float(mde), row["mde"]):
        return False, f"your MDE {as_points(float(mde))} points is not the design's {as_points(row['mde'])} points"
    if said.get("p") is not None:
        op, value, tol = said["p"]
        p = _p_of(row)
        ok = abs(p - value) <= tol if op in ("=", "≈") else p < value + tol
        if not ok:
            which = "Holm-adjusted p" if row.get("family", "paper claim") == "paper claim" else "p"
            return False, f"you wrote p {op} {value:g}, but the row's {which} is {p:.3g}"
    if said.get("significant") and not _p_of(row) < stats.ALPHA:
        return False, f"'significant' needs p below {stats.ALPHA}; the row's p is {_p_of(row):.3g}"
    if strict and truth == stats.INCONCLUSIVE and mde is None:
        return False, (f"inconclusive is an honest answer only with the smallest effect the design could have "
                       f"found: state the MDE ({as_points(row['mde'])} points)")
    note = f"; {_could_find(row)}" if truth == stats.INCONCLUSIVE else ""
    return True, f"right: {truth} ({row['reason']}; interval {shown}){note}"
