"""One translation of a profile into the arguments of the libraries that run it: TRL's ``GRPOConfig``,
accelerate's config file (with DeepSpeed), and vLLM's settings. Training (:mod:`supersmall.train`) and
the launch plans (:mod:`supersmall.fullscale.launch`) both call :func:`grpo_config_kwargs`, so the plan a
replicator reads is exactly the config the run gets.

Every TRL default that changes the algorithm is set here from the profile, never left implicit:
``loss_type``, ``scale_rewards``, ``beta``, ``num_iterations``, the clip (``epsilon``, ``epsilon_high``),
``importance_sampling_level``, the vLLM importance-sampling correction, the KL's importance-ratio
weighting (``use_bias_correction_kl``) and ``mask_truncated_completions``.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from packaging.requirements import Requirement
from transformers import TrainingArguments

from supersmall.config import Profile
from supersmall.errors import UserError
from supersmall.paper import ARMS

TRL_LOSS_TYPES = ("grpo", "dapo", "bnpo", "dr_grpo", "cispo")
# transformers 5.2x renamed gradient_checkpointing (a deprecated alias since) to activation_checkpointing
CHECKPOINTING = ("activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
                 else "gradient_checkpointing")
# TRL metrics shown in the health panel, under the kit's names
TRL_METRICS = {"loss": "loss", "reward": "reward", "reward_std": "reward_std",
               "frac_reward_zero_std": "frac_reward_zero_std", "frac_groups_all_correct": "frac_groups_all_correct",
               "frac_groups_all_wrong": "frac_groups_all_wrong", "completions/clipped_ratio": "truncated_fraction",
               "completions/mean_length": "completion_length", "rewards/reasoning_rate/mean": "reasoning_rate",
               "entropy": "entropy", "grad_norm": "grad_norm", "kl": "kl", "clip_ratio/region_mean": "clip_fraction",
               "cispo_clip_ratio": "clip_fraction",  # loss_type cispo logs its capped weights under this name
               "sampling/importance_sampling_ratio/mean": "importance_ratio"}


def arm_betas(profile: Profile, arm: str) -> tuple[float, float]:
    """(beta of the KL loss term, beta of the KL-in-reward penalty) of one of Table 3's arms; kl-penalty keeps
    the KL loss too when ``train.kl_penalty_loss`` (the paper reading: Table 3 calls it standard GRPO, eq. 2)."""
    if arm not in ARMS:
        raise UserError(f"unknown arm {arm!r}; valid arms are: {', '.join(ARMS)}")
    t = profile.train
    loss = arm == "kl-nopenalty" or (arm == "kl-penalty" and t.kl_penalty_loss)
    return (t.beta_kl_loss if loss else 0.0, t.beta_kl_reward if arm == "kl-penalty" else 0.0)


LOCAL_HOSTS = ("", "127.0.0.1", "localhost")  # launch.vllm_server_host values that mean "a server on this host"


def local_vllm_server(profile: Profile) -> bool:
    """Server mode with the server on this host's last GPU (``launch.vllm_server_host`` empty or loopback)."""
    return profile.launch.vllm_mode == "server" and profile.launch.vllm_server_host in LOCAL_HOSTS


def training_processes(profile: Profile) -> int:
    """Processes that train ONE run, over all its hosts: on each of ``launch.num_machines`` hosts every GPU of
    the run (``launch.gpus_per_run``, 0 = ``num_gpus``) with vLLM colocated or on a remote server, all but one
    with a local vLLM server; on CPU ``launch.num_processes`` (DDP on gloo)."""
    launch = profile.launch
    if launch.num_gpus == 0:
        return launch.num_processes
    gpus = launch.gpus_per_run or launch.num_gpus
    return (gpus - 1 if local_vllm_server(profile) else gpus) * launch.num_machines


