"""Checks for exercise 05: the minimal GRPO step (rewards -> group advantages -> clipped loss).

The student's ``fn(completions, answers, lengths, logp, old_logp, mask, group_size, max_length)``
returns ``(rewards, advantages, loss)``; it is compared with the library on fixed batches and
seeded random ones, and so is the gradient of ``loss`` with respect to ``logp`` (what the optimiser
actually uses), not only its value.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from supersmall import advantages, losses, rewards
from supersmall.checks.core import Case, close, run_check

PARTS = ("rewards", "advantages", "loss", "d loss / d logp")


def _batch(texts: list[str], answers: list[str], lengths: list[int], T: int, seed: int,
           drift: float = 0.5) -> tuple:
    """Log-probs for ``len(texts)`` completions of up to ``T`` tokens; old_logp differs by up to ``drift``."""
    g = torch.Generator().manual_seed(seed)
    B = len(texts)
    logp = -torch.rand(B, T, generator=g, dtype=torch.float32) * 3
    old = logp + (torch.rand(B, T, generator=g) - 0.5) * 2 * drift
    mask = (torch.arange(T)[None] < torch.tensor(lengths)[:, None]).float()
    return texts, answers, lengths, logp, old, mask


def _fixed_cases() -> list[Case]:
    T = 10  # = max_length: a completion that fills all T tokens is overlong (10 > 0.95 * 10)
    texts = ["<think>2+2</think>\\boxed{4}", "<think>hmm</think>\\boxed{5}", "\\boxed{4.0}", "no box at all",
             "<think>half</think>\\boxed{\\frac{1}{2}}", "\\boxed{0.5}", "\\boxed{1/3}", "\\boxed{0.5}"]
    answers = ["4"] * 4 + ["0.5"] * 4
    lengths = [6, 10, 3, 10, 8, 10, 2, 5]
    same = ["\\boxed{7}"] * 4
    return [
        Case(_batch(texts, answers, lengths, T, seed=0, drift=0.0), {"group_size": 4, "max_length": T},
             label="ratio 1 (old_logp == logp): 2 prompts x 4, overlong completions, 4.0 = 4, 1/2 = 0.5"),
        Case(_batch(texts, answers, lengths, T, seed=1, drift=0.6), {"group_size": 4, "max_length": T},
             label="old_logp drifted: the clip acts on some tokens"),
        Case(_batch(same, ["7"] * 4, [4, 4, 4, 4], T, seed=2), {"group_size": 4, "max_length": T},
             label="a group of equal rewards: advantages exactly 0, loss 0, gradient 0"),
        Case(_batch(same[:2], ["7", "8"], [3, 0], T, seed=3), {"group_size": 2, "max_length": T},
             label="an empty completion (mask row all zeros): no NaN anywhere"),
    ]


def _random_case(rng: random.Random, i: int) -> Case:
    P, G, T = rng.randint(1, 3), rng.choice([2, 3, 4]), rng.randint(3, 9)
    texts, answers, lengths = [], [], []
    for _ in range(P):
        gold = rng.choice(["3", "12", "\\frac{3}{4}", "0.25"])
        for _ in range(G):
            pred = rng.choice([gold, "0.75" if gold == "\\frac{3}{4}" else gold, "99", None])
            texts.append("<think>...</think>" + (f"\\boxed{{{pred}}}" if pred is not None else "no answer"))
            answers.append(gold)
            lengths.append(rng.randint(1, T))
    return Case(_batch(texts, answers, lengths, T, seed=100 + i, drift=rng.choice([0.0, 0.1, 0.6])),
                {"group_size": G, "max_length": T}, label=f"random #{i + 1}")


def reference_grpo_step(completions, answers, lengths, logp, old_logp, mask, group_size, max_length,
                        clip_eps=0.2):
    """The library's step: eq. 6 + eq. 7, group advantages (mean/std), clipped loss with "grpo"."""
    r = rewards.supersmall_reward(completions, answer=answers, completion_ids=[[0] * n for n in lengths],
                                  max_length=max_length)
    adv = advantages.group_advantages(r, group_size, scale="group")
    loss, _ = losses.policy_loss(logp, old_logp, adv, mask, clip_eps=clip_eps, loss_type="grpo",
                                 group_size=group_size)
    return r, adv, loss


def _variant_step(completions, answers, lengths, logp, old_logp, mask, group_size, max_length, clip_eps=0.2,
                  unbiased=True, penalty=-0.1, aggregation="grpo"):
    """The step with one common bug injected (for the check's hints)."""
    r = rewards.supersmall_reward(completions, answer=answers, completion_ids=[[0] * n for n in lengths],
                                  max_length=max_length, penalty=penalty)
    adv = _advantages(r, group_size, unbiased)
    loss, _ = losses.policy_loss(logp, old_logp, adv, mask, clip_eps=clip_eps, loss_type=aggregation,
                                 group_size=group_size)
    return r, adv, loss


