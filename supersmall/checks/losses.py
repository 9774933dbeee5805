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
    """``fn(logp, ref_logp)`` must equal k3 = exp(ref - logp) - (ref - logp) - 1 per token."""
    cases = [Case((torch.tensor([0.0]), torch.tensor([0.0])), label="same distribution: 0"),
             Case((torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.25]))), label="pi = 0.5, ref = 0.25")]
    for i in range(20):
        g = torch.Generator().manual_seed(i)
        cases.append(Case((-torch.rand(4, 6, generator=g) * 4, -torch.rand(4, 6, generator=g) * 4),
                          label=f"random #{i + 1}"))
    return run_check("k3", fn, lambda a, b: losses.kl_estimate(a, b, "k3"), cases)


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

    def compare(expected, got):
        return close(expected, got)

    def explain(expected, got):
        if isinstance(got, torch.Tensor) and bool(torch.isnan(got).any()):
            return "got NaN: a row with no real tokens divides 0 by 0; clamp each length to at least 1"
        return ""

    ok = run_check("masked_surrogate", fn, reference, cases, compare, explain=explain)
    if ok:  # padding must get exactly zero gradient
        logp, old, adv, mask = _random_batch(99)
        logp.requires_grad_(True)
        fn(logp, old, adv, mask, 0.2).backward()
        if logp.grad is None or bool((logp.grad[mask == 0] != 0).any()):
            from supersmall.checks.core import CheckFailed

            raise CheckFailed("[masked_surrogate] padded positions receive gradient: multiply by the mask")
    return ok
