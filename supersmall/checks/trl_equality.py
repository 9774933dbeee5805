"""The minimal loop's loss and gradient against TRL's on one batch (notebooks 00 and 05, ``tests/test_checks_trl_equality.py``).

Course grading beside the checks: :mod:`supersmall.grpo` is the loop, this module checks it against TRL.
"""

from __future__ import annotations

import torch

from supersmall import losses
from supersmall.config import Profile
from supersmall.grpo import sequence_logps


def check_against_trl(trainer, prompts: list[str], profile: Profile, group_size: int = 4,
                      seed: int = 0, old_logp_drift: float = 0.0) -> dict[str, float]:
    """This loop's loss and gradient against TRL's on one fixed batch, on the same weights.

    The batch is ``len(prompts) x group_size`` completions of random tokens and lengths with random
    advantages (and, when the trainer has a KL term, a reference that differs from the policy).
    ``old_logp_drift`` > 0 stands for a later update on a reused batch (``num_iterations`` > 1): the sampling
    policy's log-probs are the current ones plus Gaussian noise of that size, so the ratio is not 1 and the
    clip (clip-higher, GSPO's sequence ratio, CISPO's capped weight: whatever the profile sets) acts. TRL scores
    it with its own loss code, this module with :func:`supersmall.grpo.sequence_logps` + :func:`supersmall.losses.policy_loss`
    (steps 3 and 5 of the loop). ``trainer`` is a ``GRPOTrainer`` (:func:`supersmall.train.make_trainer`);
    prompts of equal token length avoid any padding ambiguity. Returns both losses, the largest
    ``|loss difference|``, the largest ``|gradient difference|`` over every parameter, the largest
    ``|gradient|`` for scale, and this loop's ``clip_fraction`` on the batch. This is the one place that calls TRL's private ``_compute_loss`` (TRL 1.16).
    """
    model, tok, t = trainer.model, trainer.processing_class, profile.train
    enc = tok([p for p in prompts for _ in range(group_size)], return_tensors="pt", add_special_tokens=False)
    prompt_ids, prompt_mask = enc["input_ids"], enc["attention_mask"]
    g = torch.Generator().manual_seed(seed)
    n = prompt_ids.shape[0]
    lengths = torch.randint(3, 12, (n,), generator=g)
    mask = (torch.arange(int(lengths.max()))[None] < lengths[:, None]).long()
    ids = torch.randint(6, len(tok), mask.shape, generator=g).masked_fill(mask == 0, tok.pad_token_id)
    adv = torch.randn(n, generator=g)
    beta = float(trainer.beta)
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": ids, "completion_mask": mask,
              "advantages": adv, "num_items_in_batch": mask.sum()}
    ref_logp = old_logp = None
    with torch.no_grad():
        logp0, _ = sequence_logps(model, prompt_ids, prompt_mask, ids, mask, t.temperature)
    if beta:
        ref_logp = inputs["ref_per_token_logps"] = logp0 + 0.3 * torch.randn(logp0.shape, generator=g)
    if old_logp_drift:  # TRL reads the sampling policy's log-probs from the batch when it has them
        old_logp = inputs["old_per_token_logps"] = logp0 + old_logp_drift * torch.randn(logp0.shape, generator=g)
    trainer.current_gradient_accumulation_steps = 1  # TRL sets it inside its training step
    model.zero_grad()
    trl_loss = trainer._compute_loss(model, inputs)
    trl_loss.backward()
    trl_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    logp, _ = sequence_logps(model, prompt_ids, prompt_mask, ids, mask, t.temperature)
    ours, metrics = losses.policy_loss(logp, logp.detach() if old_logp is None else old_logp, adv, mask,
                                       clip_eps=t.clip_eps, loss_type=t.loss_type,
                                       max_length=t.max_completion_length, group_size=group_size,
                                       ref_logp=ref_logp, beta=beta, clip_eps_high=t.clip_eps_high,
                                       importance_sampling_level=t.importance_sampling_level)
    ours.backward()
    result = {"trl_loss": trl_loss.item(), "minimal_loss": ours.item(), "clip_fraction": metrics["clip_fraction"],
              "loss_difference": abs(trl_loss.item() - ours.item()),
              "max_gradient_difference": max(float((a - p.grad).abs().max()) for a, p in zip(trl_grads, model.parameters())),
              "max_gradient": max(float(a.abs().max()) for a in trl_grads)}
    model.zero_grad()
    return result
