"""Every figure of the kit: the training health panel (also live, as a training callback), accuracy bars
with intervals, curriculum buckets and schedules, evaluation-settings sweeps. The run layer returns
numbers; this module draws them."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from supersmall.curriculum import CurriculumPlan, bucket_table
from supersmall.runcard import read_metrics

PANELS = [
    ("reward", "reward mean"), ("reward_std", "reward std"), ("frac_reward_zero_std", "zero-std groups"),
    ("truncated_fraction", "truncated completions"), ("completion_length", "completion length"),
    ("reasoning_rate", "reasoning rate"), ("entropy", "entropy"), ("grad_norm", "grad norm"), ("kl", "KL"),
]
# the y-axis label (with its unit) of each health panel; the x axis is always the training step
PANEL_UNITS = {
    "reward": "reward per completion", "reward_std": "reward std within a group",
    "frac_reward_zero_std": "groups with equal rewards (fraction)",
    "truncated_fraction": "completions truncated (fraction)", "completion_length": "completion length (tokens)",
    "reasoning_rate": "completions with a non-empty <think> (fraction)", "entropy": "entropy (nats per token)",
    "grad_norm": "gradient L2 norm (before clipping)", "kl": "KL (nats per token)",
}
# lines drawn in a panel beside its metric: the no-signal share split by outcome (advantages.outcome_split)
OVERLAYS = {"frac_reward_zero_std": [("frac_groups_all_correct", "all correct"), ("frac_groups_all_wrong", "all wrong")]}
LABEL_WIDTH = 44  # characters per line of a wrapped tick label (claims are wrapped, never cut)


def wrap(text: str, width: int = LABEL_WIDTH) -> str:
    """A long label on several lines (whole words), never cut: ``textwrap.fill``."""
    return textwrap.fill(str(text), width=width, break_long_words=False, break_on_hyphens=False)


def alarms(history: Sequence[dict[str, Any]], beta: float = 0.0, max_completion_length: int | None = None) -> list[str]:
    """Plain-language warnings about a run's health, from its per-step metrics."""
    if not history:
        return ["no metrics logged yet"]
    tail = history[-max(1, len(history) // 5):]

    def mean(key: str) -> float | None:
        vals = [h[key] for h in tail if h.get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    out = []
    truncated = mean("truncated_fraction")
    if truncated is not None and truncated > 0.5:
        out.append(f"{truncated:.0%} of completions truncated: raise max_completion_length"
                   + (f" (now {max_completion_length})" if max_completion_length else ""))
    zero = mean("frac_reward_zero_std")
    if zero is not None and zero > 0.8:
        solved, failed = mean("frac_groups_all_correct"), mean("frac_groups_all_wrong")
        why = ("too easy or too hard for the model" if solved is None or failed is None else
               f"{solved:.0%} of groups all correct (too easy), {failed:.0%} all wrong (too hard)")
        out.append(f"{zero:.0%} of groups have equal rewards (no learning signal): problems are {why}; change the "
                   "data level or raise num_generations")
    loss = mean("loss")
    if loss is not None and abs(loss) < 1e-3:
        out.append("loss near 0 is expected with one update per batch (advantages average to zero): watch the "
                   "reward, not the loss")
    if beta == 0:
        out.append("KL not logged because beta = 0 (ZeroGRPO: no reference model)")
    entropy = mean("entropy")
    if entropy is not None and entropy < 0.05:
        out.append(f"entropy {entropy:.3f}: the policy has nearly collapsed; exploration is gone")
    return out


def health(history: Sequence[dict[str, Any]] | str, beta: float = 0.0, max_completion_length: int | None = None,
           title: str = "training health", show: bool = True):
    """The health panel: one small plot per metric against steps, and the alarms printed below.

    ``history`` is a list of per-step dicts or a run folder (its ``metrics.jsonl``).
    """
    import matplotlib.pyplot as plt

    if isinstance(history, (str, Path)):
        history = read_metrics(history)
    panels = [(k, label) for k, label in PANELS if any(h.get(k) is not None for h in history)]
    cols = 3
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.8 * rows), squeeze=False)
    for ax, (key, label) in zip(axes.flat, panels):
        pts = [(h["step"], h[key]) for h in history if h.get(key) is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.5, label="all" if key in OVERLAYS else None)
        for extra, extra_label in OVERLAYS.get(key, []):  # the share split: lines beside it, when logged
            pts = [(h["step"], h[extra]) for h in history if h.get(extra) is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1, ls="--", label=extra_label)
        if ax.get_legend_handles_labels()[0][1:]:
            ax.legend(fontsize=7)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("training step", fontsize=8), ax.set_ylabel(PANEL_UNITS.get(key, label), fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    for line in alarms(history, beta, max_completion_length):
        print("!", line)
    if show:
        plt.show()
    return fig


def error_bars(values: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> tuple[list[float], list[float]]:
    """Matplotlib's ``yerr`` (distances below and above each value) from interval ends, clipped at zero.

    A rounding error can leave an interval end a hair on the wrong side of its estimate (an upper end
    of 0.9999999999999999 under an accuracy of 1.0); matplotlib refuses a negative error bar, so every
    distance is clipped at 0, and a missing value (NaN) draws no bar.
    """
    def clip(x: float) -> float:
        return 0.0 if x != x or x < 0 else float(x)

    return ([clip(v - lo) for v, lo in zip(values, lows)], [clip(hi - v) for v, hi in zip(values, highs)])


def accuracy_bars(groups: dict[str, dict[str, dict[str, float]]], title: str = "accuracy", ax=None,
                  paper: dict[str, float] | None = None, xlabel: str | None = None):
    """Grouped bars with 95% intervals, in percent: ``groups = {"base": per_level_summary, "trained": ...}``.

    Each per-level summary maps a label to ``{"accuracy", "ci_low", "ci_high"}`` as fractions (as in
    ``Evaluation.summary["per_level"]``); ``paper`` adds the paper's numbers (fractions) as markers.
    ``xlabel`` defaults to "level" when every label is a number, else "subject".
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    labels = sorted({k for g in groups.values() for k in g}, key=lambda x: (len(x), x))
    width = 0.8 / max(1, len(groups))
    for i, (name, g) in enumerate(groups.items()):
        xs = [j + i * width for j in range(len(labels))]
        acc = [g.get(lbl, {}).get("accuracy", float("nan")) for lbl in labels]
        lo, hi = error_bars(acc, [g.get(lbl, {}).get("ci_low", a) for a, lbl in zip(acc, labels)],
                            [g.get(lbl, {}).get("ci_high", a) for a, lbl in zip(acc, labels)])
        ax.bar(xs, [100 * a for a in acc], width, yerr=[[100 * x for x in lo], [100 * x for x in hi]], capsize=3,
               label=name)
    if paper:
        xs = [j + 0.4 - width / 2 for j in range(len(labels))]
        ax.scatter(xs, [100 * paper.get(lbl, float("nan")) for lbl in labels], marker="D", color="k", zorder=3,
                   label="paper")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))], labels)
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%), Wilson 95% CI")
    ax.set_xlabel(xlabel or ("level" if all(str(lbl).isdigit() for lbl in labels) else "subject"))
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


class LiveHealth:
    """A training callback that redraws the health panel every ``every`` steps in a notebook cell::

        train("tiny", out_dir="runs/t", callbacks=[plots.LiveHealth(every=10)])
    """

    def __init__(self, every: int = 10, beta: float = 0.0, max_completion_length: int | None = None,
                 title: str = "training health") -> None:
        self.every, self.beta, self.max_len, self.title = every, beta, max_completion_length, title
        self.history: list[dict[str, Any]] = []

    def __call__(self, step: int, metrics: dict[str, Any], total: int | None = None) -> None:
        self.history.append({"step": step, **metrics})
        if step % self.every and step != total:
            return
        import matplotlib.pyplot as plt
        from IPython.display import clear_output, display

        clear_output(wait=True)
        fig = health(self.history, beta=self.beta, show=False, max_completion_length=self.max_len,
                     title=f"{self.title}: step {step}" + (f" of {total}" if total else ""))
        display(fig)
        plt.close(fig)


def buckets(difficulties: Sequence[float], ax=None, title: str = "difficulty buckets"):
    """Bucket sizes of a float difficulty under both schemes (``round`` half-up and ``floor``), side by side."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    r, f = bucket_table(difficulties, "round"), bucket_table(difficulties, "floor")
    levels = sorted(set(r) | set(f))
    ax.bar([x - 0.2 for x in levels], [r.get(x, 0) for x in levels], 0.4, label="round (half-up)")
    ax.bar([x + 0.2 for x in levels], [f.get(x, 0) for x in levels], 0.4, label="floor")
    ax.set_xlabel("difficulty level"), ax.set_ylabel("problems (count)"), ax.set_title(title), ax.legend()
    return ax


def schedule(plan: CurriculumPlan, ax=None, level_key: str = "level"):
    """Which levels each step trains on: a scatter of step vs level, stage boundaries as dashed lines."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.6))
    k = plan.prompts_per_step
    xs = [i // k + random.Random(i).uniform(-0.4, 0.4) for i in range(len(plan.rows))]
    ys = [r.get(level_key) + random.Random(-i).uniform(-0.25, 0.25) for i, r in enumerate(plan.rows)]
    ax.scatter(xs, ys, s=2, alpha=0.4)
    for _, start, _ in plan.boundaries[1:]:
        ax.axvline(start, color="k", lw=1, ls="--")
    ax.set_xlabel("training step"), ax.set_ylabel("difficulty level of each prompt"), ax.set_title(f"{plan.schedule} schedule")
    return ax


SETTING_UNITS = {"max_new_tokens": "tokens", "budget": "tokens", "temperature": "sampling temperature",
                 "top_p": "nucleus mass"}


def setting_label(key: str) -> str:
    """The x-axis label of a swept setting, with its unit where the kit knows it: ``max_new_tokens (tokens)``."""
    unit = next((u for k, u in SETTING_UNITS.items() if k in key), None)
    return f"{key} ({unit})" if unit and f"({unit})" not in key else key


def sensitivity(df, title: str = "evaluation-settings sensitivity"):
    """One panel per setting of a sweep (``evaluate.sensitivity``): accuracy with 95% intervals and the
    truncated share, both in percent of the problems (one unit on the axis)."""
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(df["setting"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(4.5 * len(settings), 3), squeeze=False)
    for ax, key in zip(axes[0], settings):
        g = df[df["setting"] == key]
        xs = list(range(len(g)))
        below, above = error_bars(list(g["accuracy"]), list(g["ci_low"]), list(g["ci_high"]))
        ax.errorbar(xs, [100 * a for a in g["accuracy"]], yerr=[[100 * x for x in below], [100 * x for x in above]],
                    fmt="o-", capsize=3, label="accuracy (95% CI)")
        ax.plot(xs, [100 * t for t in g["truncated_fraction"]], "s--", alpha=0.6, label="truncated")
        ax.set_xticks(xs, [str(v) for v in g["value"]])
        ax.set_xlabel(wrap(setting_label(key))), ax.set_ylabel("% of problems"), ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def claim_label(row: dict[str, Any], width: int = LABEL_WIDTH) -> str:
    """A claim's tick label: the whole claim, wrapped (never cut), its verdict, and which side is which when
    the row names them (``b`` and ``a``: the difference is b - a)."""
    sides = f" [b = {row['b']}, a = {row['a']}]" if row.get("a") and row.get("b") else ""
    return wrap(f"{row['claim']}{sides} ({row['verdict']})", width)


def paired_intervals(rows: Sequence[dict[str, Any]], title: str = "paired differences across seeds", ax=None,
                     b: str = "b", a: str = "a"):
    """One line per claim: the per-seed paired differences b - a (dots) and the across-seed interval (bar).

    ``rows`` are :func:`supersmall.report.claims` rows (``claim``, ``interval``, ``per_seed``, ``verdict``;
    optional ``a`` / ``b`` name the two sides of that row). ``b`` / ``a`` name the sides in the x-axis label
    (``b - a (points): right = <b> better``) when every row compares the same two.
    """
    import matplotlib.pyplot as plt

    labels = [claim_label(r) for r in rows]
    lines = sum(label.count("\n") + 1 for label in labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.8 + 0.25 * lines + 0.3 * len(rows)))
    colours = {"supported": "tab:green", "direction found (exploratory)": "tab:green", "contradicted": "tab:red",
               "opposite direction found (exploratory)": "tab:red", "inconclusive": "tab:gray", "absent": "tab:blue"}
    for y, row in enumerate(rows):
        lo, hi = row["interval"]
        finite_lo, finite_hi = max(lo, -1.0), min(hi, 1.0)
        ax.plot([100 * finite_lo, 100 * finite_hi], [y, y], lw=6, alpha=0.4, color=colours.get(row["verdict"], "k"))
        ax.scatter([100 * s["difference"] for s in row.get("per_seed", [])], [y] * len(row.get("per_seed", [])),
                   color="k", s=12, zorder=3)
    ax.axvline(0, color="k", lw=1)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("claim (verdict)")
    ax.set_xlabel(f"{b} - {a} (points): right of 0 = {b} better\n"
                  "dots: per-seed paired differences; bar: 95% interval across seeds")
    ax.set_title(title)
    return ax
