import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from supersmall import plots, runcard, trl_args, widgets  # noqa: E402


def test_alarms_in_plain_language():
    hist = [{"step": i, "truncated_fraction": 0.92, "frac_reward_zero_std": 0.9, "loss": 0.0, "entropy": 0.5}
            for i in range(1, 11)]
    msgs = plots.alarms(hist, beta=0.0, max_completion_length=64)
    assert any("92% of completions truncated: raise max_completion_length (now 64)" in m for m in msgs)
    assert any("loss near 0 is expected" in m for m in msgs)
    assert any("KL not logged because beta = 0" in m for m in msgs)
    assert any("equal rewards" in m for m in msgs)
    healthy = [{"step": 1, "truncated_fraction": 0.0, "frac_reward_zero_std": 0.2, "loss": 0.3, "entropy": 0.5}]
    assert plots.alarms(healthy, beta=0.04) == []
    assert plots.alarms([]) == ["no metrics logged yet"]
    collapsed = [{"step": 1, "entropy": 0.01}]
    assert any("entropy 0.010" in m and "collapsed" in m for m in plots.alarms(collapsed, beta=0.04))
    # the alarms read the kit's name of TRL's completions/clipped_ratio (a rename must not silence them)
    assert trl_args.TRL_METRICS["completions/clipped_ratio"] == "truncated_fraction"
    assert "truncated_fraction" in dict(plots.PANELS)


def test_health_panel_and_bars_render():
    hist = [{"step": i, "reward": i / 10, "reward_std": 0.4, "entropy": 0.5, "grad_norm": 1.0} for i in range(1, 6)]
    fig = plots.health(hist, show=False)
    assert len([ax for ax in fig.axes if ax.has_data()]) == 4
    ax = plots.accuracy_bars({"base": {"1": {"accuracy": 0.5, "ci_low": 0.4, "ci_high": 0.6}}})
    assert ax.get_ylim() == (0, 1)
    plt.close("all")


def test_health_reads_a_run_folder(tmp_path, capsys):
    for i in range(1, 4):
        runcard.append_metrics(tmp_path, i, {"reward": i / 10, "truncated_fraction": 0.9, "kl": float("nan")})
    assert [h["kl"] for h in runcard.read_metrics(tmp_path)] == [None] * 3  # NaN is written as null
    fig = plots.health(str(tmp_path), beta=0.04, max_completion_length=48, show=False)
    assert [ax.get_title() for ax in fig.axes if ax.has_data()] == ["reward mean", "truncated completions"]
    line = [ax for ax in fig.axes if ax.get_title() == "reward mean"][0].get_lines()[0]
    assert list(line.get_xdata()) == [1, 2, 3] and list(line.get_ydata()) == pytest.approx([0.1, 0.2, 0.3])
    assert "90% of completions truncated: raise max_completion_length (now 48)" in capsys.readouterr().out
    assert runcard.read_metrics(tmp_path / "missing") == []
    plt.close("all")


def test_live_health_redraws_every_n_steps_and_at_the_end(monkeypatch):
    import IPython.display

    drawn = []
    monkeypatch.setattr(IPython.display, "display", lambda fig: drawn.append(fig._suptitle.get_text()))
    monkeypatch.setattr(IPython.display, "clear_output", lambda wait=False: None)
    live = plots.LiveHealth(every=5, title="run")
    for step in range(1, 13):
        live(step, {"reward": step / 12, "entropy": 0.5}, 12)
    assert drawn == ["run: step 5 of 12", "run: step 10 of 12", "run: step 12 of 12"]
    assert [h["step"] for h in live.history] == list(range(1, 13)) and live.history[-1]["reward"] == 1.0
    assert plt.get_fignums() == []  # each figure is closed after it is shown


def test_reward_playground_renders_headless():
    df, fig = widgets.render("<think>3*4=12;12+5=17</think>\\boxed{17}", answer="17", length=20, max_length=64)
    assert df.loc[0, "eq. 6 correct"] == 1.0 and df.loc[2, "eq. 6 correct"] == 0.0
    assert len(fig.axes) == 2