def _advantages(r, group_size, unbiased=True):
    g = torch.tensor(r, dtype=torch.float32).view(-1, group_size)
    centred = g - g.mean(1, keepdim=True)
    std = g.std(1, keepdim=True, unbiased=unbiased) if group_size > 1 else torch.zeros_like(centred)
    return torch.where(centred == 0, torch.zeros_like(centred), centred / (std + 1e-6)).flatten()


def _run(step: Callable[..., Any], args: tuple, kwargs: dict) -> tuple:
    """Call ``step`` on fresh copies (a leaf ``logp`` requiring grad); add d loss / d logp."""
    completions, answers, lengths, logp, old, mask = args
    leaf = logp.detach().clone().requires_grad_(True)
    out = step(list(completions), list(answers), list(lengths), leaf, old.clone(), mask.clone(), **kwargs)
    if not isinstance(out, tuple) or len(out) != 3:
        raise TypeError(f"return a tuple (rewards, advantages, loss), got {type(out).__name__}")
    r, adv, loss = out
    r = [float(x) for x in (r.tolist() if isinstance(r, torch.Tensor) else r)]
    adv = torch.as_tensor(adv, dtype=torch.float32).detach()
    grad = None
    if isinstance(loss, torch.Tensor) and loss.requires_grad and loss.numel() == 1:
        (grad,) = torch.autograd.grad(loss.reshape(()), leaf, allow_unused=True)
        grad = torch.zeros_like(leaf) if grad is None else grad
    loss = loss.detach().reshape(()) if isinstance(loss, torch.Tensor) else loss
    return r, adv, loss, grad


def _first_difference(expected: tuple, got: tuple) -> str | None:
    for part, e, g in zip(PARTS, expected, got):
        if part == "d loss / d logp" and g is None:
            return ("loss has no gradient with respect to logp: keep it a tensor built from logp "
                    "(no .item(), .detach() or torch.tensor(...) on the way)")
        if not close(e, g):
            return f"{part} differ" if part != "loss" else "loss differs"
    return None


def check_grpo_step(fn: Callable[..., tuple]) -> bool:
    """``fn(completions, answers, lengths, logp, old_logp, mask, group_size, max_length)`` -> (rewards, adv, loss).

    Rewards must equal :func:`supersmall.rewards.supersmall_reward` (eq. 6 + eq. 7), advantages
    :func:`supersmall.advantages.group_advantages` (``scale="group"``), loss
    :func:`supersmall.losses.policy_loss` (``aggregation="grpo"``, clip 0.2), and the gradient of the
    loss with respect to ``logp`` must agree too.
    """
    rng = random.Random(5)
    cases = _fixed_cases() + [_random_case(rng, i) for i in range(12)]

    def reference(*args, **kwargs):
        return _run(reference_grpo_step, args, kwargs)

    def student(*args, **kwargs):
        return _run(fn, args, kwargs)

    def compare(expected, got):
        return _first_difference(expected, got) is None

    def explain(expected, got):
        return f"first difference: {_first_difference(expected, got)}"

    def bug(**kw):
        return lambda *a, **k: _run(_variant_step, a, {**k, **kw})

    hints = [(bug(unbiased=False), "looks like the population std (ddof=0): TRL uses the unbiased std (n - 1)"),
             (bug(penalty=0.0), "looks like eq. 6 alone: eq. 7's -0.1 for overlong completions is missing"),
             (bug(aggregation="dapo"), "looks like one global token mean ('dapo'): 'grpo' averages each sequence "
                                       "over its own tokens, then the sequences")]
    return run_check("grpo_step", student, reference, cases, compare, explain=explain, hints=hints)


# --- 5.1: the gradient of one step, by hand ---------------------------------------------------------------
AGGREGATIONS = ("grpo", "dapo", "dr_grpo")


def reference_logp_gradient(rewards, lengths, group_size, T, aggregation="grpo", max_length=None):
    """d loss / d logp by autograd: group advantages (mean / unbiased std), the clipped loss at ratio 1 (the first
    update on a fresh batch, old_logp = logp), aggregated as ``aggregation``."""
    mask = (torch.arange(T)[None] < torch.tensor(lengths)[:, None]).float()
    logp = torch.zeros(len(lengths), T, requires_grad=True)
    adv = advantages.group_advantages(rewards, group_size, scale="group")
    loss, _ = losses.policy_loss(logp, logp.detach(), adv, mask, loss_type=aggregation, max_length=max_length)
    (grad,) = torch.autograd.grad(loss, logp)
    return grad


