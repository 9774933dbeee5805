"""The reward playground (notebook 01): edit a completion and the reward parameters, see every reward
and the resulting group advantages. ``score_table`` and ``render`` are plain functions, so the same
figures appear when the notebook runs headless; ``playground()`` wraps them in ipywidgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DEFAULT_GROUP = [
    "<think>3*4=12;12+5=17</think>\\boxed{17}",
    "<think></think>\\boxed{15}",
    "<think>3*4=12</think>the answer is 17",
]


def score_table(completions: Sequence[str], answer: str, lengths: Sequence[int], max_length: int,
                threshold: float = 0.95, penalty: float = -0.1):
    """Every reward of the kit on each completion, as a DataFrame (rows = completions)."""
    import pandas as pd

    from supersmall import rewards

    n = len(completions)
    gold = [answer] * n
    ids = [[0] * k for k in lengths]
    table = {
        "eq. 4 bipolar": rewards.bipolar(completions, answer=gold),
        "eq. 6 correct": rewards.correctness(completions, answer=gold),
        "eq. 7 length": rewards.length_penalty(lengths, max_length, threshold, penalty),
        "SuperSmall (6+7)": rewards.supersmall_reward(completions, answer=gold, completion_ids=ids,
                                                      max_length=max_length, threshold=threshold, penalty=penalty),
        "Open-RS format": rewards.format_reward(completions),
        "Open-RS cosine": rewards.cosine_reward(completions, answer=gold, completion_ids=ids, max_length=max_length),
        "Small-Math-R1": rewards.structured_reward(completions, answer=gold, completion_ids=ids,
                                                   target_length=max_length),
    }
    df = pd.DataFrame(table)
    df.insert(0, "tokens", list(lengths))
    df.insert(0, "completion", [c if len(c) < 60 else c[:57] + "..." for c in completions])
    return df


def render(completion: str, answer: str = "17", length: int | None = None, max_length: int = 64,
           threshold: float = 0.95, penalty: float = -0.1, group: Sequence[str] = DEFAULT_GROUP):
    """Score ``completion`` inside a group and plot each reward's group advantages (mean and std scaled)."""
    import matplotlib.pyplot as plt

    from supersmall.advantages import group_advantages

    completions = [completion, *group]
    lengths = [length if length is not None else len(completion)] + [len(g) for g in group]
    df = score_table(completions, answer, lengths, max_length, threshold, penalty)
    names = ["eq. 4 bipolar", "eq. 6 correct", "SuperSmall (6+7)", "Open-RS cosine", "Small-Math-R1"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3))
    for ax, scale in zip(axes, ("group", "none")):
        for i, name in enumerate(names):
            adv = group_advantages(df[name].tolist(), len(completions), scale=scale)
            ax.bar([j + i * 0.15 for j in range(len(completions))], adv.tolist(), 0.15, label=name)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks([j + 0.3 for j in range(len(completions))], ["yours"] + [f"#{j + 1}" for j in range(len(group))])
        ax.set_title(f"group advantages, scale={scale!r}")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return df, fig


def playground(**defaults: Any):
    """Interactive version of :func:`render` (needs a live Jupyter kernel)."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    completion = w.Textarea(value=defaults.get("completion", "<think>3*4=12;12+5=17</think>\\boxed{17}"),
                            description="completion", layout=w.Layout(width="90%"))
    answer = w.Text(value=defaults.get("answer", "17"), description="gold")
    length = w.IntSlider(value=defaults.get("length", 20), min=1, max=200, description="tokens")
    max_length = w.IntSlider(value=defaults.get("max_length", 64), min=8, max=200, description="L_max")
    threshold = w.FloatSlider(value=0.95, min=0.5, max=1.0, step=0.01, description="threshold")
    penalty = w.FloatSlider(value=-0.1, min=-1.0, max=0.0, step=0.05, description="penalty")

    def update(completion, answer, length, max_length, threshold, penalty):
        df, fig = render(completion, answer, length, max_length, threshold, penalty)
        display(df)
        plt.show()

    out = w.interactive_output(update, {"completion": completion, "answer": answer, "length": length,
                                        "max_length": max_length, "threshold": threshold, "penalty": penalty})
    box = w.VBox([completion, w.HBox([answer, length, max_length]), w.HBox([threshold, penalty]), out])
    display(box)
    return box
