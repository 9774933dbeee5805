"""The kit's overrides of TRL's private methods: the no-signal split (every run) and the kl-penalty arm.

:class:`OutcomeSplitTrainer` (every TRL run) logs, beside TRL's ``frac_reward_zero_std``, the share of groups all
correct and all wrong (:func:`supersmall.advantages.outcome_split`) from the weight-0 ``correct`` column
(:func:`supersmall.rewards.correct_column`), after TRL gathers the batch's rewards from every process (a group may
span two processes, so a reward function, which sees one process's rows, could not count groups).


Table 3's third arm subtracts the KL from the reward instead of adding it to the loss (verl's
``use_kl_in_reward``)::

    r_i <- r_i - beta * sum_t k1_t,   k1_t = log pi_theta(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t)

TRL builds, prepares and runs the reference model when ``beta > 0`` (on the training device, at the
sampling temperature, chunked). :class:`KLPenaltyTrainer` reuses that path and changes three of TRL's
steps, named in :attr:`KLPenaltyTrainer.TRL_HOOKS` with the parameters the kit relies on;
``tests/test_train.py`` checks TRL still has them, so a TRL release that renames one fails loudly. The
readable loop (:func:`supersmall.grpo.rollout_and_update`) does the same in three lines.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import GRPOTrainer

from supersmall import advantages, losses
from supersmall.rewards import CORRECT


def kl_penalty(completions: list, kl_penalty: list[float], **kwargs: Any) -> list[float]:
    """The kl-penalty arm's reward column, -beta * sum_t k1_t per completion, which
    :class:`KLPenaltyTrainer` writes into each row before TRL calls the reward functions."""
    return list(kl_penalty)


class OutcomeSplitTrainer(GRPOTrainer):
    """TRL's ``GRPOTrainer`` that also logs ``frac_groups_all_correct`` and ``frac_groups_all_wrong`` per step: its one
    override, ``_calculate_rewards`` (:attr:`TRL_HOOKS`), reads the gathered column of the reward function whose
    ``__name__`` is ``correct`` (:func:`supersmall.rewards.correct_column`, weight 0; without one it logs nothing
    more)."""

    TRL_HOOKS = {"_calculate_rewards": ("inputs", "prompts", "completions", "completion_ids_list")}

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)  # all processes'
        # by the function's own __name__ (TRL names a partial by the function it wraps: correctness)
        names = [getattr(f, "__name__", None) for f in self.reward_funcs]
        if CORRECT in names:
            mode = "train" if self.model.training else "eval"
            group = self.num_generations if mode == "train" else self.num_generations_eval
            column = per_func[:, names.index(CORRECT)].float().cpu()
            for key, value in advantages.outcome_split(column, group).items():
                self._metrics[mode][key].append(value)
        return per_func


class KLPenaltyTrainer(OutcomeSplitTrainer):
    """The kl-penalty arm on TRL's own reference path: r_i <- r_i - beta * sum_t k1 (verl's use_kl_in_reward).

    Its three overrides, in the order TRL calls them in one step (:attr:`TRL_HOOKS`):

    1. ``_get_per_token_logps_and_entropies``: keeps the reference log-probs TRL computes for the batch;
    2. ``_calculate_rewards``: adds the policy's log-probs, writes -beta * sum_t k1 into each row's
       ``kl_penalty`` column (read by the :func:`kl_penalty` reward function, weight 1) and logs the KL;
    3. ``_compute_loss``: computes TRL's loss with beta = ``kl_loss_beta``: 0, the KL is in the reward, not in
       the loss, unless ``train.kl_penalty_loss`` keeps a KL loss too (Table 3's paper reading, eq. 2).

    ``kl_reward_beta`` is the penalty's coefficient (None: TRL's ``beta``, when the reward penalty is all).
    """

    TRL_HOOKS = {"_get_per_token_logps_and_entropies": ("model", "input_ids", "attention_mask", "logits_to_keep",
                                                         "batch_size"),
                 "_calculate_rewards": ("inputs", "prompts", "completions", "completion_ids_list"),
                 "_compute_loss": ("model", "inputs")}
    _kl_batch: tuple | None = None  # (ids, mask, logits_to_keep, reference log-probs, batch size) of this batch
    kl_reward_beta: float | None = None
    kl_loss_beta: float = 0.0

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, *a, **kw):
        out = super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep, *a, **kw)
        if model is self.ref_model:
            self._kl_batch = (input_ids, attention_mask, logits_to_keep, out[0], kw.get("batch_size"))
        return out

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        if self._kl_batch is None:
            raise RuntimeError("kl-penalty: TRL computed no reference log-probs for this batch (a LoRA run has "
                               "no separate reference model, or TRL changed); see KLPenaltyTrainer")
        (ids, att, keep, ref_logp, bs), self._kl_batch = self._kl_batch, None
        with torch.no_grad():
            logp, _, _ = super()._get_per_token_logps_and_entropies(self.model, ids, att, keep, batch_size=bs)
        lengths = torch.tensor([len(c) for c in completion_ids_list], device=logp.device)
        mask = (torch.arange(keep, device=logp.device)[None, :] < lengths[:, None]).float()
        k1 = losses.kl_estimate(logp, ref_logp, "k1") * mask
        beta = self.beta if self.kl_reward_beta is None else self.kl_reward_beta
        penalty = losses.kl_in_reward(torch.zeros(len(lengths), device=logp.device), k1.sum(-1), beta)
        mean_kl = self.accelerator.gather(k1.sum().reshape(1)).sum() / self.accelerator.gather(mask.sum().reshape(1)).sum()
        # with a KL loss too, TRL logs its own "kl" (k3 in the loss); the reward's k1 goes beside it
        key = "kl_reward" if self.kl_loss_beta else "kl"
        self._metrics["train" if self.model.training else "eval"][key].append(float(mean_kl))
        inputs = [{**row, "kl_penalty": float(p)} for row, p in zip(inputs, penalty.tolist())]
        return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)

    def _compute_loss(self, model, inputs):
        beta, self.beta = self.beta, self.kl_loss_beta
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self.beta = beta


__all__ = ["KLPenaltyTrainer", "OutcomeSplitTrainer", "kl_penalty"]
