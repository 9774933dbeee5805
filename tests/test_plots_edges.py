"""Every figure survives the numbers another machine can produce: 0%, 100%, n = 1, an empty level, identical
seeds, infinite intervals (property-based, hypothesis). Last round a perfect level-1 score crashed notebook 05:
Wilson's upper end was 0.9999999999999999 under an accuracy of 1.0 and matplotlib refused the negative bar."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402

from supersmall import plots, stats  # noqa: E402

counts = st.integers(min_value=0, max_value=600).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


def _level(k: int, n: int) -> dict[str, float]:
    lo, hi = stats.wilson_interval(k, n)
    return {"accuracy": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi, "n": n}


@pytest.mark.parametrize("n", [1, 43, 90, 100, 105, 128, 134, 500])
def test_a_perfect_and_a_zero_score_draw_at_every_level_size(n):
    """MATH-500's level sizes and the tiny split's: the cases that crashed, drawn for real."""
    groups = {"trained": {"1": _level(n, n), "2": _level(0, n)}, "base": {"1": _level(1, n)}}
    ax = plots.accuracy_bars(groups, title="edge")
    assert ax.get_ylabel()
    plt.close("all")


@settings(max_examples=150, deadline=None)
@given(counts)
def test_wilson_contains_its_estimate_and_is_exact_at_the_edges(kn):
    k, n = kn
    lo, hi = stats.wilson_interval(k, n)
    assert 0.0 <= lo <= hi <= 1.0
    if n:
        assert lo <= k / n <= hi
        assert (lo == 0.0) == (k == 0) and (hi == 1.0) == (k == n)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(*[st.floats(-2, 2) | st.just(math.nan) for _ in range(3)]), max_size=8))
def test_error_bars_are_never_negative(triples):
    values, lows, highs = (list(t) for t in zip(*triples)) if triples else ([], [], [])
    below, above = plots.error_bars(values, lows, highs)
    assert len(below) == len(above) == len(values)
    assert all(x >= 0 and not math.isnan(x) for x in below + above)


@settings(max_examples=25, deadline=None)
@given(st.lists(counts, min_size=1, max_size=5))
def test_accuracy_bars_draw_any_counts_including_empty_levels(levels):
    groups = {"model": {str(i + 1): _level(k, n) for i, (k, n) in enumerate(levels)}, "empty": {}}
    ax = plots.accuracy_bars(groups)
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(i + 1) for i in range(len(levels))]
    model, empty = (c for c in ax.containers if isinstance(c, BarContainer))  # one container per group
    bars = model  # one bar per level, at its accuracy in percent
    heights = [b.get_height() for b in bars]
    assert heights == pytest.approx([100 * k / n if n else math.nan for k, n in levels], nan_ok=True)
    tops = {round(b.get_x() + b.get_width() / 2, 6): b.get_height() for b in bars}
    spans = {round(seg[0][0], 6): sorted(seg[:, 1]) for seg in bars.errorbar.lines[2][0].get_segments()
             if len(seg) == 2}
    assert set(spans) == {x for x, h in tops.items() if not math.isnan(h)}  # an error bar on every drawn bar
    for x, (low, high) in spans.items():  # spanning the bar's top, inside the axis
        assert 0 <= low <= tops[x] + 1e-9 and tops[x] - 1e-9 <= high <= 100
    assert all(math.isnan(b.get_height()) for b in empty)  # the empty group draws no bar
    plt.close("all")


def test_paired_intervals_draw_identical_seeds_one_seed_and_infinite_intervals():
    rows = [{"claim": "identical seeds", "interval": [0.002, 0.002], "verdict": "inconclusive",
             "per_seed": [{"difference": 0.002}] * 3},
            {"claim": "one seed", "interval": [-math.inf, math.inf], "verdict": "inconclusive",
             "per_seed": [{"difference": 0.1}]},
            {"claim": "no seeds", "interval": [math.nan, math.nan], "verdict": "inconclusive", "per_seed": []}]
    ax = plots.paired_intervals(rows)
    assert len(ax.get_yticks()) == 3
    intervals = [line.get_xdata() for line in ax.lines[:3]]
    assert list(intervals[0]) == pytest.approx([0.2, 0.2]) and list(intervals[1]) == [-100, 100]  # cut to +-100 points
    assert [len(c.get_offsets()) for c in ax.collections] == [3, 1, 0]  # per-seed dots
    plt.close("all")


def test_sensitivity_survives_perfect_and_zero_accuracy():
    rows = [{"setting": "budget", "value": v, **_level(k, 10), "truncated_fraction": t}
            for v, k, t in ((6, 0, 1.0), (48, 10, 0.0))]
    fig = plots.sensitivity(pd.DataFrame(rows))
    (ax,) = fig.axes
    accuracy, truncated = ax.lines[0], ax.lines[-1]
    assert list(accuracy.get_ydata()) == [0, 100] and list(truncated.get_ydata()) == [100, 0]
    assert ax.get_ylim() == (0, 100)
    plt.close("all")
