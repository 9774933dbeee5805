"""Group-relative advantages: GRPO's replacement for a learned critic.

Completions come in contiguous groups of ``G`` (the ``G`` samples of one prompt), as in TRL::

    rewards = [r_11, ..., r_1G, r_21, ..., r_2G, ...]

and each one's advantage is its reward measured against its own group (paper, eq. 2 / eq. 5)::

    A_i = (r_i - mean(r_group)) / (std(r_group) + eps)     scale="group" (GRPO)
    A_i =  r_i - mean(r_group)                              scale="none"  (Dr. GRPO)
    A_i = (r_i - mean(r_group)) / (std(r_batch) + eps)      scale="batch"

The names are TRL's ``GRPOConfig.scale_rewards`` values, and a profile's ``train.scale_rewards`` takes the
same three (one word per idea: "group" everywhere); ``"std"`` is kept as another name for ``"group"``
because the public API listed it first. ``std`` is the unbiased (n-1) standard deviation, as TRL uses. ``eps`` is not TRL's: TRL 1.16's
``GRPOTrainer`` divides by ``std + 1e-4``, the kit by ``std + eps`` with ``eps=1e-6`` by default (pass
``eps=1e-4`` to match TRL to the last digit); the two differ by a relative ``eps / std``, under 0.1% for a
group whose rewards spread 0.1 or more, and not at all for equal rewards. A group whose rewards are all equal
carries no signal: its advantages are exactly 0 (never NaN), whatever ``eps``.

:func:`leave_one_out` is the unbiased baseline the group mean approximates: with the mean of the *other*
``G - 1`` rewards as baseline, ``r_i - mean(r_group) = (G - 1) / G * (r_i - mean_{j != i} r_j)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

SCALES = ("group", "none", "batch", "std")  # "std": the same as "group"


def _as_tensor(rewards: Sequence[float] | torch.Tensor) -> torch.Tensor:
    r = torch.as_tensor(rewards, dtype=torch.float32)
    if r.dim() != 1:
        raise ValueError(f"rewards must be a flat sequence, got shape {tuple(r.shape)}")
    return r


def group_advantages(
    rewards: Sequence[float] | torch.Tensor,
    group_size: int,
    scale: str = "group",
    eps: float = 1e-6,
) -> torch.Tensor:
    """Advantages for contiguous groups of ``group_size`` completions (see the module docstring).

    ``scale``: ``"group"`` (also accepted as ``"std"``), ``"none"`` or ``"batch"``. Raises ``ValueError`` when the
    number of rewards is not a multiple of ``group_size``.
    """
    r = _as_tensor(rewards)
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if r.numel() % group_size != 0:
        raise ValueError(
            f"got {r.numel()} rewards, not a multiple of group_size={group_size}: each prompt needs exactly "
            f"group_size completions, stored contiguously"
        )
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    groups = r.view(-1, group_size)
    centred = (groups - groups.mean(dim=1, keepdim=True)).flatten()  # r_i - mean(r_group)
    if scale == "none":
        return centred
    if scale == "batch":
        std = r.std() if r.numel() > 1 else torch.zeros(())
        std = std.expand_as(r)
    else:
        std = groups.std(dim=1) if group_size > 1 else torch.zeros(groups.shape[0])
        std = std.repeat_interleave(group_size)
    adv = centred / (std + eps)
    # equal rewards -> centred is exactly 0 -> 0 / eps = 0 (and 0 / 0 can't happen because eps > 0)
    return torch.where(centred == 0, torch.zeros_like(adv), adv)


def leave_one_out(rewards: Sequence[float] | torch.Tensor, group_size: int) -> torch.Tensor:
    """Leave-one-out advantages ``A_i = r_i - mean_{j != i} r_j`` for contiguous groups of ``group_size``.

    The baseline of completion ``i`` is the mean reward of the *other* ``G - 1`` completions of its prompt, so it
    does not depend on ``y_i`` and the policy-gradient estimate stays unbiased (the baseline lemma,
    ``E[b * grad log pi(y | x)] = 0`` for ``b`` independent of ``y``; RLOO, Kool et al. 2019). GRPO's centred
    reward (eq. 2 / eq. 5, ``group_advantages(..., scale="none")``) is this shrunk by ``(G - 1) / G``::

        r_i - mean_G r = (G - 1) / G * (r_i - mean_{-i} r)

    Raises ``ValueError`` when ``group_size < 2`` (no other completion to form a baseline) or when the number of
    rewards is not a multiple of ``group_size``.
    """
    r = _as_tensor(rewards)
    if group_size < 2:
        raise ValueError(f"leave-one-out needs group_size >= 2 (a baseline from the other completions), got {group_size}")
    if r.numel() % group_size != 0:
        raise ValueError(f"got {r.numel()} rewards, not a multiple of group_size={group_size}")
    groups = r.view(-1, group_size)
    others = (groups.sum(dim=1, keepdim=True) - groups) / (group_size - 1)  # mean_{j != i} r_j
    return (groups - others).flatten()


def zero_std_fraction(rewards: Sequence[float] | torch.Tensor, group_size: int) -> float:
    """Fraction of groups whose rewards are all equal (no learning signal): a health metric."""
    groups = _as_tensor(rewards).view(-1, group_size)
    return float((groups.max(dim=1).values == groups.min(dim=1).values).float().mean())
