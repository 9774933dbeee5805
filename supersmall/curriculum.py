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
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

SCHEMES = ("round", "floor")
SCHEDULES = ("staged", "cumulative", "shuffled")

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


@dataclass(frozen=True)
class Stage:
    name: str
    levels: tuple[int, ...]
    steps: int


MAX_LEVEL = 99  # levels are small integers (DeepMath's difficulty runs to about 10)
_LEVEL_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$", re.ASCII)  # "4" or "1-3" (ASCII digits only)
_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")  # a stage name is a folder name (eval/<stage>)


def parse_levels(spec: str | int | Iterable[int]) -> tuple[int, ...]:
    """The kit's one level syntax: ``"1-3"``, ``"4"``, ``"5+6"``, ``"level1-3"``, ``4`` or ``[4, 5]``.

    Commas separate *stages* (:func:`parse_stages`), never levels. Anything else is a ``ValueError``
    (one sentence): an inverted range (``"3-1"``), a level above :data:`MAX_LEVEL`, a non-integer.
    """
    hint = "use e.g. '1-3', '4' or '5+6'"
    if isinstance(spec, bool):
        raise ValueError(f"cannot read levels {spec!r}: {hint}")
    if isinstance(spec, int):
        spec = [spec]
    if not isinstance(spec, str):
        items = list(spec)
        if not items or not all(isinstance(x, int) and not isinstance(x, bool) for x in items):
            raise ValueError(f"cannot read levels {spec!r}: {hint}")
        if any(not 0 <= x <= MAX_LEVEL for x in items):
            raise ValueError(f"cannot read levels {spec!r}: levels run 0-{MAX_LEVEL}")
        return tuple(items)
    levels: list[int] = []
    for part in spec.strip().removeprefix("level").split("+"):
        match = _LEVEL_PART.match(part)
        if not match:
            raise ValueError(f"cannot read levels {spec!r}: {hint}")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise ValueError(f"cannot read levels {spec!r}: a range runs low-high, e.g. '1-3'")
        if last > MAX_LEVEL:
            raise ValueError(f"cannot read levels {spec!r}: levels run 0-{MAX_LEVEL}")
        levels.extend(range(first, last + 1))
    return tuple(levels)


def stage_name(levels: Sequence[int]) -> str:
    """``(1, 2, 3)`` -> ``"level1-3"``, ``(4,)`` -> ``"level4"``, ``(5, 7)`` -> ``"level5+7"``."""
    lv = sorted(levels)
    if len(lv) > 1 and lv == list(range(lv[0], lv[-1] + 1)):
        return f"level{lv[0]}-{lv[-1]}"
    return "level" + "+".join(map(str, lv))


def parse_stages(spec: str | Sequence[Stage]) -> list[Stage]:
    """``"1-3:100,4:100,5:100"`` (or ``"level1-3:100,level4:100"``) -> stages; levels as :func:`parse_levels`.

    A stage written ``NAME=LEVELS:STEPS`` keeps its name (``"level5.5=5:100"``); two stages may not share
    a name (each is evaluated into ``eval/<name>``). Blanks between commas are skipped; anything else
    that does not read is a ``ValueError`` (one sentence).
    """
    if not isinstance(spec, str):
        return list(spec)
    stages: list[Stage] = []
    for item in spec.split(","):
        if not item.strip():
            continue
        levels_text, sep, steps_text = item.rpartition(":")
        steps_text = steps_text.strip()
        if not sep or not (steps_text.isascii() and steps_text.isdigit()) or int(steps_text) < 1:
            raise ValueError(f"stage {item.strip()!r} must be LEVELS:STEPS with STEPS >= 1, e.g. '1-3:100'")
        name, eq, levels_text = levels_text.rpartition("=")
        levels = parse_levels(levels_text)
        name = name.strip() if eq else stage_name(levels)
        if not _STAGE_NAME.match(name):
            raise ValueError(f"stage {item.strip()!r}: a stage name is letters, digits and . _ + - "
                             "(e.g. 'level5.5=5:100')")
        if name in (s.name for s in stages):
            raise ValueError(f"stage {item.strip()!r}: two stages are named {name!r}; name one NAME=LEVELS:STEPS")
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