def per_device_batch(profile: Profile, procs: int | None = None) -> int:
    """Completions per process per micro-step (TRL's ``per_device_train_batch_size``), on ``procs`` training
    processes (default :func:`training_processes`); rounded down, as TRL runs it."""
    t = profile.train
    procs = procs or training_processes(profile)
    return max(1, t.prompts_per_step * t.num_generations // (procs * t.gradient_accumulation_steps))


def _vllm_args(profile: Profile) -> dict[str, Any]:
    launch, t = profile.launch, profile.train
    if launch.vllm_mode == "none":
        return {"use_vllm": False}
    out: dict[str, Any] = {"use_vllm": True, "vllm_mode": launch.vllm_mode,
                           # vLLM's context = prompt + completion (its default is the model's 131,072)
                           "vllm_max_model_length": t.max_prompt_length + t.max_completion_length}
    if launch.vllm_mode == "colocate":
        out["vllm_gpu_memory_utilization"] = launch.vllm_gpu_memory_utilization
        if launch.num_gpus == 0:  # vLLM's CPU build has no sleep mode (it frees CUDA memory); CPU weights in
            out["vllm_enable_sleep_mode"] = False  # RAM stay loaded and are synced every step (supersmall.vllm_cpu)
    else:
        # a local server listens on loopback; a remote one (trl vllm-serve on another host) at its address
        host = "127.0.0.1" if launch.vllm_server_host in LOCAL_HOSTS else launch.vllm_server_host
        out.update(vllm_server_host=host, vllm_server_port=launch.vllm_server_port)
    return out


def _importance_sampling(profile: Profile) -> dict[str, Any]:
    t = profile.train
    if t.vllm_importance_sampling == "off":
        return {"vllm_importance_sampling_correction": False}
    return {"vllm_importance_sampling_correction": True, "vllm_importance_sampling_mode": t.vllm_importance_sampling,
            "vllm_importance_sampling_clip_max": t.vllm_importance_sampling_cap}


def grpo_config_kwargs(profile: Profile, output_dir: str, arm: str | None = None, **overrides: Any) -> dict:
    """``trl.GRPOConfig`` keyword arguments for a profile and arm (the one translation; see the docstring).

    ``per_device_train_batch_size`` counts *completions* in TRL; one optimizer step consumes
    per_device x processes x accumulation = prompts_per_step x num_generations completions.
    """
    t = profile.train
    beta_loss, beta_reward = arm_betas(profile, arm or t.arm)
    if t.loss_type not in TRL_LOSS_TYPES:
        raise UserError(f"loss_type {t.loss_type!r} exists only in the minimal backend; TRL accepts "
                        f"{', '.join(TRL_LOSS_TYPES)} (use --backend minimal)")
    kwargs = dict(
        output_dir=output_dir, learning_rate=t.learning_rate, per_device_train_batch_size=per_device_batch(profile),
        gradient_accumulation_steps=t.gradient_accumulation_steps, num_generations=t.num_generations,
        max_completion_length=t.max_completion_length, temperature=t.temperature, top_p=t.top_p,
        loss_type=t.loss_type, scale_rewards=t.scale_rewards,
        # epsilon_high: DAPO's clip-higher; with loss_type cispo it is eps_max, the cap on the ratio itself
        epsilon=t.clip_eps, epsilon_high=t.clip_eps_high if t.clip_eps_high is not None else t.clip_eps,
        importance_sampling_level=t.importance_sampling_level,  # token, or sequence (GSPO)
        # kl-penalty: TRL builds and prepares the reference model when beta > 0; the kit moves the KL from the
        # loss into the reward (supersmall.train.KLPenaltyTrainer)
        beta=beta_loss or beta_reward,
        use_bias_correction_kl=t.kl_ratio_weighting, mask_truncated_completions=t.mask_truncated_completions,
        num_iterations=t.num_iterations, max_steps=t.steps, lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_ratio,  # transformers 5: a float < 1 is a ratio of max_steps
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, optim=t.optimizer, seed=t.seed,
        logging_steps=t.logging_steps, save_steps=t.save_steps, save_total_limit=t.save_total_limit,
        save_only_model=False, bf16=t.bf16, **{CHECKPOINTING: t.gradient_checkpointing},
        shuffle_dataset=False,  # the kit orders the data itself (curriculum stages)
        report_to=[] if t.report_to == "none" else [t.report_to], disable_tqdm=True,
        **_importance_sampling(profile), **_vllm_args(profile),
    )
    if t.force_max_length:  # the canary's worst case: no rollout ends before the cap (vLLM / transformers names)
        key = "min_tokens" if kwargs["use_vllm"] else "min_new_tokens"
        kwargs["generation_kwargs"] = {key: t.max_completion_length}
    if profile.launch.num_gpus == 0:
        kwargs["use_cpu"] = True
        if training_processes(profile) > 1:
            kwargs["ddp_backend"] = "gloo"
    kwargs.update(overrides)
    return kwargs


def accelerate_config(num_processes: int, zero_stage: int = 2, mixed_precision: str = "bf16", num_machines: int = 1,
                      machine_rank: int = 0, main_process_ip: str = "", main_process_port: int = 29500
                      ) -> dict[str, Any]:
    """An accelerate config (the same fields as TRL's ``accelerate_configs/zero2.yaml``). ``num_processes`` counts
    every host's processes (accelerate's meaning); across hosts each one passes its own ``--machine_rank``."""
    cfg: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE", "debug": False, "machine_rank": machine_rank,
        "main_training_function": "main", "mixed_precision": mixed_precision, "num_machines": num_machines,
        "num_processes": num_processes, "rdzv_backend": "static", "same_network": True, "tpu_env": [],
        "tpu_use_cluster": False, "tpu_use_sudo": False, "use_cpu": False, "downcast_bf16": "no",
    }
    if num_machines > 1:
        cfg.update(main_process_ip=main_process_ip, main_process_port=main_process_port)
    if zero_stage:
        cfg["distributed_type"] = "DEEPSPEED"
        cfg["deepspeed_config"] = {"deepspeed_multinode_launcher": "standard", "offload_optimizer_device": "none",
                                   "offload_param_device": "none", "zero3_init_flag": False, "zero_stage": zero_stage}
    else:
        cfg["distributed_type"] = "MULTI_GPU" if num_processes > 1 else "NO"
    return cfg


def lora_config_kwargs(profile: Profile) -> dict[str, Any] | None:
    """``peft.LoraConfig`` arguments for ``train.lora_rank`` > 0 (every linear layer of a Qwen2 model), else None.

    ``lora_alpha`` = 2r: the update is scaled by alpha / r = 2 at every rank (LoRA Without Regret's alpha 32 at
    r = 16, the rank single-gpu uses). ``lora_dropout`` (``train.lora_dropout``, 0 in the profiles): TRL computes the
    loss's log-probs with the model in training mode, so dropout would be on there while vLLM samples from the
    merged weights without it; at 0 the policy is scored as it was sampled (the importance ratio sees no noise)."""
    t = profile.train
    r = t.lora_rank
    if not r:
        return None
    return {"r": r, "lora_alpha": 2 * r, "lora_dropout": t.lora_dropout, "task_type": "CAUSAL_LM",
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


def trl_vllm_range() -> str | None:
    """The vLLM version range the installed TRL declares for its ``vllm`` extra, e.g. '<=0.31.0,>=0.22.0'."""
    try:
        reqs = metadata.requires("trl") or []
    except metadata.PackageNotFoundError:
        return None
    for line in reqs:
        req = Requirement(line)
        if req.name == "vllm" and req.marker is not None and "vllm" in str(req.marker):
            return str(req.specifier)
    return None
