"""A hand-over to verl (volcengine/verl 0.9.1), where RL users go past TRL: ``supersmall export verl --profile P
--out DIR`` writes

- ``train.parquet``: the curriculum's prompts in the order training consumes them (stage after stage,
  ``prompts_per_step`` per step), in verl's RL dataset format; with ``data.shuffle=False`` verl keeps the order;
- ``reward_supersmall.py``: verl's ``compute_score(data_source, solution_str, ground_truth, extra_info)``
  calling the kit's own reward (:func:`supersmall.rewards.build_reward` with the profile's settings);
- ``profile.yaml``: the exact profile (the reward module reads it);
- ``run_verl.sh``: ``python -m verl.trainer.main_ppo`` with the profile mapped key by key (:func:`verl_args`),
  each key checked against verl's config (``tests/fullscale/verl_keys.txt``, from verl's
  ``verl/trainer/config/_generated_ppo_trainer.yaml``).

What does not carry over is listed in :data:`NOT_CARRIED` (and the README's table).
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path
from typing import Any

import yaml

from supersmall import rewards
from supersmall.config import Profile, load_profile
from supersmall.errors import UserError
from supersmall.trl_args import arm_betas, per_device_batch

VERL_VERSION = "0.9.1"  # the release whose config the mapping was checked against (tests/fullscale/verl_keys.txt)
REWARD_MODULE = "reward_supersmall.py"
# the kit's aggregation (TRL's loss_type) -> verl's actor.loss_agg_mode (verl/trainer/ppo/core_algos.py agg_loss)
LOSS_AGG = {"grpo": "seq-mean-token-mean",  # each sequence's token mean, then the mean over sequences
            "dapo": "token-mean", "bnpo": "token-mean", "cispo": "token-mean",  # every token of the batch at once
            "dr_grpo": "seq-mean-token-sum-norm"}  # token sums / (sequences x L_max): loss_scale_factor = L_max
# train.vllm_importance_sampling -> verl's algorithm.rollout_correction (rollout_is level, threshold form):
# truncate = TIS (clamp at the cap), mask = IcePop ("lower_upper": weights outside are zeroed; TRL sets no lower
# bound, so the lower is 0)
ROLLOUT_IS = {"token_truncate": ("token", "{cap}"), "sequence_truncate": ("sequence", "{cap}"),
              "token_mask": ("token", "0.0_{cap}"), "sequence_mask": ("sequence", "0.0_{cap}")}
NOT_CARRIED = {
    "stages as separate runs": "replicate trains each curriculum stage as its own run from the previous stage's "
                               "model (fresh optimizer and warm-up); verl runs the ordered data as one run",
    "train.mask_truncated_completions": "no verl key: truncated completions keep their loss",
    "train.kl_ratio_weighting": "no verl key (TRL's use_bias_correction_kl)",
    "eq. 7 length": "verl hands the reward the decoded text only: the length is the text re-tokenized (EOS "
                    "stripped), at most a token or two off TRL's completion_ids",
    "k3 clamp": "verl clamps k3 to [-10, 10] (TRL does not)",
    "raw prompts": "verl applies the chat template to every prompt: a raw-text profile's prompt becomes one user "
                   "message",
    "evaluation": "verl's validation is not the kit's protocol: evaluate verl's checkpoints with supersmall eval",
}


def _rollout_correction(t: Any) -> dict[str, Any]:
    if t.vllm_importance_sampling == "off":
        return {"algorithm.rollout_correction.rollout_is": None}
    level, threshold = ROLLOUT_IS[t.vllm_importance_sampling]
    return {"algorithm.rollout_correction.rollout_is": level,
            "algorithm.rollout_correction.rollout_is_threshold": threshold.format(cap=t.vllm_importance_sampling_cap)}


def verl_args(profile: Profile | str, out_dir: str | Path, arm: str | None = None) -> dict[str, Any]:
    """verl's Hydra overrides for a profile and arm, key by key (dotted verl key -> value). The three KL arms
    (Table 3): no-kl uses neither; kl-nopenalty the KL loss (``actor.use_kl_loss``, k3 as TRL); kl-penalty the
    KL in the reward (``algorithm.use_kl_in_reward``, k1 per token, summed by GRPO's outcome advantage), and
    the loss too when ``train.kl_penalty_loss``."""
    p = load_profile(profile)
    t, launch, out = p.train, p.launch, Path(out_dir).resolve()
    arm = arm or t.arm
    beta_loss, beta_reward = arm_betas(p, arm)
    if t.loss_type not in LOSS_AGG:
        raise UserError(f"train.loss_type {t.loss_type!r} has no verl aggregation: use one of "
                        f"{', '.join(LOSS_AGG)} to export to verl")
    if t.scale_rewards == "batch":
        raise UserError("train.scale_rewards 'batch' has no verl counterpart (verl scales within each group or not "
                        "at all): set train.scale_rewards to group or none to export to verl")
    steps = sum(s.steps for s in _stages(p))
    loss_mode = "cispo" if t.loss_type == "cispo" else "gspo" if t.importance_sampling_level == "sequence" \
        else "vanilla"
    micro = per_device_batch(p)
    args: dict[str, Any] = {
        "algorithm.adv_estimator": "grpo",
        "algorithm.norm_adv_by_std_in_grpo": t.scale_rewards == "group",
        "algorithm.use_kl_in_reward": beta_reward > 0,
        "algorithm.kl_penalty": "kl",  # k1, as supersmall.trl_kl
        "algorithm.kl_ctrl.type": "fixed",
        "algorithm.kl_ctrl.kl_coef": beta_reward,
        **_rollout_correction(t),
        "data.train_files": str(out / "train.parquet"),
        "data.val_files": str(out / "train.parquet"),  # verl needs one; validation is off (test_freq -1)
        "data.prompt_key": "prompt",
        "data.train_batch_size": t.prompts_per_step,
        "data.max_prompt_length": t.max_prompt_length,
        "data.max_response_length": t.max_completion_length,
        "data.shuffle": False,  # the curriculum's order
        "data.filter_overlong_prompts": False,  # the export already left out prompts over max_prompt_length
        "actor_rollout_ref.model.path": _model(p),
        "actor_rollout_ref.model.enable_gradient_checkpointing": t.gradient_checkpointing,
        "actor_rollout_ref.model.lora_rank": t.lora_rank,
        "actor_rollout_ref.model.lora_alpha": 2 * t.lora_rank if t.lora_rank else 16,
        "actor_rollout_ref.actor.optim.lr": t.learning_rate,
        "actor_rollout_ref.actor.optim.weight_decay": t.weight_decay,
        "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio": t.warmup_ratio,
        "actor_rollout_ref.actor.optim.clip_grad": t.max_grad_norm,
        "actor_rollout_ref.actor.optim.lr_scheduler_type": "cosine" if t.lr_scheduler_type == "cosine"
        else "constant",
        "actor_rollout_ref.actor.ppo_mini_batch_size": t.prompts_per_step,  # one update per batch (TRL's step)
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": micro,
        "actor_rollout_ref.actor.ppo_epochs": t.num_iterations,
        "actor_rollout_ref.actor.clip_ratio_low": t.clip_eps,
        "actor_rollout_ref.actor.clip_ratio_high": t.clip_eps_high if t.clip_eps_high is not None else t.clip_eps,
        "actor_rollout_ref.actor.loss_agg_mode": LOSS_AGG[t.loss_type],
        "actor_rollout_ref.actor.policy_loss.loss_mode": loss_mode,
        "actor_rollout_ref.actor.use_kl_loss": beta_loss > 0,
        "actor_rollout_ref.actor.kl_loss_coef": beta_loss,
        "actor_rollout_ref.actor.kl_loss_type": "k3",  # TRL's KL loss estimator
        "actor_rollout_ref.actor.entropy_coeff": 0,
        "actor_rollout_ref.actor.data_loader_seed": t.seed,
        "actor_rollout_ref.rollout.name": "vllm",
        "actor_rollout_ref.rollout.n": t.num_generations,
        "actor_rollout_ref.rollout.temperature": t.temperature,
        "actor_rollout_ref.rollout.top_p": t.top_p,
        "actor_rollout_ref.rollout.seed": t.seed,
        "actor_rollout_ref.rollout.tensor_model_parallel_size": 1,
        "actor_rollout_ref.rollout.gpu_memory_utilization": launch.vllm_gpu_memory_utilization,
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": micro,
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": micro,
        "reward.custom_reward_function.path": str(out / REWARD_MODULE),
        "reward.custom_reward_function.name": "compute_score",
        "trainer.total_training_steps": steps,
        "trainer.total_epochs": 1,
        "trainer.n_gpus_per_node": max(1, launch.num_gpus),
        "trainer.nnodes": launch.num_machines,
        "trainer.save_freq": t.save_steps or -1,
        "trainer.test_freq": -1,
        "trainer.val_before_train": False,
        "trainer.logger": ["console"],
        "trainer.project_name": "supersmall",
        "trainer.experiment_name": f"{p.name}-{arm}-seed{t.seed}",
        "trainer.default_local_dir": str(out / "checkpoints"),
    }
    if t.loss_type == "dr_grpo":  # Dr. GRPO divides by the completion cap, not the padded batch width
        args["actor_rollout_ref.actor.loss_scale_factor"] = t.max_completion_length
    return args


def _model(p: Profile) -> str:
    from supersmall.evaluate import model_path

    return model_path(p.model.name_or_path)


def _stages(p: Profile) -> list[Any]:
    from supersmall.curriculum import parse_stages

    return parse_stages(p.curriculum.stages)


def _hydra_value(value: Any) -> str:
    """One override's value as Hydra reads it (null, true/false, lists, and everything else as typed)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    text = str(value)
    return f"'{text}'" if any(c in text for c in " ,=[]{}") else text


def launch_script(args: dict[str, Any], python: str = "python3") -> str:
    """``run_verl.sh``: verl's trainer with every mapped key; extra overrides can be appended (``"$@"``)."""
    lines = [f"    {shlex.quote(f'{key}={_hydra_value(value)}')} \\" for key, value in args.items()]
    return ("#!/usr/bin/env bash\n# Written by supersmall export verl: the profile mapped key by key for verl "
            f"{VERL_VERSION} (see supersmall/fullscale/verl.py).\nset -euo pipefail\n"
            f"{python} -m verl.trainer.main_ppo \\\n" + "\n".join(lines) + '\n    "$@"\n')


def verl_rows(p: Profile, rows: list[dict[str, Any]], boundaries: list[Any]) -> list[dict[str, Any]]:
    """Training rows in verl's RL dataset format, in order: the prompt as chat messages, the gold answer as
    ``reward_model.ground_truth``, and where each row sits (step, stage, level) in ``extra_info``."""
    out = []
    for i, row in enumerate(rows):
        step = i // p.train.prompts_per_step
        stage = next((name for name, start, end in boundaries if start <= step < end), "")
        prompt = row["prompt"] if isinstance(row["prompt"], list) else [{"role": "user", "content": row["prompt"]}]
        out.append({"data_source": f"supersmall/{p.data.train}", "prompt": prompt, "ability": "math",
                    "reward_model": {"style": "rule", "ground_truth": str(row[p.reward.answer_column])},
                    "extra_info": {"index": i, "step": step, "stage": stage, "level": row.get("level")}})
    return out


def export(profile: Profile | str, out_dir: str | Path, arm: str | None = None) -> dict[str, Path]:
    """Write the hand-over (see the module docstring) and return its paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from supersmall.train import training_rows

    p = load_profile(profile)
    p = p.replace(**{"train.arm": arm or p.train.arm})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    args = verl_args(p, out, p.train.arm)
    rows, boundaries, _ = training_rows(p, AutoTokenizer.from_pretrained(_model(p)), curriculum=True)
    paths = {"data": out / "train.parquet", "reward": out / REWARD_MODULE, "profile": out / "profile.yaml",
             "script": out / "run_verl.sh"}
    pq.write_table(pa.Table.from_pylist(verl_rows(p, rows, boundaries)), paths["data"])
    paths["profile"].write_text(yaml.safe_dump(p.to_dict(), sort_keys=False))
    paths["reward"].write_text(REWARD_TEMPLATE)
    paths["script"].write_text(launch_script(args))
    paths["script"].chmod(0o755)
    return paths


REWARD_TEMPLATE = '''"""verl's reward for this export: the kit's own reward (supersmall.rewards) with the profile beside this file.
Written by supersmall export verl; needs the supersmall package on the verl host."""

from pathlib import Path

from supersmall.fullscale.verl import score

PROFILE = Path(__file__).with_name("profile.yaml")


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    return score(PROFILE, solution_str, ground_truth, extra_info)
'''


@functools.lru_cache(maxsize=4)
def _reward(profile_path: str) -> tuple[list[Any], list[float], Any]:
    p = load_profile(profile_path)
    funcs = rewards.build_reward(p.reward, p.train.max_completion_length, think_prefilled=p.model.think_prefill)
    weights = rewards.reward_weights(p.reward) or [1.0] * len(funcs)
    tokenizer = None
    if p.reward.length_unit == "tokens":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(_model(p))
    return funcs, weights, tokenizer


def score(profile_path: str | Path, solution_str: str, ground_truth: str, extra_info: dict | None = None) -> float:
    """The kit's reward of one completion, as TRL sums it (weights x functions). The length in tokens is
    ``extra_info["response_length"]`` when given, else the text re-tokenized by the profile's tokenizer."""
    funcs, weights, tokenizer = _reward(str(profile_path))
    n = (extra_info or {}).get("response_length")
    if n is None:
        n = len(tokenizer.encode(solution_str, add_special_tokens=False)) if tokenizer is not None else 0
    ids = [[0] * int(n)]
    return float(sum(w * f([solution_str], answer=[ground_truth], completion_ids=ids)[0]
                     for f, w in zip(funcs, weights)))