def buggy_logp_gradient(rewards, lengths, group_size, T, aggregation="grpo", max_length=None, sign=-1.0,
                        unbiased=True, weights=None, masked=True, scale="group"):
    """The closed form with one common bug injected (for the check's hints)."""
    B = len(lengths)
    r = torch.tensor(rewards, dtype=torch.float32).view(-1, group_size)
    centred = r - r.mean(1, keepdim=True)
    if scale == "group":
        std = r.std(1, keepdim=True, unbiased=unbiased) if group_size > 1 else torch.zeros_like(centred)
        centred = torch.where(centred == 0, torch.zeros_like(centred), centred / (std + 1e-6))
    adv = centred.flatten()
    n = torch.tensor(lengths, dtype=torch.float32)
    mask = (torch.arange(T)[None] < n[:, None]).float() if masked else torch.ones(B, T)
    kind = weights or aggregation
    w = {"grpo": 1 / (B * n.clamp(min=1)), "dapo": torch.full((B,), 1 / max(float(n.sum()), 1.0)),
         "dr_grpo": torch.full((B,), 1 / (B * (max_length or T))), "sum": torch.ones(B),
         "per_sequence": 1 / n.clamp(min=1)}[kind]
    return sign * adv[:, None] * w[:, None] * mask


def check_logp_gradient(fn: Callable[..., torch.Tensor]) -> bool:
    """``fn(rewards, lengths, group_size, T, aggregation="grpo", max_length=None)`` -> the (B, T) gradient of the
    loss with respect to ``logp`` at ratio 1, computed *without* autograd; compared with autograd through
    :func:`supersmall.losses.policy_loss` for ``aggregation`` in ``grpo``, ``dapo`` and ``dr_grpo``."""
    rng = random.Random(7)
    cases = [Case(([1.0, 0.0, 0.0, 0.0], [4, 4, 4, 4], 4, 6), label="one group, equal lengths"),
             Case(([1.0, 0.0, 1.0, 0.0], [2, 6, 2, 6], 2, 6), label="the same advantages, different lengths"),
             Case(([1.0, 1.0, 0.0, 1.0], [3, 5, 2, 4], 2, 6), label="an equal-reward group: no gradient at all"),
             Case(([1.0, 0.0, 0.9, -0.1], [0, 3, 6, 6], 4, 6), label="an empty completion (length 0)"),
             Case(([1.0, 0.0, 0.0, 0.0], [2, 6, 4, 4], 4, 6), {"aggregation": "dapo"}, label="dapo: one global token mean"),
             Case(([1.0, 0.0, 0.0, 0.0], [2, 6, 4, 4], 4, 6), {"aggregation": "dr_grpo", "max_length": 8},
                  label="dr_grpo: a constant B * max_length")]
    for i in range(24):
        G, P, T = rng.choice([2, 3, 4]), rng.randint(1, 3), rng.randint(2, 8)
        agg = AGGREGATIONS[i % 3]
        cases.append(Case(([rng.choice([0.0, 1.0, 0.9, -0.1]) for _ in range(G * P)],
                           [rng.randint(0, T) for _ in range(G * P)], G, T),
                          {"aggregation": agg, "max_length": rng.choice([None, T + 2]) if agg == "dr_grpo" else None},
                          label=f"random #{i + 1} ({agg})"))

    def student(*args, **kwargs):
        return torch.as_tensor(fn(*args, **kwargs), dtype=torch.float32)

    def bug(**kw):
        return lambda *a, **k: buggy_logp_gradient(*a, **k, **kw)

    hints = [(bug(sign=1.0), "the sign is flipped: the loss is -ratio * A, so its gradient is -A (descent raises "
                             "the log-probs of completions with A > 0)"),
             (bug(unbiased=False), "looks like the population std (ddof=0): the advantages use the unbiased std"),
             (bug(masked=False), "padding tokens get gradient: multiply by the mask"),
             (bug(weights="per_sequence"), "each sequence's 1 / length is there, but not the 1 / B of the mean over "
                                           "sequences"),
             (bug(weights="dapo"), "looks like dapo's 1 / (tokens in the batch) for 'grpo': grpo weighs each token "
                                   "1 / (B * its own sequence's length), so short completions get more per token"),
             (bug(weights="grpo"), "looks like grpo's 1 / (B * length) for every aggregation: dapo divides by the "
                                   "batch's token count, dr_grpo by B * max_length (T when max_length is None)"),
             (bug(scale="none"), "the advantages are not divided by the group std (that is scale='none')")]
    return run_check("logp_gradient", student, reference_logp_gradient, cases, hints=hints)
