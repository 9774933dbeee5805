"""supersmall.checks.verdicts.grade_verdict: a written verdict passes only when it says what the evidence says."""

import json
import math

import pytest

from supersmall import report, stats
from supersmall.checks import grade_verdict

FIVE_UP = [0.20, 0.18, 0.25, 0.21, 0.22]
CROSS = [0.10, -0.05, 0.08, -0.12, 0.09]
NULL = [0.004, -0.006, 0.002, 0.0, 0.001]


def _row(diffs, direction=+1, family="paper claim", within_se=0.02, margin=None):
    return stats.decide(diffs, within_se=within_se, direction=direction, family=family, margin=margin)


ROWS = {
    "up": _row(FIVE_UP),
    "down": _row(FIVE_UP, direction=-1),
    "cross": _row(CROSS),
    "three": _row(FIVE_UP[:3]),
    "two": _row(FIVE_UP[:2]),
    "one": _row([0.3]),
    "exploratory": _row(FIVE_UP[:3], family="exploratory"),
    "exploratory down": _row(FIVE_UP, direction=-1, family="exploratory"),
    "absent": _row(NULL, within_se=0.005, margin=0.03),
    "holm": stats.adjust_family([_row([0.06, 0.03, 0.09, 0.04, 0.05], within_se=0.01)])[0],
}


def _said(row, verdict, mde=False, digits=1):
    """A verdict stated with the row's own interval (and MDE), in points, rounded to ``digits``."""
    lo, hi = (100 * x for x in row["interval"])
    return f"{verdict}: [{lo:+.{digits}f}, {hi:+.{digits}f}] points" + (f", MDE {100 * row['mde']:+.1f} points" if mde else "")


def test_the_rows_end_as_their_labels_say():
    assert ROWS["up"]["verdict"] == "supported" and ROWS["down"]["verdict"] == "contradicted"
    assert ROWS["cross"]["verdict"] == ROWS["two"]["verdict"] == ROWS["one"]["verdict"] == "inconclusive"
    assert ROWS["three"]["verdict"] == "supported" and ROWS["absent"]["verdict"] == "absent"
    assert ROWS["exploratory"]["verdict"] == "direction found (exploratory)"
    assert ROWS["exploratory down"]["verdict"] == "opposite direction found (exploratory)"
    holm = ROWS["holm"]
    assert holm["verdict"] == "inconclusive" and holm["p_value"] < 0.05 <= holm["p_adjusted"]


PASS = [
    ("the rule's word and interval", "up", lambda r: _said(r, "Supported"), True),
    ("contradicted, with the interval as a dict", "down",
     lambda r: {"verdict": "contradicted", "interval": r["interval"], "direction": -1}, False),
    ("inconclusive with its MDE", "cross", lambda r: _said(r, "inconclusive", mde=True), True),
    ("a negated wrong word, then the right one", "cross", lambda r: "not 'reproduced': inconclusive", False),
    ("never supported: inconclusive", "cross", lambda r: "never supported; inconclusive", False),
    ("an interval rounded to whole points", "up", lambda r: _said(r, "supported", digits=0), True),
    ("an exploratory direction", "exploratory", lambda r: _said(r, "direction found (exploratory)"), True),
    ("the opposite direction", "exploratory down", lambda r: _said(r, "opposite direction found"), True),
    ("absent inside the margin", "absent", lambda r: _said(r, "absent"), True),
    ("the right p, Holm-adjusted", "holm", lambda r: f"inconclusive (p = {r['p_adjusted']:.2f})", False),
    ("not significant is fine", "cross", lambda r: "inconclusive, not significant", False),
    ("significant, and it is", "up", lambda r: _said(r, "supported") + f" (significant, p = {r['p_value']:.1g})", False),
    ("a row read back from JSON", "one", lambda r: "inconclusive [-inf, +inf], MDE +inf", True),
]


