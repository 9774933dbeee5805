"""The capstone's checks (exercise 09): they pass a right answer and catch specific, plausible wrong ones
with the grader's targeted feedback."""

import math

import pytest

from supersmall import report, stats
from supersmall.checks import NOT_IMPLEMENTED, CheckFailed, check_seeds_needed, check_verdict_text
from supersmall.checks.capstone import EVIDENCE, _rows, evidence


def seeds_needed(sd, effect):
    """The solution notebook's answer: the fewest seeds whose MDE reaches the effect."""
    for n in range(2, 51):
        if stats.minimum_detectable_effect(n, sd) <= effect:
            return n
    return None


def _verdict(ev, ignore_holm=False, with_mde=True, paper_words=False):
    """The solution notebook's answer, with ways to get it wrong: ``ignore_holm`` (a paper claim's own p),
    ``with_mde=False`` (an inconclusive verdict that hides what it could have found) and ``paper_words``
    (an exploratory row in the paper's words)."""
    n, direction, (lo, hi) = ev["n_seeds"], ev["direction"], ev["interval"]
    paper = ev["family"] == "paper claim"
    p = ev["p_adjusted"] if paper and not ignore_holm else ev["p_value"]
    found, opposite = ("supported", "contradicted") if paper or paper_words else (stats.FOUND, stats.OPPOSITE)
    if n < stats.MIN_SEEDS or not (math.isfinite(lo) and math.isfinite(hi)):
        verdict = "inconclusive"
    elif ev["margin"] is not None and -ev["margin"] < lo and hi < ev["margin"]:
        verdict = "absent"
    elif p < stats.ALPHA:
        verdict = found if direction * ev["mean"] > 0 else opposite
    else:
        verdict = "inconclusive"
    text = f"{verdict}: 95% interval {report.interval_points(ev['interval'])} points over {n} seeds"
    return text + (f", MDE {100 * ev['mde']:+.1f} points" if verdict == "inconclusive" and with_mde else "")


def test_seeds_needed_check_passes_the_library_and_a_loop(capsys):
    assert check_seeds_needed(report.seeds_needed)
    assert check_seeds_needed(seeds_needed)
    assert "passed" in capsys.readouterr().out


def test_seeds_needed_check_catches_off_by_one_and_a_missing_none():
    with pytest.raises(CheckFailed, match="seeds_needed"):
        check_seeds_needed(lambda sd, effect: (seeds_needed(sd, effect) or 0) + 1 or None)
    with pytest.raises(CheckFailed, match="50 seeds are not enough"):
        check_seeds_needed(lambda sd, effect: seeds_needed(sd, effect) or 50)


def test_verdict_text_check_passes_a_right_statement(capsys):
    assert check_verdict_text(_verdict)
    assert "passed" in capsys.readouterr().out


def test_verdict_text_check_gives_the_graders_feedback():
    with pytest.raises(CheckFailed, match="every condition of the rule holds"):
        check_verdict_text(lambda ev: f"inconclusive {report.interval_points(ev['interval'])}, MDE {100 * ev['mde']:+.1f}")
    with pytest.raises(CheckFailed, match="Holm-adjusted p"):
        check_verdict_text(lambda ev: _verdict(ev, ignore_holm=True))
    with pytest.raises(CheckFailed, match="exploratory comparison finds a direction"):
        check_verdict_text(lambda ev: _verdict(ev, paper_words=True))
    with pytest.raises(CheckFailed, match="state the MDE"):
        check_verdict_text(lambda ev: _verdict(ev, with_mde=False))
    with pytest.raises(CheckFailed, match="return the verdict as text"):
        check_verdict_text(lambda ev: 3)


def test_stubs_report_not_implemented(capsys):
    def stub(*args):
        raise NotImplementedError

    assert check_verdict_text(stub) is False and check_seeds_needed(stub) is False
    assert NOT_IMPLEMENTED in capsys.readouterr().out


def test_the_checked_rows_reach_every_ending_of_the_rule():
    rows = [r for r, _ in _rows()]
    assert {r["verdict"] for r in rows} == set(stats.ALL_VERDICTS)
    holm = next(r for r, label in _rows() if "Holm" in label)
    assert holm["p_value"] < stats.ALPHA <= holm["p_adjusted"] and holm["verdict"] == "inconclusive"
    assert any(math.isinf(r["interval"][1]) for r in rows)


def test_evidence_hides_the_verdict_and_reads_paired_rows():
    row = stats.decide([0.2, 0.18, 0.25, 0.21, 0.22], within_se=0.02)
    ev = evidence(row)
    assert set(ev) == set(EVIDENCE) and "verdict" not in ev and "reason" not in ev
    paired_row = {**{k: v for k, v in row.items() if k != "mean"}, "mean_difference": 0.5}
    assert evidence(paired_row)["mean"] == 0.5
