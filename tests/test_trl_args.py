"""supersmall.trl_args: every TRL default that changes the algorithm is pinned from the profile, in the
``GRPOConfig`` the run gets (so a key dropped from the translation fails here, not silently at full scale)."""

import warnings

import pytest
from trl import GRPOConfig

from supersmall import paper
from supersmall.config import load_profile
from supersmall.errors import UserError
from supersmall.trl_args import (
    CHECKPOINTING,
    accelerate_config,
    arm_betas,
    grpo_config_kwargs,
    per_device_batch,
    training_processes,
    trl_vllm_range,
)

PROFILES = ("a6000x4", "rehearsal", "tiny")
# the keys that change the algorithm (or what a run keeps), each set explicitly from the profile
PINNED = ("loss_type", "scale_rewards", "beta", "vllm_importance_sampling_correction", "use_bias_correction_kl",
          "mask_truncated_completions", "save_total_limit", "report_to", "num_iterations", "epsilon",
          "epsilon_high", "temperature", "top_p", "max_completion_length", "num_generations", "shuffle_dataset",
          "bf16", CHECKPOINTING, "learning_rate", "lr_scheduler_type", "optim", "seed", "max_steps",
          "importance_sampling_level")


def build(kwargs: dict) -> GRPOConfig:
    """``GRPOConfig(**kwargs)`` on this CPU machine: ``use_cpu`` lets it accept bf16, and ``ddp_backend`` (set for
    the 2-process rehearsal) needs torchrun's environment, so it is checked on the dict instead."""
    kw = {k: v for k, v in kwargs.items() if k != "ddp_backend"}
    return GRPOConfig(**{**kw, "use_cpu": True})


@pytest.fixture(scope="module")
def trl_defaults(tmp_path_factory):
    with warnings.catch_warnings():  # TRL's own default still sets the deprecated `gradient_checkpointing`
        warnings.filterwarnings("ignore", message="`gradient_checkpointing` is deprecated", category=FutureWarning)
        return GRPOConfig(output_dir=str(tmp_path_factory.mktemp("defaults")), use_cpu=True)


@pytest.mark.parametrize("arm", paper.ARMS)
@pytest.mark.parametrize("name", PROFILES)
def test_the_config_carries_the_profiles_algorithm(name, arm, tmp_path):
    p = load_profile(name)
    t = p.train
    kwargs = grpo_config_kwargs(p, str(tmp_path), arm=arm)
    for key in PINNED:
        assert key in kwargs, f"{key} is left to TRL's default"
    cfg = build(kwargs)
    assert cfg.output_dir == str(tmp_path)
    assert cfg.loss_type == t.loss_type
    assert cfg.scale_rewards == t.scale_rewards == "group"
    # beta: 0 for ZeroGRPO, the KL loss coefficient for kl-nopenalty, the reward coefficient for kl-penalty (TRL
    # needs beta > 0 to build the reference model; KLPenaltyTrainer moves the KL into the reward)
    assert cfg.beta == {"no-kl": 0.0, "kl-nopenalty": t.beta_kl_loss, "kl-penalty": t.beta_kl_reward}[arm]
    assert cfg.beta == {"no-kl": 0.0, "kl-nopenalty": 0.04, "kl-penalty": 0.001}[arm]
    assert cfg.vllm_importance_sampling_correction is True
    assert cfg.vllm_importance_sampling_mode == t.vllm_importance_sampling == "token_truncate"
    assert cfg.vllm_importance_sampling_clip_max == t.vllm_importance_sampling_cap == 3.0
    assert cfg.use_bias_correction_kl is False and cfg.use_bias_correction_kl == t.kl_ratio_weighting
    assert cfg.mask_truncated_completions is False and cfg.mask_truncated_completions == t.mask_truncated_completions
    assert cfg.save_total_limit == t.save_total_limit
    assert cfg.report_to == ([] if t.report_to == "none" else [t.report_to])
    assert cfg.shuffle_dataset is False  # the kit orders the data (curriculum stages)
    assert cfg.epsilon == cfg.epsilon_high == t.clip_eps
    assert (cfg.temperature, cfg.top_p, cfg.max_completion_length) == (t.temperature, t.top_p, t.max_completion_length)
    assert (cfg.num_generations, cfg.num_iterations, cfg.max_steps, cfg.seed) == \
        (t.num_generations, t.num_iterations, t.steps, t.seed)
    assert cfg.bf16 == t.bf16 and getattr(cfg, CHECKPOINTING) == t.gradient_checkpointing
    # per_device_train_batch_size counts completions: one optimizer step = prompts_per_step x G completions
    procs = training_processes(p)
    assert cfg.per_device_train_batch_size == per_device_batch(p)
    assert cfg.per_device_train_batch_size * procs * cfg.gradient_accumulation_steps == \
        t.prompts_per_step * t.num_generations
    if p.launch.vllm_mode != "none":
        # vLLM's context is prompt + completion (its default would be the model's 131,072 tokens)
        assert cfg.use_vllm and cfg.vllm_max_model_length == t.max_prompt_length + t.max_completion_length
    else:
        assert cfg.use_vllm is False
    if p.launch.num_gpus == 0:
        assert kwargs["use_cpu"] is True
        assert kwargs.get("ddp_backend") == ("gloo" if procs > 1 else None)