@pytest.mark.parametrize(("label", "which", "statement", "strict"), PASS, ids=[p[0] for p in PASS])
def test_grade_verdict_passes(label, which, statement, strict):
    row = ROWS[which]
    if which == "one":
        row = json.loads(json.dumps(report._finite(row)))  # infinite ends and MDE written as null
    ok, feedback = grade_verdict(statement(row), row, strict=strict)
    assert ok, (label, feedback)
    assert feedback.startswith(f"right: {ROWS[which]['verdict']}")


FAIL = [
    ("inconclusive, yet 'no difference'", "cross", "inconclusive, but clearly it makes no difference",
     "does not say there is no effect"),
    ("'reproduced' on an exploratory row", "exploratory", "the paper's claim is reproduced",
     "'reproduced' is not a verdict"),
    ("'supported' on an exploratory row", "exploratory", "supported", "an exploratory comparison finds a direction"),
    ("an exploratory word on a paper claim", "up", "direction found (exploratory)", "a paper claim is"),
    ("'not reproduced' is not a word of the rule", "down", "not reproduced", "'reproduced' is not a verdict"),
    ("a stated p that is not the row's", "cross", "inconclusive (p = 0.059)", "the row's Holm-adjusted p is"),
    ("significant with p above 0.05", "holm", "inconclusive, but significant (p = {p})", "'significant' needs p"),
    ("no effect is not a verdict", "cross", "There is no effect of std scaling.", "'no effect' is not a verdict"),
    ("supported across zero", "cross", "supported", "an effect of either sign fits"),
    ("supported on 2 seeds", "two", "supported", f"the rule needs {stats.MIN_SEEDS}"),
    ("supported where Holm fails", "holm", "supported", "Holm-adjusted p ="),
    ("supported on one seed", "one", "supported", "1 seed(s) cannot decide"),
    ("the wrong side", "down", "supported", "write 'contradicted'"),
    ("understating the evidence", "up", "inconclusive, to be safe", "the evidence decides it"),
    ("inconclusive where the interval is inside the margin", "absent", "inconclusive", "write 'absent'"),
    ("the interval's sign flipped", "up", "supported [{neg_hi}, {neg_lo}]", "sign flipped"),
    ("a wrong interval", "up", "supported [+1.0, +2.0] points", "is not the row's"),
    ("an interval off by more than its rounding", "up", "supported [+15, +24]", "is not the row's"),
    ("the wrong direction", "up", {"verdict": "supported", "direction": -1}, "direction is +1"),
    ("no interval, strictly", "up", "supported", "state the interval"),
    ("no MDE for inconclusive, strictly", "cross", "inconclusive: {interval}", "state the MDE"),
    ("a wrong MDE", "cross", "inconclusive: {interval}, MDE 1.0 points", "is not the design's"),
    ("nothing", "up", None, "no verdict found"),
    ("no verdict word", "up", "it went up a bit", "no verdict found"),
    ("an empty dict", "up", {"verdict": None}, "no verdict found"),
]


@pytest.mark.parametrize(("label", "which", "statement", "feedback_has"), FAIL, ids=[f[0] for f in FAIL])
def test_grade_verdict_fails(label, which, statement, feedback_has):
    row = ROWS[which]
    if isinstance(statement, str):
        lo, hi = (100 * x for x in row["interval"])
        statement = statement.format(p=f"{row['p_adjusted']:.3g}", neg_lo=f"{-lo:+.1f}", neg_hi=f"{-hi:+.1f}",
                                     interval=report.interval_points(row["interval"]))
    strict = label.endswith("strictly")
    ok, feedback = grade_verdict(statement, row, strict=strict)
    assert not ok, (label, feedback)
    assert feedback_has in feedback, (label, feedback)


def test_grade_verdict_feedback_names_the_mde():
    ok, feedback = grade_verdict(_said(ROWS["cross"], "inconclusive", mde=True), ROWS["cross"], strict=True)
    assert ok and "could only have found effects of at least" in feedback and "(MDE)" in feedback
    ok, feedback = grade_verdict("inconclusive", ROWS["two"])
    assert ok and math.isinf(ROWS["two"]["mde"]) and "could not have detected any effect" in feedback
