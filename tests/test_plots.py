import matplotlib

matplotlib.use("Agg")

from supersmall import plots, widgets  # noqa: E402


def test_alarms_in_plain_language():
    hist = [{"step": i, "clipped_ratio": 0.92, "frac_reward_zero_std": 0.9, "loss": 0.0, "entropy": 0.5}
            for i in range(1, 11)]
    msgs = plots.alarms(hist, beta=0.0, max_completion_length=64)
    assert any("92% of completions truncated: raise max_completion_length (now 64)" in m for m in msgs)
    assert any("loss near 0 is expected" in m for m in msgs)
    assert any("KL not logged because beta = 0" in m for m in msgs)
    assert any("equal rewards" in m for m in msgs)
    healthy = [{"step": 1, "clipped_ratio": 0.0, "frac_reward_zero_std": 0.2, "loss": 0.3, "entropy": 0.5}]
    assert plots.alarms(healthy, beta=0.04) == []


def test_health_panel_and_bars_render():
    hist = [{"step": i, "reward": i / 10, "reward_std": 0.4, "entropy": 0.5, "grad_norm": 1.0} for i in range(1, 6)]
    fig = plots.health(hist, show=False)
    assert len([ax for ax in fig.axes if ax.has_data()]) == 4
    ax = plots.accuracy_bars({"base": {"1": {"accuracy": 0.5, "ci_low": 0.4, "ci_high": 0.6}}})
    assert ax.get_ylim() == (0, 1)


def test_reward_playground_renders_headless():
    df, fig = widgets.render("<think>3*4=12;12+5=17</think>\\boxed{17}", answer="17", length=20, max_length=64)
    assert df.loc[0, "eq. 6 correct"] == 1.0 and df.loc[2, "eq. 6 correct"] == 0.0
    assert len(fig.axes) == 2
