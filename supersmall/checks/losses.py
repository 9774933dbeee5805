"""Checks for exercise 03: k3 and the masked clipped surrogate."""

from __future__ import annotations

from collections.abc import Callable

import torch

from supersmall import losses
from supersmall.checks.core import Case, close, run_check


def _random_batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    B, T = 3, 5
    logp = -torch.rand(B, T, generator=g) * 3
    old = logp + (torch.rand(B, T, generator=g) - 0.5)
    adv = torch.randn(B, generator=g)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None] < lengths[:, None]).float()
    return logp, old, adv, mask


def check_k3(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """``fn(logp, ref_logp)`` must equal k3 = (r - 1) - log r per token, r = pi_ref / pi = exp(ref - logp): the
    unbiased, never negative estimate of KL(pi || pi_ref) from samples of pi."""
    cases = [Case((torch.tensor([0.0]), torch.tensor([0.0])), label="same distribution: 0"),
             Case((torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.25]))), label="pi = 0.5, ref = 0.25")]
    for i in range(20):
        g = torch.Generator().manual_seed(i)
        cases.append(Case((-torch.rand(4, 6, generator=g) * 4, -torch.rand(4, 6, generator=g) * 4),
                          label=f"random #{i + 1}"))
    hints = [(lambda a, b: losses.kl_estimate(a, b, "k1"),
              "that is k1 = log(pi / pi_ref): unbiased but negative on many tokens; add a zero-mean term "
              "lambda * (r - 1) with r = pi_ref / pi, and pick lambda so the sum is never negative"),
             (lambda a, b: losses.kl_estimate(a, b, "k2"),
              "that is k2 = (log r)^2 / 2: never negative, but biased; the exercise asks for an unbiased one"),
             (lambda a, b: losses.kl_estimate(b, a, "k3"),
              "the ratio is upside down (r = pi / pi_ref): with samples from pi, E[pi_ref / pi] = 1, not E[pi / pi_ref]"),
             (lambda a, b: -losses.kl_estimate(a, b, "k3"), "the sign is flipped: KL is never negative"),
             (lambda a, b: (a - b) - torch.expm1(b - a),
              "lambda = -1: (1 - r) + log r is unbiased too, but log r <= r - 1 makes it never *positive*")]
    return run_check("k3", fn, lambda a, b: losses.kl_estimate(a, b, "k3"), cases, hints=hints)


def check_masked_surrogate(fn: Callable[..., torch.Tensor]) -> bool:
    """``fn(logp, old_logp, adv, mask, clip_eps)`` = the clipped surrogate averaged per sequence (TRL "grpo").

    A fully padded row (its mask all zeros) divides by its length clamped to 1: it adds 0 to the sum
    and still counts in the mean over sequences, as :func:`supersmall.losses.aggregate` does.
    """
    cases = [Case((torch.log(torch.tensor([[1.5, 1.0]])), torch.zeros(1, 2), torch.tensor([1.0]), torch.ones(1, 2),
                   0.2), label="ratio 1.5 with A > 0 is clipped")]
    logp, old, adv, mask = _random_batch(50)
    mask[1] = 0.0  # a completion with no real tokens at all (e.g. an empty generation)
    cases.append(Case((logp, old, adv, mask, 0.2),
                      label="a fully padded row: it counts as a sequence with loss 0, not 0/0 = NaN"))
    cases += [Case((*_random_batch(i), 0.2), label=f"random #{i + 1}") for i in range(20)]

    def reference(logp, old, adv, mask, clip_eps):
        return losses.aggregate(losses.clipped_surrogate(logp, old, adv, clip_eps), mask, "grpo")

    def ratio_loss(logp, old, adv, clip_eps, clip=True, use_min=True):
        ratio, a = torch.exp(logp - old), adv[:, None]
        clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * a if clip else ratio * a
        return -(torch.min(ratio * a, clipped) if use_min else clipped)

    hints = [(lambda logp, old, adv, mask, eps: ratio_loss(logp, old, adv, eps).mean(),
              "the mask is missing: padding tokens change the loss; multiply by the mask and divide by the real lengths"),
             (lambda logp, old, adv, mask, eps: losses.aggregate(ratio_loss(logp, old, adv, eps), mask, "dapo"),
              "looks like one global token mean (TRL's 'dapo'): 'grpo' averages each sequence over its own tokens first, "
              "then averages the sequences"),
             (lambda logp, old, adv, mask, eps: -reference(logp, old, adv, mask, eps),
              "the sign is flipped: the loss is minus the objective (gradient *descent* must raise it)"),
             (lambda logp, old, adv, mask, eps: losses.aggregate(ratio_loss(logp, old, adv, eps, clip=False), mask),
              "the ratio is not clipped: clamp it to [1 - clip_eps, 1 + clip_eps] in the second term"),
             (lambda logp, old, adv, mask, eps: losses.aggregate(ratio_loss(logp, old, adv, eps, use_min=False), mask),
              "the clipped term alone: PPO takes the min of the clipped and unclipped terms (the pessimistic one), "
              "so a ratio that moved the wrong way is not clipped")]

    def compare(expected, got):
        return close(expected, got)

    def explain(expected, got):
        if isinstance(got, torch.Tensor) and bool(torch.isnan(got).any()):
            return "got NaN: a row with no real tokens divides 0 by 0; clamp each length to at least 1"
        return ""

    ok = run_check("masked_surrogate", fn, reference, cases, compare, explain=explain, hints=hints)
    if ok:  # padding must get exactly zero gradient
        logp, old, adv, mask = _random_batch(99)
        logp.requires_grad_(True)
        fn(logp, old, adv, mask, 0.2).backward()
        if logp.grad is None or bool((logp.grad[mask == 0] != 0).any()):
            from supersmall.checks.core import CheckFailed

            raise CheckFailed("[masked_surrogate] padded positions receive gradient: multiply by the mask")
    return ok
