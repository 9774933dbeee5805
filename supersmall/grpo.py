"""The GRPO loop, written to be read top to bottom (CleanRL's shape): the same algorithm TRL's
``GRPOTrainer`` runs (a test checks that both give the same loss and gradient on one batch), in one
function per step. Notebook 05 walks through it.

    one step =  sample G completions per prompt        pi_theta_old(. | x)
             -> reward each one                        eq. 6 + eq. 7 (or any TRL reward function)
             -> group-relative advantages              A_i = (r_i - mean_G r) / std_G r   (eq. 2 / 5)
             -> policy loss                            -1/G sum_i ratio_i A_i (clipped)  [+ beta KL]
             -> one optimizer step                     (num_iterations of them per sampled batch)

ZeroGRPO (the paper's eq. 5) is this loop with beta = 0: no reference model, no KL term.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from supersmall import advantages, grading, losses
from supersmall.config import Profile
from supersmall.data import prompt_text
from supersmall.rewards import correctness
from supersmall.runcard import checkpoint_dir, checkpoint_step, latest_checkpoint


# --- helpers out of the reader's way ------------------------------------------------------------------
def sequence_logps(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature: float = 1.0):
    """Per-token log pi(y_t | x, y_<t) of the completions, shape (B, T), and the per-token entropy.

    Position ids follow the attention mask (left-padded prompts), as ``generate`` used when sampling;
    logits are divided by the sampling temperature, as TRL does.
    """
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention = torch.cat([prompt_mask.long(), completion_mask.long()], dim=1)
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention, position_ids=position_ids).logits
    logits = logits[:, prompt_ids.size(1) - 1: -1] / temperature
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    token_logp = logprobs.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    entropy = -(logprobs.exp() * logprobs).sum(-1)
    return token_logp, entropy


def mask_after_eos(completion_ids: torch.Tensor, eos_id: int, pad_id: int):
    """(ids with padding after the first EOS, mask that keeps the EOS token as TRL does, truncated rows)."""
    is_eos = completion_ids == eos_id
    width = completion_ids.size(1)
    first = torch.where(is_eos.any(1), is_eos.float().argmax(1), torch.full_like(is_eos[:, 0], width, dtype=torch.long))
    mask = (torch.arange(width).expand_as(completion_ids) <= first.unsqueeze(1)).long()
    return completion_ids.masked_fill(mask == 0, pad_id), mask, ~is_eos.any(1)


def decode(tokenizer, completion_ids: torch.Tensor, mask: torch.Tensor) -> tuple[list[list[int]], list[str]]:
    """Token id lists (EOS kept, for the length penalty) and texts (EOS dropped) of the completions."""
    ids = [row[: int(m.sum())].tolist() for row, m in zip(completion_ids, mask)]
    texts = [tokenizer.decode([i for i in x if i != tokenizer.eos_token_id], skip_special_tokens=True) for x in ids]
    return ids, texts


# --- one step -------------------------------------------------------------------------------------------
@dataclass
class Rollout:
    """Steps 1-4 of one step: a sampled, scored batch, reused for ``train.num_iterations`` updates."""
    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    mask: torch.Tensor
    adv: torch.Tensor
    old_logp: torch.Tensor | None  # log pi_theta_old at sampling time (None: one update, old = logp.detach())
    ref_logp: torch.Tensor | None  # the frozen reference's, for the KL arms
    metrics: dict[str, float]  # the batch's reward, length and reasoning figures


@dataclass(frozen=True)
class Objective:
    """What a step optimises beyond the profile's settings: its arm's two KL weights (``trl_args.arm_betas``) and the
    reward functions with their weights (``train.reward_functions``)::

        Objective(*arm_betas(profile, "no-kl"), *reward_functions(profile))    # ZeroGRPO: both betas 0
    """

    beta_loss: float  # eq. 2's beta: k3 as a loss term (kl-nopenalty)
    beta_reward: float  # KL subtracted from the reward (kl-penalty)
    reward_funcs: list[Callable]
    reward_weights: list[float] | None = None  # None: 1.0 each


def rollout(model, ref_model, tokenizer, prompts: list[dict[str, Any]], profile: Profile, objective: Objective
            ) -> Rollout:
    """Steps 1-4 of a GRPO step on ``prompts`` (rows with ``prompt`` and the reward's columns), no gradient."""
    t, o = profile.train, objective
    beta_loss, beta_reward, reward_funcs = o.beta_loss, o.beta_reward, o.reward_funcs
    G = t.num_generations
    # 1. sample G completions per prompt from the current policy (left-padded prompts)
    tokenizer.padding_side = "left"
    enc = tokenizer([prompt_text(p["prompt"], tokenizer) for p in prompts], return_tensors="pt", padding=True,
                    add_special_tokens=False)
    prompt_ids = enc["input_ids"].repeat_interleave(G, dim=0)
    prompt_mask = enc["attention_mask"].repeat_interleave(G, dim=0)
    model.eval()
    with torch.no_grad():
        out = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, do_sample=True,
                             temperature=t.temperature, top_p=t.top_p, max_new_tokens=t.max_completion_length,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    model.train()
    completion_ids, mask, truncated = mask_after_eos(out[:, prompt_ids.size(1):], tokenizer.eos_token_id,
                                                     tokenizer.pad_token_id)
    ids_list, texts = decode(tokenizer, completion_ids, mask)
    # 2. rewards: the same reward functions TRL gets, summed with their weights            (eq. 6 + eq. 7)
    rows = [p for p in prompts for _ in range(G)]
    columns = {k: [r[k] for r in rows] for k in rows[0] if k != "prompt"}
    weights = o.reward_weights or [1.0] * len(reward_funcs)
    per_func = [f(completions=texts, completion_ids=ids_list, prompts=[r["prompt"] for r in rows], **columns)
                for f in reward_funcs]
    rewards = torch.tensor([sum(w * fr[i] for w, fr in zip(weights, per_func)) for i in range(len(texts))])
    # the grader's verdict alone (eq. 6), for the no-signal split: groups all correct vs all wrong
    correct = correctness(texts, answer_column=profile.reward.answer_column, timeout=profile.reward.grading_timeout,
                          **columns)
    # 3. per-token log-probs of the sampling policy pi_theta_old (kept fixed while the batch is reused) and,
    #    for the KL arms, of the reference
    old_logp = ref_logp = None
    with torch.no_grad():
        if t.num_iterations > 1 or beta_reward:
            old_logp, _ = sequence_logps(model, prompt_ids, prompt_mask, completion_ids, mask, t.temperature)
        if beta_loss or beta_reward:
            ref_logp, _ = sequence_logps(ref_model, prompt_ids, prompt_mask, completion_ids, mask, t.temperature)
    if beta_reward:  # kl-penalty arm: r_i <- r_i - beta * sum_t k1 (before the advantages, as verl does)
        k1 = losses.kl_estimate(old_logp, ref_logp, "k1") * mask
        rewards = losses.kl_in_reward(rewards, k1.sum(-1), beta_reward)
    # 4. group-relative advantages                                                    (eq. 2 / eq. 5)
    adv = advantages.group_advantages(rewards, G, scale=t.scale_rewards)
    metrics = {"reward": float(rewards.mean()), "reward_std": float(rewards.std()),
               "frac_reward_zero_std": advantages.zero_std_fraction(rewards, G), **advantages.outcome_split(correct, G),
               "truncated_fraction": float(truncated.float().mean()),
               "completion_length": float(mask.sum(1).float().mean()),
               "reasoning_rate": sum(grading.reasoned(x) for x in texts) / len(texts)}
    return Rollout(prompt_ids, prompt_mask, completion_ids, mask, adv, old_logp if t.num_iterations > 1 else None,
                   ref_logp if beta_loss else None, metrics)


def rollout_and_update(model, ref_model, tokenizer, optimizer, prompts: list[dict[str, Any]], profile: Profile,
                       objective: Objective, batch: Rollout | None = None) -> dict[str, float]:
    """One GRPO / ZeroGRPO step on ``prompts``: steps 1-4 (:func:`rollout`), then one update; returns metrics.

    ``batch``: a rollout sampled earlier, reused instead (``train.num_iterations`` > 1, off-policy updates)."""
    t = profile.train
    b = batch  # 1.-4. sample, reward, (old / reference log-probs), advantages: or the batch being reused
    if b is None:
        b = rollout(model, ref_model, tokenizer, prompts, profile, objective)
    # 5. log-probs under the current policy, with gradient, and the policy loss. One update per batch:
    #    old_logp = logp.detach(), the ratio is 1 (eq. 2; eq. 5 when beta = 0). Reused (num_iterations > 1):
    #    old_logp stays the sampling policy's, the ratio drifts from 1 and the clip acts. Per token, or one
    #    ratio per sequence (GSPO); loss_type cispo: a clipped, detached weight on log pi (CISPO)
    logp, entropy = sequence_logps(model, b.prompt_ids, b.prompt_mask, b.completion_ids, b.mask, t.temperature)
    old_logp = logp.detach() if b.old_logp is None else b.old_logp
    loss, metrics = losses.policy_loss(logp, old_logp, b.adv, b.mask, clip_eps=t.clip_eps,
                                       loss_type=t.loss_type, ref_logp=b.ref_logp, beta=objective.beta_loss,
                                       group_size=t.num_generations, max_length=t.max_completion_length,
                                       clip_eps_high=t.clip_eps_high,
                                       importance_sampling_level=t.importance_sampling_level)
    # 6. one optimizer step, gradient clipped
    optimizer.zero_grad()
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t.max_grad_norm)
    optimizer.step()
    return {"loss": float(loss.detach()), **b.metrics,
            "entropy": float((entropy.detach() * b.mask).sum() / b.mask.sum()), "grad_norm": float(grad_norm),
            **({"kl": metrics["kl"]} if "kl" in metrics else {}), "clip_fraction": metrics["clip_fraction"]}


