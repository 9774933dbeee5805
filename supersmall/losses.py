"""The GRPO / ZeroGRPO objective, one readable step at a time.

Paper, eq. 2 (GRPO) and eq. 5 (ZeroGRPO = the same without the KL term)::

    J(theta) = E[ 1/G * sum_i  log pi(y_i | x) * A_i  -  beta * KL(pi || pi_ref) ]      (eq. 2)
    J(theta) = E[ 1/G * sum_i  log pi(y_i | x) * A_i ]                                  (eq. 5)

In practice (TRL, verl) the log-probability is replaced by PPO's clipped importance ratio per token,
and the per-token terms are averaged in one of several ways ("aggregation"). Every tensor below is
(B, T): B completions, T completion tokens, with ``mask`` 1 on real tokens and 0 on padding.
Functions return *losses* (to minimise), i.e. the negative objective, like TRL.

The paper's three KL arms (Table 3) are one formula with two switches:

    no-kl          policy_loss(..., beta=0)                      ZeroGRPO, eq. 5
    kl-nopenalty   policy_loss(..., ref_logp=ref, beta=0.04)     KL as a loss term (k3, TRL beta > 0)
    kl-penalty     kl_in_reward(rewards, sum(k1), beta=0.001)    KL subtracted from the reward (verl)
"""

from __future__ import annotations

import torch

AGGREGATIONS = ("grpo", "dapo", "bnpo", "dr_grpo", "group_token_mean", "sequence")
KL_KINDS = ("k1", "k2", "k3")