def test_the_pins_differ_from_trls_defaults(tmp_path, trl_defaults):
    """Where a profile departs from TRL's default, a dropped key would change the run: these comparisons fail then."""
    d = trl_defaults
    full = build(grpo_config_kwargs(load_profile("a6000x4"), str(tmp_path), arm="kl-nopenalty"))
    assert (full.loss_type, d.loss_type) == ("dr_grpo", "dapo")
    assert (full.vllm_importance_sampling_mode, d.vllm_importance_sampling_mode) == ("token_truncate", "sequence_mask")
    assert (full.use_bias_correction_kl, d.use_bias_correction_kl) == (False, True)
    assert (full.save_total_limit, d.save_total_limit) == (2, None)
    assert (full.report_to, d.report_to) == (["tensorboard"], [])
    assert (full.vllm_max_model_length, d.vllm_max_model_length) == (1024 + 4096, None)
    assert (full.beta, d.beta) == (0.04, 0.0)
    assert (full.temperature, d.temperature) == (0.6, 1.0)
    assert (full.max_completion_length, d.max_completion_length) == (4096, 512)
    assert (full.shuffle_dataset, d.shuffle_dataset) == (False, True)
    assert (full.epsilon_high, d.epsilon_high) == (0.2, None)
    assert (full.lr_scheduler_type, d.lr_scheduler_type) == ("constant", "linear")
    assert (full.optim, d.optim) == ("adamw_torch", "adamw_torch_fused")
    assert (full.use_vllm, d.use_vllm) == (True, False)
    assert (full.vllm_gpu_memory_utilization, d.vllm_gpu_memory_utilization) == (0.25, 0.3)  # sized from its KV need
    tiny = build(grpo_config_kwargs(load_profile("tiny"), str(tmp_path), arm="kl-penalty"))
    assert (tiny.loss_type, tiny.bf16, getattr(tiny, CHECKPOINTING)) == ("grpo", False, False)
    assert (d.bf16, getattr(d, CHECKPOINTING)) == (True, True)
    assert (tiny.beta, tiny.save_total_limit) == (0.001, 1)
    rehearsal = build(grpo_config_kwargs(load_profile("rehearsal"), str(tmp_path)))
    assert (rehearsal.loss_type, rehearsal.report_to, rehearsal.temperature) == ("dr_grpo", ["tensorboard"], 0.6)


@pytest.mark.parametrize("key,value,field,expected", [
    ("train.scale_rewards", "none", "scale_rewards", "none"),
    ("train.scale_rewards", "batch", "scale_rewards", "batch"),
    ("train.scale_rewards", "group", "scale_rewards", "group"),  # TRL's own words, passed through
    ("train.mask_truncated_completions", True, "mask_truncated_completions", True),
    ("train.kl_ratio_weighting", True, "use_bias_correction_kl", True),
    ("train.vllm_importance_sampling_cap", 2.0, "vllm_importance_sampling_clip_max", 2.0),
    ("train.vllm_importance_sampling", "sequence_mask", "vllm_importance_sampling_mode", "sequence_mask"),
    ("train.vllm_importance_sampling", "off", "vllm_importance_sampling_correction", False),
    ("train.loss_type", "grpo", "loss_type", "grpo"),
    ("train.clip_eps_high", 0.28, "epsilon_high", 0.28),
    ("train.num_iterations", 2, "num_iterations", 2),
    ("train.importance_sampling_level", "sequence", "importance_sampling_level", "sequence"),
    ("train.report_to", "none", "report_to", []),
    ("train.save_total_limit", 5, "save_total_limit", 5),
    ("train.max_prompt_length", 2048, "vllm_max_model_length", 2048 + 4096),
])
def test_each_setting_reaches_the_config(key, value, field, expected, tmp_path):
    """The settings whose value equals TRL's default in the shipped profiles: changed, they must reach TRL."""
    p = load_profile("a6000x4", **{key: value})
    assert getattr(build(grpo_config_kwargs(p, str(tmp_path))), field) == expected


