"""The reward playground renders headless and its numbers are the rewards' own."""

import matplotlib

matplotlib.use("Agg")

from supersmall import widgets  # noqa: E402


def test_score_table_values():
    comps = ["<think>a</think>\\boxed{17}", "<think></think>\\boxed{15}", "\\boxed{17}"]
    df = widgets.score_table(comps, "17", lengths=[10, 10, 63], max_length=64)
    assert df["eq. 6 correct"].tolist() == [1.0, 0.0, 1.0]
    assert df["eq. 4 bipolar"].tolist() == [1.0, -1.0, 1.0]
    # eq. 7: only the completion past 95% of 64 tokens (63 > 60.8) is penalised
    assert df["eq. 7 length"].tolist() == [0.0, 0.0, -0.1]
    assert df["SuperSmall (6+7)"].tolist() == [1.0, 0.0, 0.9]
    assert df["tokens"].tolist() == [10, 10, 63]


def test_render_returns_figure_with_both_scales():
    df, fig = widgets.render("<think>x</think>\\boxed{17}", answer="17", length=5, max_length=64)
    assert len(df) == 1 + len(widgets.DEFAULT_GROUP)
    titles = [ax.get_title() for ax in fig.axes]
    assert any("'group'" in t for t in titles) and any("'none'" in t for t in titles)
    import matplotlib.pyplot as plt

    plt.close(fig)