# --- KL estimators (Schulman, "Approximating KL divergence"), per token -----------------------------
def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from samples of pi.

    k1 = log pi - log pi_ref                    unbiased, high variance, can be negative
    k2 = (log pi - log pi_ref)^2 / 2            biased, low variance, >= 0
    k3 = exp(ref - logp) - (ref - logp) - 1     unbiased, low variance, >= 0 (TRL's beta > 0 term)
    """
    log_ratio = logp - ref_logp
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return log_ratio.pow(2) / 2
    if kind == "k3":
        return torch.exp(-log_ratio) + log_ratio - 1  # exp(ref - logp) - (ref - logp) - 1
    raise ValueError(f"kind must be one of {', '.join(KL_KINDS)}, got {kind!r}")


def kl_in_reward(rewards: torch.Tensor, kl_per_seq: torch.Tensor, beta: float) -> torch.Tensor:
    """The ``kl-penalty`` arm: r_i <- r_i - beta * sum_t k1_t, applied *before* the advantages.

    ``kl_per_seq`` is the summed k1 of each sequence (verl's ``use_kl_in_reward``). With beta > 0 a
    correct but "far from the reference" answer can end up with a negative reward.
    """
    return torch.as_tensor(rewards, dtype=torch.float32) - beta * kl_per_seq.to(torch.float32)


# --- the clipped surrogate, per token ---------------------------------------------------------------
def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
) -> torch.Tensor:
    """PPO-clip per-token loss, shape (B, T): ``-min(ratio * A, clip(ratio, 1-eps, 1+eps_high) * A)``.

    ``ratio = exp(logp - old_logp)``; with one update per generated batch (TRL's default
    ``num_iterations=1``) old_logp == logp.detach(), the ratio is exactly 1, the clip never acts and
    the gradient is ``-A * grad log pi``: eq. 5's policy-gradient term.
    ``clip_eps_high`` gives DAPO's asymmetric upper clip (defaults to ``clip_eps``).
    """
    high = clip_eps if clip_eps_high is None else clip_eps_high
    adv = adv.unsqueeze(-1) if adv.dim() == 1 else adv  # (B,) -> (B, 1), broadcast over tokens
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + high) * adv
    return -torch.min(unclipped, clipped)


# --- aggregation: how per-token terms become one number -------------------------------------------
def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    aggregation: str = "grpo",
    group_size: int | None = None,
    max_length: int | None = None,
) -> torch.Tensor:
    """Reduce a (B, T) per-token loss to a scalar. Names follow TRL's ``loss_type`` where they overlap.

    grpo              mean over sequences of (sum over its tokens / its length)     TRL "grpo"
    dapo / bnpo       sum over all tokens / number of tokens in the batch          TRL "dapo"/"bnpo" (1 process)
    dr_grpo           sum over all tokens / (B * max_length)                        TRL "dr_grpo" (max_length =
                      max_completion_length; defaults to T)
    group_token_mean  per group: sum over its tokens / sum of its lengths; mean     Small-Math-R1
                      over groups (needs group_size)
    sequence          mean over sequences of the summed per-token terms            eq. 5 as printed
    """
    m = mask.to(per_token.dtype)
    x = per_token * m
    if aggregation == "grpo":
        return (x.sum(-1) / m.sum(-1).clamp(min=1.0)).mean()
    if aggregation in ("dapo", "bnpo"):
        return x.sum() / m.sum().clamp(min=1.0)
    if aggregation == "dr_grpo":
        return x.sum() / (x.size(0) * (max_length or x.size(1)))
    if aggregation == "group_token_mean":
        if not group_size or x.size(0) % group_size:
            raise ValueError(f"group_token_mean needs group_size dividing the batch ({x.size(0)}), got {group_size}")
        per_group = x.view(-1, group_size, x.size(1)).sum(dim=(1, 2))
        lengths = m.view(-1, group_size, m.size(1)).sum(dim=(1, 2)).clamp(min=1.0)
        return (per_group / lengths).mean()
    if aggregation == "sequence":
        return x.sum(-1).mean()
    raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")


# --- the whole policy loss -------------------------------------------------------------------------
def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
    aggregation: str = "grpo",
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    group_size: int | None = None,
    max_length: int | None = None,
    clip_eps_high: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate (+ beta * k3 when ``ref_logp`` is given), aggregated. Returns (loss, metrics).

    Padded positions get exactly zero gradient: their log-probs are replaced by constants before
    anything is computed, so even -inf or NaN there cannot leak into the loss.
    """
    mask = mask.bool()
    zeros = torch.zeros_like(logp)
    logp = torch.where(mask, logp, zeros)
    old_logp = torch.where(mask, old_logp, zeros)
    per_token = clipped_surrogate(logp, old_logp, adv, clip_eps, clip_eps_high)  # eq. 5 term, PPO-clipped
    metrics: dict[str, float] = {}
    if ref_logp is not None and beta != 0.0:
        ref_logp = torch.where(mask, ref_logp, zeros)
        kl = kl_estimate(logp, ref_logp, "k3")  # eq. 2's KL term, k3 as in TRL
        per_token = per_token + beta * kl
        metrics["kl"] = float(_masked_mean(kl.detach(), mask))
    loss = aggregate(per_token, mask, aggregation, group_size=group_size, max_length=max_length)
    with torch.no_grad():
        ratio = torch.exp(logp - old_logp)
        a = adv.unsqueeze(-1) if adv.dim() == 1 else adv
        high = clip_eps if clip_eps_high is None else clip_eps_high
        clipped = ((ratio < 1 - clip_eps) & (a < 0)) | ((ratio > 1 + high) & (a > 0))
        metrics["clip_fraction"] = float(_masked_mean(clipped.float(), mask))
        metrics["ratio_mean"] = float(_masked_mean(ratio, mask))
    return loss, metrics


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)


def token_weights(lengths: list[int], aggregation: str, group_size: int | None = None,
                  max_length: int | None = None) -> torch.Tensor:
    """The gradient weight each token of each sequence gets under ``aggregation`` (for plots).

    With ratio 1 and advantage 1, d loss / d logp_t = -weight_t: a (B, max(lengths)) tensor.
    """
    T = max(lengths)
    mask = torch.tensor([[1.0] * n + [0.0] * (T - n) for n in lengths])
    logp = torch.zeros_like(mask, requires_grad=True)
    loss = aggregate(-logp, mask, aggregation, group_size=group_size, max_length=max_length)
    loss.backward()
    return -logp.grad
