"""Group-relative advantages: GRPO's replacement for a learned critic.

Completions come in contiguous groups of ``G`` (the ``G`` samples of one prompt), as in TRL::

    rewards = [r_11, ..., r_1G, r_21, ..., r_2G, ...]

and each one's advantage is its reward measured against its own group. The paper's eq. 2 / eq. 5 use ``A_i``
"based on the relative ranking" (000:84) without defining it; dividing by the group std is GRPO's (DeepSeekMath)
and TRL's default, a choice here (``train.scale_rewards``)::

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

import math
from collections.abc import Callable, Sequence
from typing import Any

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
    reward (``group_advantages(..., scale="none")``) is this shrunk by ``(G - 1) / G``::

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


def outcome_split(correct: Sequence[float] | torch.Tensor, group_size: int) -> dict[str, float]:
    """The no-signal share split by outcome: the fraction of groups whose ``group_size`` completions are ALL correct
    (``frac_groups_all_correct``: problems already solved, nothing left to learn on them) and ALL wrong
    (``frac_groups_all_wrong``: no success to reinforce, e.g. a model that never boxes).

    ``correct`` is the grader's verdict per completion (1/0 or bool: eq. 6, :func:`supersmall.rewards.correctness`),
    never the summed reward. With eq. 6 alone the two add up to :func:`zero_std_fraction`; with eq. 7 too a correct
    group can have unequal rewards (one completion over the length limit), so they add up to at least it."""
    groups = _as_tensor(correct).view(-1, group_size) > 0.5
    return {"frac_groups_all_correct": float(groups.all(dim=1).float().mean()),
            "frac_groups_all_wrong": float((~groups).all(dim=1).float().mean())}


# --- what the expected gradient of each advantage is (notebook 00, section 8) ---------------------------------
def expected_gradient_factor(p: float, group_size: int, scale: str = "none", eps: float = 1e-6) -> float:
    """The exact ``kappa`` in ``E[1/G sum_i A_i grad log pi(y_i|x)] = kappa * grad J`` for 0/1 rewards with success rate ``p``.

    Derivation: condition on the sample's own reward. ``A_i`` depends on ``y_i`` only through ``r_i`` (the other
    ``G - 1`` rewards are independent of it), so ``E[A_i grad log pi(y_i)] = E[f(r_i) grad log pi(y_i)]`` with
    ``f(r) = E[A_i | r_i = r]``. With two reward values ``f(r) = f(0) + (f(1) - f(0)) r`` and ``E[grad log pi] = 0``,
    so the expectation is ``(f(1) - f(0)) * grad J``: ``kappa = f(1) - f(0)``. Let ``k ~ Binomial(G - 1, p)`` be the
    successes among the others; a group with ``s`` successes has mean ``s / G`` and unbiased std
    ``sqrt(s (G - s) / (G (G - 1)))``::

        kappa = sum_k P(k) * [ (1 - (k+1)/G) / (std(k+1) + eps)  +  (k/G) / (std(k) + eps) ]

    (a group whose rewards are all equal contributes 0, as :func:`group_advantages` gives it). ``scale="none"``
    (no division): ``kappa = (G - 1) / G`` for every ``p``, the leave-one-out factor shrunk. ``scale="group"``: ``kappa``
    depends on ``p`` (symmetric in ``p <-> 1 - p``), so the group std rescales each prompt's gradient by its own
    success rate. With more than two reward values the expectation is not a multiple of ``grad J`` at all.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a success rate in [0, 1], got {p}")
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2, got {group_size}")
    if scale not in ("none", "group", "std"):
        raise ValueError(f"scale must be 'none' or 'group' (the batch std has no closed form here), got {scale!r}")
    G = group_size

    def std(s: int) -> float:
        return math.sqrt(s * (G - s) / (G * (G - 1)))

    total = 0.0
    for k in range(G):
        weight = math.comb(G - 1, k) * p**k * (1 - p) ** (G - 1 - k)
        up, down = 1 - (k + 1) / G, k / G  # A_i when r_i = 1 (k + 1 successes), minus A_i when r_i = 0 (k)
        if scale != "none":
            up = up / (std(k + 1) + eps) if k + 1 < G else 0.0
            down = down / (std(k) + eps) if k > 0 else 0.0
        total += weight * (up + down)
    return total


def toy_gradient_factor(pi: torch.Tensor, reward_of: torch.Tensor, group_size: int, groups: int,
                        advantage: Callable[[torch.Tensor], torch.Tensor],
                        generator: torch.Generator | None = None) -> dict[str, Any]:
    """Monte Carlo of one advantage estimator on a softmax policy over ``K`` answers (logits are the parameters).

    Draws ``groups`` groups of ``group_size`` answers from ``pi`` (K,), rewards ``reward_of[answer]``, advantages
    ``advantage(flat rewards)``, and one gradient estimate per group, ``1/G sum_i A_i (onehot(y_i) - pi)`` (the
    gradient of ``log pi(y_i)`` with respect to the logits). Returns ``factor``: the mean estimate projected on the
    exact gradient ``pi * (r - pi.r)`` (1 = unbiased), ``se``: its standard error over groups, ``mean`` / ``se_each``
    (K,) per logit, ``variance``: the trace of one group estimate's covariance.
    """
    K = pi.numel()
    exact = pi * (reward_of - pi @ reward_of)
    samples = torch.multinomial(pi.expand(groups, K), group_size, replacement=True, generator=generator)
    rs = reward_of[samples]  # (groups, G)
    score = torch.nn.functional.one_hot(samples, K).to(pi.dtype) - pi  # grad of log pi(a) wrt the logits
    adv = advantage(rs.flatten()).view(groups, group_size)
    per_group = (adv.unsqueeze(-1) * score).mean(1)  # (groups, K): one gradient estimate per group
    projection = per_group @ exact / (exact @ exact)  # (groups,)
    return {"factor": float(projection.mean()), "se": float(projection.std() / groups**0.5),
            "mean": per_group.mean(0), "se_each": per_group.std(0) / groups**0.5,
            "variance": float(per_group.var(0).sum()), "exact": exact}
