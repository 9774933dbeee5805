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
    assert ax.get_ylim() == (0, 100)  # percent
    assert ax.patches[0].get_height() == pytest.approx(50.0)
    plt.close("all")


def test_the_no_signal_panel_draws_the_split_and_the_alarm_names_it(capsys):
    hist = [{"step": i, "frac_reward_zero_std": 0.9, "frac_groups_all_correct": 0.1, "frac_groups_all_wrong": 0.8}
            for i in range(1, 4)]
    fig = plots.health(hist, show=False)
    lines = {ln.get_label(): ln.get_ydata().tolist() for ln in fig.axes[0].get_lines()}
    assert lines == {"all": [0.9] * 3, "all correct": [0.1] * 3, "all wrong": [0.8] * 3}
    assert any("10% of groups all correct (too easy), 80% all wrong (too hard)" in m for m in plots.alarms(hist))
    # a run logged before the split: one line, and the alarm without it
    fig = plots.health([{k: v for k, v in h.items() if k.startswith(("step", "frac_reward"))} for h in hist],
                       show=False)
    assert len(fig.axes[0].get_lines()) == 1 and fig.axes[0].get_legend() is None
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


def _labelled(axes) -> list[tuple[str, str]]:
    """(xlabel, ylabel) of every axes that draws something (an axis turned off draws nothing)."""
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in axes if ax.axison]


def test_every_axis_of_every_figure_has_a_label_with_its_unit():
    import pandas as pd

    from supersmall.curriculum import build_schedule

    hist = [{"step": i, **{k: 0.1 * i for k, _ in plots.PANELS}} for i in range(1, 6)]
    figures = {
        "health": plots.health(hist, show=False).axes,
        "accuracy_bars": [plots.accuracy_bars({"base": {"1": {"accuracy": 0.5, "ci_low": 0.4, "ci_high": 0.6}}})],
        "buckets": [plots.buckets([1.0, 2.4, 2.6])],
        "schedule": [plots.schedule(build_schedule([{"prompt": f"p{i}", "level": lv} for i, lv in enumerate([1, 2, 3] * 4)],
                                                   "1-3:3", "staged", prompts_per_step=4, seed=0))],
        "sensitivity": plots.sensitivity(pd.DataFrame([
            {"setting": "max_new_tokens", "value": v, "accuracy": 0.5, "ci_low": 0.4, "ci_high": 0.6,
             "truncated_fraction": 0.1} for v in (8, 64)]
            + [{"setting": "temperature", "value": 0.6, "accuracy": 0.5, "ci_low": 0.4, "ci_high": 0.6,
                "truncated_fraction": 0.0}])).axes,
        "paired_intervals": [plots.paired_intervals([{"claim": "x", "interval": [0.0, 0.1], "verdict": "inconclusive",
                                                      "per_seed": [{"difference": 0.05}]}])],
    }
    for name, axes in figures.items():
        labels = _labelled(axes)
        assert labels, name
        for xlabel, ylabel in labels:
            assert xlabel.strip() and ylabel.strip(), (name, xlabel, ylabel)
    assert all("step" in x for x, _ in _labelled(figures["health"]))
    assert "(tokens)" in plots.PANEL_UNITS["completion_length"] and "(tokens)" in figures["sensitivity"][0].get_xlabel()
    assert figures["accuracy_bars"][0].get_xlabel() == "level" and "%" in figures["accuracy_bars"][0].get_ylabel()
    assert "%" in figures["sensitivity"][0].get_ylabel()
    plt.close("all")


def test_accuracy_bars_name_subjects_and_take_an_explicit_xlabel():
    summary = {"addition": {"accuracy": 0.5, "ci_low": 0.4, "ci_high": 0.6}}
    assert plots.accuracy_bars({"m": summary}).get_xlabel() == "subject"
    assert plots.accuracy_bars({"m": summary}, xlabel="operation").get_xlabel() == "operation"
    plt.close("all")


def test_claim_labels_are_wrapped_never_cut_and_the_difference_axis_says_which_side_is_which():
    long = "no-kl beats kl-nopenalty at the kit's default coefficient, isolated reading, levels 1-3 only"
    rows = [{"claim": long, "interval": [0.01, 0.05], "verdict": "reproduced", "per_seed": [{"difference": 0.03}]},
            {"claim": "eq. 4 trains worse", "interval": [-0.02, 0.01], "verdict": "inconclusive", "per_seed": [],
             "a": "eq6", "b": "eq4"}]
    ax = plots.paired_intervals(rows, b="no-kl", a="each KL arm")
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert " ".join(ticks[0].split()) == f"{long} (reproduced)"  # every word kept, only line breaks added
    assert max(len(line) for t in ticks for line in t.split("\n")) <= plots.LABEL_WIDTH
    assert "b = eq4, a = eq6" in " ".join(ticks[1].split())
    assert "no-kl - each KL arm (points): right of 0 = no-kl better" in ax.get_xlabel()
    assert ax.get_ylabel()
    assert "right of 0 = b better" in plots.paired_intervals(rows).get_xlabel()  # the default names
    plt.close("all")
