"""Every profile value's range, in one table (:data:`RULES`): ``{"section.key": (ok(value) -> bool, what is
expected)}``. :func:`supersmall.config.check_profile` applies it to every profile it builds, so a bad value is one
sentence (``train.steps = -5 is not valid: expected a number > 0``); types are checked by the dataclasses'
annotations in :mod:`supersmall.config`, and a key whose range is any value of its type has no rule.
"""

from __future__ import annotations

from typing import Any

from supersmall import paper
from supersmall.curriculum import SCHEDULES, SCHEMES, parse_levels, parse_stages
from supersmall.losses import IMPORTANCE_LEVELS, LOSS_TYPES
from supersmall.rewards import REWARDS


def _parses(fn) -> Any:
    def ok(v: Any) -> bool:
        try:
            fn(v)
            return True
        except ValueError:
            return False
    return ok


def _one_of(*values: Any) -> tuple[Any, str]:
    return (lambda v: v in values), "one of " + ", ".join(map(str, values))


_POSITIVE = (lambda v: v > 0), "a number > 0"
_NON_NEGATIVE = (lambda v: v >= 0), "a number >= 0"
_FRACTION = (lambda v: 0 < v <= 1), "a number in (0, 1]"
# Every value's range, checked in one place (types are checked by the dataclasses' annotations).
RULES: dict[str, tuple[Any, str]] = {
    "model.dtype": _one_of("float32", "bfloat16", "float16"),
    "train.backend": _one_of("trl", "minimal"),
    "train.arm": _one_of(*paper.ARMS),
    "train.steps": _POSITIVE, "train.learning_rate": _POSITIVE, "train.prompts_per_step": _POSITIVE,
    "train.num_generations": ((lambda v: v >= 2), "an integer >= 2 (GRPO compares completions within a group)"),
    "train.temperature": _POSITIVE, "train.top_p": _FRACTION,
    "train.max_prompt_length": _POSITIVE, "train.max_completion_length": _POSITIVE,
    "train.loss_type": _one_of(*LOSS_TYPES), "train.scale_rewards": _one_of("group", "none", "batch"),
    "train.clip_eps": _NON_NEGATIVE, "train.beta_kl_loss": _NON_NEGATIVE, "train.beta_kl_reward": _NON_NEGATIVE,
    "train.num_iterations": _POSITIVE, "train.importance_sampling_level": _one_of(*IMPORTANCE_LEVELS),
    "train.warmup_ratio": ((lambda v: 0 <= v < 1), "a number in [0, 1)"),
    "train.weight_decay": _NON_NEGATIVE, "train.max_grad_norm": _POSITIVE,
    "train.gradient_accumulation_steps": _POSITIVE, "train.logging_steps": _POSITIVE,
    "train.save_steps": _NON_NEGATIVE, "train.save_total_limit": _POSITIVE,
    "train.vllm_importance_sampling": _one_of("off", "token_truncate", "token_mask", "sequence_truncate",
                                              "sequence_mask"),
    "train.vllm_importance_sampling_cap": _POSITIVE, "train.lora_rank": _NON_NEGATIVE,
    "train.lora_dropout": ((lambda v: 0 <= v < 1), "a number in [0, 1)"),
    "reward.name": _one_of(*REWARDS), "reward.length_threshold": _FRACTION,
    "reward.length_unit": _one_of("tokens", "chars"), "reward.grading_timeout": _POSITIVE,
    "curriculum.scheme": _one_of(*SCHEMES), "curriculum.schedule": _one_of(*SCHEDULES),
    "curriculum.stages": (_parses(parse_stages), "stages like '1-3:100,4:100,5:100' (levels:steps)"),
    "eval.max_new_tokens": _POSITIVE, "eval.temperature": _NON_NEGATIVE, "eval.top_p": _FRACTION,
    "eval.n_samples": _POSITIVE, "eval.batch_size": _POSITIVE, "eval.backend": _one_of("hf", "vllm"),
    "eval.prompt_template": _one_of("raw", "chat"),
    "eval.problems_per_level": _NON_NEGATIVE, "eval.min_new_tokens": _NON_NEGATIVE,
    "eval.budgets": ((lambda v: all(b > 0 for b in v)), "a list of token budgets > 0"),
    "data.train": _one_of("tiny", "deepmath", "open_rs"),
    "data.levels": (_parses(parse_levels), "levels like '1-3', '4' or '5+6'"),
    "launch.num_gpus": _NON_NEGATIVE, "launch.num_processes": _POSITIVE, "launch.gpu_memory_gb": _NON_NEGATIVE,
    "launch.vllm_mode": _one_of("none", "server", "colocate"), "launch.vllm_gpu_memory_utilization": _FRACTION,
    "launch.deepspeed_stage": _one_of(0, 1, 2, 3), "launch.usd_per_gpu_hour": _NON_NEGATIVE,
    "launch.gpu_usable_gb": _NON_NEGATIVE, "launch.nccl_p2p": _one_of("auto", "on", "off"),
    "launch.gpus_per_run": _NON_NEGATIVE,
    "launch.num_machines": ((lambda v: v >= 1), "an integer >= 1 (hosts of one run)"),
    "launch.machine_rank": _NON_NEGATIVE,
    "launch.main_process_ip": ((lambda v: not any(c.isspace() for c in v)), "a host name or IP address, no blanks"),
    "launch.main_process_port": ((lambda v: 1 <= v <= 65535), "a TCP port in 1..65535"),
    "launch.vllm_server_host": ((lambda v: not any(c.isspace() for c in v)),
                                "a host name or IP address, no blanks (\"\" = a local server)"),
    "launch.vllm_server_port": ((lambda v: 1 <= v <= 65535), "a TCP port in 1..65535"),
    "notebooks.cell_timeout": _POSITIVE, "notebooks.steps": _POSITIVE,
    "notebooks.seeds": ((lambda v: len(v) >= 1), "a non-empty list of seeds"),
    "notebooks.claim_seeds": ((lambda v: len(v) >= 1), "a non-empty list of seeds (5 or more to decide a paper claim)"),
}