# --- the loop ---------------------------------------------------------------------------------------------
def train_loop(model_path: str, profile: Profile, out: Path, rows: list[dict[str, Any]], objective: Objective,
               on_step: Callable[[int, dict[str, float], Any, Any], None], progress: bool = True):
    """``train.steps`` minimal steps over ``rows`` (``prompts_per_step`` each), resumable from ``out``'s last
    checkpoint; ``on_step(step, metrics, model, tokenizer)`` after each. Returns (model, tokenizer, start)."""
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t = profile.train
    ckpt = latest_checkpoint(out)
    start = checkpoint_step(ckpt)
    source = str(ckpt) if ckpt else model_path
    model = AutoModelForCausalLM.from_pretrained(source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    kl = objective.beta_loss or objective.beta_reward
    ref_model = AutoModelForCausalLM.from_pretrained(model_path).eval() if kl else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay)
    if ckpt:
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt"))
        torch.set_rng_state(torch.load(ckpt / "rng.pt"))
        print(f"resuming from {ckpt.name}: step {start} of {t.steps}")
    else:
        torch.manual_seed(t.seed)
    bar = tqdm(range(start, t.steps), desc="GRPO (minimal loop)", disable=not progress, initial=start, total=t.steps)
    mu, batch = t.num_iterations, None
    for step in bar:
        # a fresh batch every num_iterations (mu) steps, as TRL: step k updates on batch k // mu, and every step
        # is one optimizer update (a run resumed mid-batch samples its batch again)
        prompts = rows[(step // mu) * t.prompts_per_step: (step // mu + 1) * t.prompts_per_step]
        if mu > 1 and (step % mu == 0 or batch is None):
            batch = rollout(model, ref_model, tokenizer, prompts, profile, objective)
        m = rollout_and_update(model, ref_model, tokenizer, optimizer, prompts, profile, objective, batch=batch)
        on_step(step + 1, m, model, tokenizer)
        bar.set_postfix(reward=f"{m['reward']:.2f}", reasoning=f"{m['reasoning_rate']:.2f}")
        if t.save_steps and (step + 1) % t.save_steps == 0 and step + 1 < t.steps:
            d = checkpoint_dir(out, step + 1)
            model.save_pretrained(d)
            tokenizer.save_pretrained(d)
            torch.save(optimizer.state_dict(), d / "optimizer.pt")
            torch.save(torch.get_rng_state(), d / "rng.pt")
    return model, tokenizer, start