def test_processes_and_batches(tmp_path):
    full = load_profile("a6000x4")
    assert training_processes(full) == 4 and per_device_batch(full) == 8
    server = full.replace(**{"launch.vllm_mode": "server", "train.num_generations": 6})
    assert training_processes(server) == 3 and per_device_batch(server) == 8  # 96 / (3 x 4)
    kw = grpo_config_kwargs(server, str(tmp_path))
    assert kw["vllm_mode"] == "server" and kw["vllm_server_port"] == 8000 and "vllm_gpu_memory_utilization" not in kw
    assert training_processes(load_profile("rehearsal")) == 2 and per_device_batch(load_profile("rehearsal")) == 8
    assert training_processes(load_profile("tiny")) == 1 and per_device_batch(load_profile("tiny")) == 128
    assert grpo_config_kwargs(load_profile("tiny"), str(tmp_path), max_steps=1)["max_steps"] == 1  # overrides


def test_arm_betas_and_errors(tmp_path):
    p = load_profile("a6000x4")
    assert arm_betas(p, "no-kl") == (0.0, 0.0)
    assert arm_betas(p, "kl-nopenalty") == (0.04, 0.0)
    assert arm_betas(p, "kl-penalty") == (0.0, 0.001)
    with pytest.raises(UserError, match="valid arms"):
        arm_betas(p, "kl")
    with pytest.raises(UserError, match="valid arms"):
        grpo_config_kwargs(load_profile("tiny"), str(tmp_path), arm="kl")
    with pytest.raises(UserError, match="minimal backend"):
        grpo_config_kwargs(load_profile("tiny", **{"train.loss_type": "group_token_mean"}), str(tmp_path))


def test_accelerate_config_and_vllm_range():
    from accelerate.commands.config.config_args import ClusterConfig

    zero2 = accelerate_config(4, 2, "bf16")
    assert zero2["distributed_type"] == "DEEPSPEED" and zero2["deepspeed_config"]["zero_stage"] == 2
    assert zero2["num_processes"] == 4 and zero2["mixed_precision"] == "bf16"
    assert accelerate_config(2, 0)["distributed_type"] == "MULTI_GPU" and accelerate_config(1, 0)["distributed_type"] == "NO"
    for cfg in (zero2, accelerate_config(2, 0, "no")):
        ClusterConfig(**cfg)  # accelerate's own schema takes every field
    spec = trl_vllm_range()
    assert spec is not None and "0.31.0" in spec and ">=" in spec


def test_cispo_reaches_trl_with_its_cap_and_its_clip_metric(tmp_path):
    """loss_type cispo: TRL's own objective (the kit's losses.cispo_surrogate), eps_max in epsilon_high, and its clip
    metric read as the kit's clip_fraction."""
    from supersmall.trl_args import TRL_METRICS

    p = load_profile("tiny", **{"train.loss_type": "cispo", "train.clip_eps_high": 5.0})
    cfg = build(grpo_config_kwargs(p, str(tmp_path)))
    assert (cfg.loss_type, cfg.epsilon_high, cfg.epsilon) == ("cispo", 5.0, 0.2)
    assert TRL_METRICS["cispo_clip_ratio"] == TRL_METRICS["clip_ratio/region_mean"] == "clip_fraction"
    with pytest.raises(UserError, match="minimal backend"):
        grpo_config_kwargs(load_profile("tiny", **{"train.loss_type": "group_token_mean"}), str(tmp_path))


def test_colocated_vllm_on_cpu_turns_sleep_mode_off_and_gpus_keep_trls_default():
    cpu = grpo_config_kwargs(load_profile("rehearsal", **{"launch.vllm_mode": "colocate"}), "x")
    assert cpu["use_vllm"] and cpu["vllm_mode"] == "colocate" and cpu["vllm_enable_sleep_mode"] is False
    assert cpu["vllm_importance_sampling_correction"] is True  # the profile's correction travels with it
    gpu = grpo_config_kwargs(load_profile("a6000x4"), "x")
    assert gpu["vllm_mode"] == "colocate" and "vllm_enable_sleep_mode" not in gpu
