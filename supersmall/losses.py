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

Off-policy updates (old_logp from the sampling policy, TRL ``num_iterations`` > 1) and the modern variants are
switches of :func:`policy_loss` too: ``clip_eps_high`` (DAPO's clip-higher), ``importance_sampling_level=
"sequence"`` (GSPO), ``loss_type="cispo"`` (CISPO); notebook 05, section 6.
"""

from __future__ import annotations

import torch

AGGREGATIONS = ("grpo", "dapo", "bnpo", "dr_grpo", "group_token_mean", "sequence")
# A loss type (TRL's ``loss_type`` names, and the profile's ``train.loss_type``) is a per-token surrogate and an
# aggregation: every aggregation with PPO's clipped surrogate, and "cispo" (MiniMax-M1's clipped weight on log pi,
# summed over the batch's tokens as TRL does: dapo's aggregation)
LOSS_PARTS: dict[str, tuple[str, str]] = {**{a: ("clipped", a) for a in AGGREGATIONS}, "cispo": ("cispo", "dapo")}
LOSS_TYPES = tuple(LOSS_PARTS)
KL_KINDS = ("k1", "k2", "k3")


# --- KL estimators (Schulman, "Approximating KL divergence"), per token -----------------------------
def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from samples of pi.

    k1 = log pi - log pi_ref                    unbiased value, can be negative; expected gradient 0
    k2 = (log pi - log pi_ref)^2 / 2            biased value, >= 0; gradient of KL(pi || pi_ref)
    k3 = exp(ref - logp) - (ref - logp) - 1     unbiased value, >= 0; gradient of KL(pi_ref || pi) (TRL's beta term)

    Which one has the smaller spread depends on how far pi is from pi_ref (Schulman's note: k3's is small
    near the reference); as a loss what matters is the gradient, measured by :func:`supersmall.checks.kl_gradients`.
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
IMPORTANCE_LEVELS = ("token", "sequence")


def importance_ratio(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor | None = None,
                     level: str = "token") -> torch.Tensor:
    """The importance ratio of the current policy to the sampling one: (B, T) per token, or (B, 1) per sequence.

    token     r_{i,t} = pi(y_{i,t} | .) / pi_old(y_{i,t} | .) = exp(logp - old_logp)          PPO, GRPO
    sequence  s_i = exp( 1/|y_i| sum_t (logp - old_logp) )                                 GSPO, eq. 7 of
              (the length-normalised sequence ratio (pi(y_i|x) / pi_old(y_i|x))^(1/|y_i|);   arXiv:2507.18071;
              TRL ``importance_sampling_level="sequence"``: the masked mean of the log-ratios)
    """
    log_ratio = logp - old_logp
    if level == "token":
        return torch.exp(log_ratio)
    if level == "sequence":
        if mask is None:
            raise ValueError("a sequence-level ratio needs the mask (the mean runs over real tokens only)")
        m = mask.to(log_ratio.dtype)
        return torch.exp((log_ratio * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp(min=1.0))
    raise ValueError(f"level must be one of {', '.join(IMPORTANCE_LEVELS)}, got {level!r}")


def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    level: str = "token",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """PPO-clip per-token loss, shape (B, T): ``-min(ratio * A, clip(ratio, 1-eps, 1+eps_high) * A)``.

    ``ratio = exp(logp - old_logp)``; with one update per generated batch (TRL's default
    ``num_iterations=1``) old_logp == logp.detach(), the ratio is exactly 1, the clip never acts and
    the gradient is ``-A * grad log pi``: eq. 5's policy-gradient term. With ``num_iterations`` > 1 the
    later updates reuse the batch: old_logp stays the sampling policy's, the ratio moves away from 1 and
    the clip stops a token's push once its ratio leaves [1 - eps, 1 + eps_high] in the advantage's direction.
    ``clip_eps_high`` gives DAPO's asymmetric upper clip, "clip-higher" (defaults to ``clip_eps``; DAPO,
    arXiv:2503.14476, eq. 8-10, uses 0.2 / 0.28). ``level="sequence"`` (GSPO) clips one ratio per sequence,
    :func:`importance_ratio`, the same for all its tokens (GSPO eq. 5; TRL's code: ``coef_1`` of shape (B, 1)).
    """
    high = clip_eps if clip_eps_high is None else clip_eps_high
    adv = adv.unsqueeze(-1) if adv.dim() == 1 else adv  # (B,) -> (B, 1), broadcast over tokens
    ratio = importance_ratio(logp, old_logp, mask, level)  # (B, T), or (B, 1) for GSPO
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + high) * adv
    return (-torch.min(unclipped, clipped)).expand_as(logp)


def cispo_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    adv: torch.Tensor,
    eps_max: float,
    level: str = "token",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """CISPO's per-token loss, shape (B, T): ``-sg(min(ratio, eps_max)) * A * logp``.

    MiniMax-M1 (arXiv:2506.13585, eq. 4-5) clips the importance *weight*, not the update:
    J = 1/sum|y_i| * sum_i sum_t sg(clip(r_{i,t}, 1 - eps_low, 1 + eps_high)) * A_i * log pi(y_{i,t} | .),
    so every token keeps a gradient (PPO's clip drops it). TRL 1.16 (``loss_type="cispo"``,
    ``grpo_trainer._compute_loss``): ``clamp(coef_1, max=epsilon_high).detach()``, an upper bound only, and
    ``epsilon_high`` *is* the cap eps_max on the ratio itself (ScaleRL, arXiv:2510.13786, recommends 5.0).
    The value is -A * logp at ratio 1 (not 0): only its gradient, -sg(w) * A * grad log pi, means anything.
    """
    adv = adv.unsqueeze(-1) if adv.dim() == 1 else adv
    weight = torch.clamp(importance_ratio(logp, old_logp, mask, level), max=eps_max).detach()  # sg(.)
    return -weight * adv * logp


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
    loss_type: str = "grpo",
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    importance_sampling_level: str = "token",
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    group_size: int | None = None,
    max_length: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of ``loss_type`` (:data:`LOSS_PARTS`: its per-token surrogate and its aggregation), + beta * k3
    when ``ref_logp`` is given. Returns (loss, metrics).

    Surrogate ``clipped``: :func:`clipped_surrogate` (PPO's clip, ``clip_eps`` / ``clip_eps_high``); ``cispo``
    (TRL's ``loss_type="cispo"``): :func:`cispo_surrogate` with the cap eps_max = ``clip_eps_high``
    (``clip_eps`` when None, as TRL). ``importance_sampling_level="sequence"`` is GSPO's one ratio per sequence.
    ``group_size`` and ``max_length`` are read by the aggregations that need them (:func:`aggregate`).
    Metrics: ``clip_fraction`` as TRL logs it (``clip_ratio/region_mean``: tokens, or sequences for GSPO,
    whose ratio is past the clip in the advantage's direction; for CISPO ``cispo_clip_ratio``: ratio >
    eps_max with A > 0) and ``ratio_mean``.

    Padded positions get exactly zero gradient: their log-probs are replaced by constants before
    anything is computed, so even -inf or NaN there cannot leak into the loss.
    """
    if loss_type not in LOSS_PARTS:
        raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {loss_type!r}")
    surrogate, aggregation = LOSS_PARTS[loss_type]
    mask = mask.bool()
    zeros = torch.zeros_like(logp)
    logp = torch.where(mask, logp, zeros)
    old_logp = torch.where(mask, old_logp, zeros)
    level, high = importance_sampling_level, clip_eps if clip_eps_high is None else clip_eps_high
    if surrogate == "cispo":  # MiniMax-M1's CISPO: clipped weight, no dropped tokens
        per_token = cispo_surrogate(logp, old_logp, adv, high, level, mask)
    else:  # eq. 5 term, PPO-clipped (per token; per sequence for GSPO)
        per_token = clipped_surrogate(logp, old_logp, adv, clip_eps, clip_eps_high, level, mask)
    metrics: dict[str, float] = {}
    if ref_logp is not None and beta != 0.0:
        ref_logp = torch.where(mask, ref_logp, zeros)
        kl = kl_estimate(logp, ref_logp, "k3")  # eq. 2's KL term, k3 as in TRL
        per_token = per_token + beta * kl
        metrics["kl"] = float(_masked_mean(kl.detach(), mask))
    loss = aggregate(per_token, mask, aggregation, group_size=group_size, max_length=max_length)
    with torch.no_grad():
        ratio = importance_ratio(logp, old_logp, mask, level)
        a = adv.unsqueeze(-1) if adv.dim() == 1 else adv
        if surrogate == "cispo":
            clipped = (ratio > high) & (a > 0)
        else:
            clipped = ((ratio < 1 - clip_eps) & (a < 0)) | ((ratio > 1 + high) & (a > 0))
        # GSPO: one ratio per sequence, averaged over sequences (TRL's global_masked_mean of a (B, 1) tensor)
        counted = mask.any(-1, keepdim=True) if ratio.size(-1) == 1 else mask
        clipped = clipped.expand_as(counted) if clipped.size(-1) == 1 else clipped
        metrics["clip_fraction"] = float(_masked_mean(clipped.float(), counted))
        metrics["ratio_mean"] = float(_masked_mean(ratio.expand_as(counted), counted))
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
