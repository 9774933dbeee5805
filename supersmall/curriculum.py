"""Easy-to-hard curriculum: DeepMath difficulty -> levels, and schedules over stages.

SuperSmall-R1 trains on DeepMath-103K "Level 1-3", then "Level 4", then "Level 5" (Sec. 4.4). The
paper does not say how DeepMath's float difficulty (about 3 to 9) maps to a level; the kit offers
``round`` (half-up: 3.5 -> 4, *not* Python's round-half-even) and ``floor``, default ``round``, and
always prints the bucket sizes.

Schedules over stages such as ``"1-3:100,4:100,5:100"`` (levels:steps):

    staged      only the current stage's levels (the paper)
    cumulative  the current stage mixed with every earlier one
    shuffled    the same problems as ``staged``, in random order (no curriculum, same data)
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

SCHEMES = ("round", "floor")
SCHEDULES = ("staged", "cumulative", "shuffled")

# The paper's stages, from supersmall/profiles/presets/paper_runs.yaml. level5.5 and level6 appear
# only as run names in the paper; their levels are the kit's reading, marked as a choice there
# (level5.5 = levels 5 and 6 mixed, level6 = level 6; the tiny task has no level 6).
def _presets() -> dict[str, tuple[int, ...]]:
    from supersmall.config import paper_runs

    return {name: tuple(s["levels"]) for name, s in paper_runs()["stages"].items()}


PRESETS: dict[str, tuple[int, ...]] = _presets()


def difficulty_level(d: float, scheme: str = "round") -> int:
    """Level of a DeepMath difficulty: ``round`` half-up (3.5 -> 4, 2.5 -> 3) or ``floor`` (3.9 -> 3).

    Raises ``TypeError`` for non-numbers (bools included) and ``ValueError`` for NaN, infinities and
    negative values, or an unknown scheme.
    """
    if isinstance(d, bool) or not isinstance(d, (int, float)):
        try:
            import numpy as np

            if isinstance(d, np.number) and not isinstance(d, np.bool_):
                d = float(d)
            else:
                raise TypeError
        except (ImportError, TypeError):
            raise TypeError(f"difficulty must be a number, got {type(d).__name__} {d!r}") from None
    if math.isnan(d) or math.isinf(d) or d < 0:
        raise ValueError(f"difficulty must be a finite number >= 0, got {d!r}")
    if scheme == "round":
        return int(math.floor(d + 0.5))
    if scheme == "floor":
        return int(math.floor(d))
    raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")


def bucket_table(difficulties: Iterable[float], scheme: str = "round") -> dict[int, int]:
    """How many problems fall in each level under ``scheme`` (sorted by level)."""
    counts = Counter(difficulty_level(d, scheme) for d in difficulties)
    return dict(sorted(counts.items()))


def plot_buckets(difficulties: Sequence[float], ax=None, title: str = "difficulty buckets"):
    """Histogram of the float difficulty and the bucket sizes under both schemes, side by side."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    r, f = bucket_table(difficulties, "round"), bucket_table(difficulties, "floor")
    levels = sorted(set(r) | set(f))
    ax.bar([x - 0.2 for x in levels], [r.get(x, 0) for x in levels], 0.4, label="round (half-up)")
    ax.bar([x + 0.2 for x in levels], [f.get(x, 0) for x in levels], 0.4, label="floor")
    ax.set_xlabel("level"), ax.set_ylabel("problems"), ax.set_title(title), ax.legend()
    return ax


@dataclass(frozen=True)
class Stage:
    name: str
    levels: tuple[int, ...]
    steps: int


def _parse_levels(text: str) -> tuple[int, ...]:
    text = text.strip()
    if text in PRESETS:
        return PRESETS[text]
    if text.startswith("level") and text[5:] and text[5:] not in PRESETS:
        text = text[5:]
    levels: list[int] = []
    for part in text.split("+"):
        lo, _, hi = part.partition("-")
        try:
            levels.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise ValueError(f"cannot read levels {text!r}: use e.g. '1-3', '4', '5+6' or a preset "
                             f"({', '.join(PRESETS)})") from None
    return tuple(levels)


