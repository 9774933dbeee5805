"""Checks for exercise 02: group-relative advantages."""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from supersmall.advantages import group_advantages
from supersmall.checks.core import Case, run_check


def check_group_advantages(fn: Callable[..., torch.Tensor]) -> bool:
    """``fn(rewards, group_size, scale)`` must match :func:`supersmall.advantages.group_advantages`."""
    rng = random.Random(0)
    cases = [Case(([1.0, 0.0, 0.0, 0.0], 4, "group"), label="1 of 4 succeeds"),
             Case(([1.0, 1.0, 1.0, 1.0], 4, "group"), label="equal rewards: exactly 0, never NaN"),
             Case(([0.0, 0.0, 1.0, 0.0, 1.0, 1.0], 3, "none"), label="two groups, mean only"),
             Case(([0.5], 1, "group"), label="group of one")]
    for i in range(25):
        g = rng.choice([2, 4, 8])
        rewards = [rng.choice([0.0, 1.0, -0.1, 0.9]) for _ in range(g * rng.randint(1, 4))]
        cases.append(Case((rewards, g, rng.choice(["group", "none"])), label=f"random #{i + 1}"))

    def reference(rewards, group_size, scale):
        return group_advantages(rewards, group_size, scale=scale)

    def student(rewards, group_size, scale):
        return torch.as_tensor(fn(rewards, group_size, scale), dtype=torch.float32)

    return run_check("group_advantages", student, reference, cases)
