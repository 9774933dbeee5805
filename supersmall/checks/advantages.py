"""Checks for exercise 02: group-relative advantages."""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from supersmall.advantages import group_advantages
from supersmall.checks.core import Case, run_check

TRL_EPS = 1e-4  # TRL 1.16 GRPOTrainer: advantages / (std_rewards + 1e-4); the kit's default eps is 1e-6


def buggy_advantages(rewards, group_size, scale, eps=1e-6, unbiased=True, groups="contiguous", zero_equal=True,
                     scale_none=False):
    """The reference with one common bug injected (used for the check's targeted hints)."""
    r = torch.as_tensor(rewards, dtype=torch.float32)
    g = r.view(-1, group_size) if groups == "contiguous" else r.view(group_size, -1).T  # "interleaved"
    if groups == "batch":
        g = r.view(1, -1)
    centred = g - g.mean(dim=1, keepdim=True)
    if scale == "none" and not scale_none:
        out = centred
    else:
        std = g.std(dim=1, keepdim=True, unbiased=unbiased) if g.shape[1] > 1 else torch.zeros_like(centred)
        out = centred / (std + eps)
        if zero_equal:
            out = torch.where(centred == 0, torch.zeros_like(out), out)
    return (out.T if groups == "interleaved" else out).flatten()


def check_group_advantages(fn: Callable[..., torch.Tensor]) -> bool:
    """``fn(rewards, group_size, scale)`` must match :func:`supersmall.advantages.group_advantages`.

    ``eps``: the kit divides by ``std + 1e-6``, TRL 1.16 by ``std + 1e-4`` (``GRPOTrainer``); either is accepted
    (they differ by a relative ``eps / std``, under 0.1% for a reward spread of 0.1 or more).
    """
    rng = random.Random(0)
    cases = [Case(([1.0, 0.0, 0.0, 0.0], 4, "group"), label="1 of 4 succeeds"),
             Case(([1.0, 1.0, 1.0, 1.0], 4, "group"), label="equal rewards: exactly 0, never NaN"),
             Case(([0.0, 0.0, 1.0, 0.0, 1.0, 1.0], 3, "none"), label="two groups, mean only"),
             Case(([1.0, 0.0, 0.0, 1.0, 1.0, 0.0], 3, "group"), label="two groups of 3 (contiguous: [1, 0, 0], [1, 1, 0])"),
             Case(([0.5], 1, "group"), label="group of one")]
    for i in range(25):
        g = rng.choice([2, 4, 8])
        rewards = [rng.choice([0.0, 1.0, -0.1, 0.9]) for _ in range(g * rng.randint(1, 4))]
        cases.append(Case((rewards, g, rng.choice(["group", "none"])), label=f"random #{i + 1}"))

    def reference(rewards, group_size, scale):
        return group_advantages(rewards, group_size, scale=scale)

    def trl(rewards, group_size, scale):
        return group_advantages(rewards, group_size, scale=scale, eps=TRL_EPS)

    def student(rewards, group_size, scale):
        return torch.as_tensor(fn(rewards, group_size, scale), dtype=torch.float32)

    def bug(**kw):
        return lambda rewards, group_size, scale: buggy_advantages(rewards, group_size, scale, **kw)

    hints = [(bug(unbiased=False), "looks like the population std (ddof=0, numpy's default): TRL and the kit use the "
                                   "unbiased std (n - 1): torch's .std() default, np.std(ddof=1)"),
             (bug(zero_equal=False, eps=0.0), "a group of equal rewards gives NaN: 0 / 0; add eps to the std (or "
                                              "return 0 where r equals the group mean)"),
             (bug(groups="interleaved"), "looks like interleaved groups (view(group_size, -1)): the G completions of "
                                         "one prompt are contiguous, so view(-1, group_size)"),
             (bug(groups="batch"), "looks like the mean over the whole batch: each completion is compared with its "
                                   "own group (the other completions of the same prompt)"),
             (bug(scale_none=True), "scale='none' divides by the std anyway: 'none' (Dr. GRPO) keeps r - mean only")]
    return run_check("group_advantages", student, reference, cases, hints=hints, alternatives=[trl])