def parse_stages(spec: str | Sequence[Stage]) -> list[Stage]:
    """``"1-3:100,4:100,5:100"`` (or preset names, ``"level1-3:100,level4:100"``) -> stages."""
    if not isinstance(spec, str):
        return list(spec)
    stages = []
    for item in spec.split(","):
        if not item.strip():
            continue
        levels_text, sep, steps_text = item.rpartition(":")
        if not sep or not steps_text.strip().isdigit() or int(steps_text) < 1:
            raise ValueError(f"stage {item.strip()!r} must be LEVELS:STEPS with STEPS >= 1, e.g. '1-3:100'")
        levels = _parse_levels(levels_text)
        name = next((k for k, v in PRESETS.items() if v == levels), "level" + "+".join(map(str, levels)))
        stages.append(Stage(name, levels, int(steps_text)))
    if not stages:
        raise ValueError("no stages given: use e.g. '1-3:100,4:100,5:100'")
    return stages


@dataclass
class CurriculumPlan:
    """Problems in the order training consumes them (``prompts_per_step`` per step), and the stages."""

    rows: list[dict[str, Any]]
    boundaries: list[tuple[str, int, int]]  # (stage name, first step, end step exclusive)
    prompts_per_step: int
    schedule: str
    stages: list[Stage] = field(default_factory=list)

    def stage_at(self, step: int) -> str:
        """The stage name active at a 0-based ``step``."""
        for name, start, end in self.boundaries:
            if start <= step < end:
                return name
        raise IndexError(f"step {step} is outside the schedule (0-{self.boundaries[-1][2] - 1})")

    def rows_at(self, step: int) -> list[dict[str, Any]]:
        k = self.prompts_per_step
        return self.rows[step * k: (step + 1) * k]


def _draw(pool: list[dict[str, Any]], n: int, rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < n:
        chunk = pool[:]
        rng.shuffle(chunk)
        out.extend(chunk)
    return out[:n]


def build_schedule(pool: Iterable[dict[str, Any]], stages: str | Sequence[Stage], schedule: str = "staged",
                   prompts_per_step: int = 16, seed: int = 0, level_key: str = "level") -> CurriculumPlan:
    """Lay out the problems for every step (see the module docstring)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    stage_list = parse_stages(stages)
    pool = list(pool)
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    boundaries: list[tuple[str, int, int]] = []
    step = 0
    seen: set[int] = set()
    for stage in stage_list:
        seen |= set(stage.levels)
        levels = seen if schedule == "cumulative" else set(stage.levels)
        eligible = [r for r in pool if r.get(level_key) in levels]
        if not eligible:
            have = sorted({r.get(level_key) for r in pool})
            raise ValueError(f"stage {stage.name} needs levels {sorted(levels)} but the pool has only {have}")
        rows.extend(_draw(eligible, stage.steps * prompts_per_step, rng))
        boundaries.append((stage.name, step, step + stage.steps))
        step += stage.steps
    if schedule == "shuffled":
        rng.shuffle(rows)
        boundaries = [("shuffled", 0, step)]
    return CurriculumPlan(rows, boundaries, prompts_per_step, schedule, stage_list)


def plot_schedule(plan: CurriculumPlan, ax=None, level_key: str = "level"):
    """Which levels each step trains on: a scatter of step vs level, stage boundaries as lines."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.6))
    k = plan.prompts_per_step
    xs = [i // k + random.Random(i).uniform(-0.4, 0.4) for i in range(len(plan.rows))]
    ys = [r.get(level_key) + random.Random(-i).uniform(-0.25, 0.25) for i, r in enumerate(plan.rows)]
    ax.scatter(xs, ys, s=2, alpha=0.4)
    for _, start, _ in plan.boundaries[1:]:
        ax.axvline(start, color="k", lw=1, ls="--")
    ax.set_xlabel("step"), ax.set_ylabel("level"), ax.set_title(f"{plan.schedule} schedule")
    return ax
