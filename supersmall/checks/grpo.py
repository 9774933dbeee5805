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
    loss, _ = losses.policy_loss(logp, old_logp, adv, mask, clip_eps=clip_eps, aggregation="grpo",
                                 group_size=group_size)
    return r, adv, loss


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

    return run_check("grpo_step", student, reference, cases, compare, explain=explain)
