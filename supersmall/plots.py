"""Plots people would rather look at than read: the training health panel, and accuracy bars with intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PANELS = [
    ("reward", "reward mean"), ("reward_std", "reward std"), ("frac_reward_zero_std", "zero-std groups"),
    ("clipped_ratio", "truncated (clipped) ratio"), ("completion_length", "completion length"),
    ("reasoning_rate", "reasoning rate"), ("entropy", "entropy"), ("grad_norm", "grad norm"), ("kl", "KL"),
]


def alarms(history: Sequence[dict[str, Any]], beta: float = 0.0, max_completion_length: int | None = None) -> list[str]:
    """Plain-language warnings about a run's health, from its per-step metrics."""
    if not history:
        return ["no metrics logged yet"]
    tail = history[-max(1, len(history) // 5):]

    def mean(key: str) -> float | None:
        vals = [h[key] for h in tail if h.get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    out = []
    clipped = mean("clipped_ratio")
    if clipped is not None and clipped > 0.5:
        out.append(f"{clipped:.0%} of completions truncated: raise max_completion_length"
                   + (f" (now {max_completion_length})" if max_completion_length else ""))
    zero = mean("frac_reward_zero_std")
    if zero is not None and zero > 0.8:
        out.append(f"{zero:.0%} of groups have equal rewards (no learning signal): problems are too easy or too "
                   "hard for the model; change the data level or raise num_generations")
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

    if isinstance(history, str) or hasattr(history, "joinpath"):
        from supersmall.train import read_metrics

        history = read_metrics(history)
    panels = [(k, label) for k, label in PANELS if any(h.get(k) is not None for h in history)]
    cols = 3
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.4 * rows), squeeze=False)
    for ax, (key, label) in zip(axes.flat, panels):
        pts = [(h["step"], h[key]) for h in history if h.get(key) is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.5)
        ax.set_title(label, fontsize=10)
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


def accuracy_bars(groups: dict[str, dict[str, dict[str, float]]], title: str = "accuracy", ax=None,
                  paper: dict[str, float] | None = None):
    """Grouped bars with 95% intervals: ``groups = {"base": per_level_summary, "trained": ...}``.

    Each per-level summary maps a label to ``{"accuracy", "ci_low", "ci_high"}`` (as in
    ``EvalResult.summary["per_level"]``); ``paper`` adds the paper's numbers as markers.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    labels = sorted({k for g in groups.values() for k in g}, key=lambda x: (len(x), x))
    width = 0.8 / max(1, len(groups))
    for i, (name, g) in enumerate(groups.items()):
        xs = [j + i * width for j in range(len(labels))]
        acc = [g.get(lbl, {}).get("accuracy", float("nan")) for lbl in labels]
        lo = [a - g.get(lbl, {}).get("ci_low", a) for a, lbl in zip(acc, labels)]
        hi = [g.get(lbl, {}).get("ci_high", a) - a for a, lbl in zip(acc, labels)]
        ax.bar(xs, acc, width, yerr=[lo, hi], capsize=3, label=name)
    if paper:
        xs = [j + 0.4 - width / 2 for j in range(len(labels))]
        ax.scatter(xs, [paper.get(lbl, float("nan")) for lbl in labels], marker="D", color="k", zorder=3,
                   label="paper")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))], labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax
