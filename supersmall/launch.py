"""Full scale: plans for the paper's runs on 4 GPUs (accelerate + DeepSpeed ZeRO-2 + vLLM), validated
before anything is launched, and a time/cost estimate.

    plan = make_plan("a6000x4", arm="no-kl", stage="level1-3", out_dir="runs/full")
    problems = validate(plan)          # one sentence each, with the fix
    print("\\n".join(plan.commands))

Nothing here needs a GPU: plans, configs, commands and estimates are built and checked on CPU; the
commands then run the ordinary TRL + accelerate + DeepSpeed + vLLM path. vLLM has two modes:
``colocate`` (all 4 GPUs train and generate; the kit's default) and ``server`` (one GPU serves
``trl vllm-serve``, three train, as Open-RS did).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from supersmall.config import Profile, load_profile, paper_runs
from supersmall.curriculum import PRESETS

# The paper's stages (Sec. 4.4) and Table 3's arms. The arms train on level 1-3.
STAGES = {"1-3": "level1-3", "4": "level4", "5": "level5", "5.5": "level5.5", "6": "level6"}
ARMS = ("no-kl", "kl-nopenalty", "kl-penalty")

# Output tokens/s per GPU for a 1.5B model generating with vLLM on a 48 GB Ampere card (A6000/A40).
# Sources: the range the issue gives (1.3-2.4k tok/s, from vLLM's published throughput on Ampere and
# Open-RS's 24 h on 4x A40); we use the geometric middle and show the range.
THROUGHPUT_TOKENS_PER_S = {"low": 1300.0, "mid": 1770.0, "high": 2400.0}
# Dense bf16 tensor throughput of an RTX A6000 (NVIDIA datasheet: 309.7 TFLOPS with sparsity, so
# 154.8 dense) and a utilisation of 30%, typical for RL fine-tuning with short sequences.
A6000_BF16_TFLOPS = 154.8
MFU = 0.30
PARAMS_1P5B = 1.78e9  # DeepSeek-R1-Distill-Qwen-1.5B incl. embeddings


@dataclass
class Plan:
    profile: str
    arm: str
    stage: str
    levels: tuple[int, ...]
    out_dir: str
    num_processes: int
    vllm_mode: str
    accelerate_config: dict[str, Any]
    grpo_args: dict[str, Any]
    env: dict[str, str]
    commands: list[str]
    model: str
    settings: Profile = field(default_factory=Profile)  # the exact profile the plan was made from
    estimate: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def accelerate_config(num_processes: int, zero_stage: int = 2, mixed_precision: str = "bf16") -> dict[str, Any]:
    """An accelerate config (the same fields as TRL's ``accelerate_configs/zero2.yaml``)."""
    cfg: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE", "debug": False, "machine_rank": 0, "main_training_function": "main",
        "mixed_precision": mixed_precision, "num_machines": 1, "num_processes": num_processes,
        "rdzv_backend": "static", "same_network": True, "tpu_env": [], "tpu_use_cluster": False,
        "tpu_use_sudo": False, "use_cpu": False, "downcast_bf16": "no",
    }
    if zero_stage:
        cfg["distributed_type"] = "DEEPSPEED"
        cfg["deepspeed_config"] = {"deepspeed_multinode_launcher": "standard", "offload_optimizer_device": "none",
                                   "offload_param_device": "none", "zero3_init_flag": False, "zero_stage": zero_stage}
    else:
        cfg["distributed_type"] = "MULTI_GPU" if num_processes > 1 else "NO"
    return cfg


def training_processes(profile: Profile) -> int:
    """GPUs that train: all of them with vLLM colocated, all but one with a vLLM server."""
    n = max(1, profile.launch.num_gpus)
    return n - 1 if profile.launch.vllm_mode == "server" else n


def trl_overrides(profile: Profile) -> dict[str, Any]:
    """``GRPOConfig`` arguments that depend on the launch (processes, vLLM, precision)."""
    t, launch = profile.train, profile.launch
    procs = training_processes(profile)
    completions = t.prompts_per_step * t.num_generations
    per_device = completions // max(1, procs * t.gradient_accumulation_steps)
    out: dict[str, Any] = {"per_device_train_batch_size": max(1, per_device), "bf16": t.bf16,
                           "gradient_checkpointing": t.gradient_checkpointing}
    if launch.vllm_mode in ("server", "colocate"):
        out["use_vllm"] = True
        out["vllm_mode"] = launch.vllm_mode
        if launch.vllm_mode == "colocate":
            out["vllm_gpu_memory_utilization"] = 0.35
        else:
            out["vllm_server_host"] = "127.0.0.1"
            out["vllm_server_port"] = 8000
    return out


def _stage_levels(stage: str) -> tuple[int, ...]:
    name = STAGES.get(stage, stage)
    if name not in PRESETS:
        raise ValueError(f"unknown stage {stage!r}; valid stages are: {', '.join(STAGES)}")
    return PRESETS[name]


def make_plan(profile: Profile | str = "a6000x4", arm: str = "no-kl", stage: str = "1-3",
              out_dir: str = "runs/full", model: str | None = None) -> Plan:
    """The whole plan for one (arm, stage) run; see the module docstring."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; valid arms are: {', '.join(ARMS)}")
    preset = paper_runs()
    name = STAGES.get(stage, stage)
    if name not in preset["stages"]:
        raise ValueError(f"unknown stage {stage!r}; valid stages are: {', '.join(STAGES)}")
    # the paper's run: the stage's steps and the arm's KL coefficients from the preset file
    p = load_profile(profile).replace(**{"train.steps": preset["stages"][name]["steps"],
                                         **{f"train.{k}": v for k, v in preset["arms"][arm].items()}})
    levels = _stage_levels(stage)
    run_dir = f"{out_dir}/{arm}/{name}"
    procs = training_processes(p)
    from supersmall.train import grpo_config_kwargs

    grpo = grpo_config_kwargs(p, run_dir, arm=arm, **trl_overrides(p))
    model = model or p.model.name_or_path
    env = {"TOKENIZERS_PARALLELISM": "false", "NCCL_ASYNC_ERROR_HANDLING": "1", "PYTHONUNBUFFERED": "1"}
    train_gpus = ",".join(str(i) for i in range(procs))
    cfg_path = f"{out_dir}/accelerate_{procs}gpu.yaml"
    level_text = f"{min(levels)}-{max(levels)}" if len(levels) > 1 else str(levels[0])
    profile_arg = p.name if Path(str(profile)).suffix not in (".yaml", ".yml") else str(profile)
    sets = {"data.levels": level_text, "model.name_or_path": model, "train.steps": p.train.steps,
            **{f"train.{k}": v for k, v in preset["arms"][arm].items()}}
    set_args = " ".join(f"--set {k}={shlex.quote(str(v))}" for k, v in sets.items())
    train_cmd = (f"CUDA_VISIBLE_DEVICES={train_gpus} accelerate launch --config_file {cfg_path} -m supersmall.cli "
                 f"train --profile {shlex.quote(profile_arg)} --arm {arm} {set_args} --out {run_dir}")
    commands = []
    if p.launch.vllm_mode == "server":
        serve_gpu = str(p.launch.num_gpus - 1)
        commands.append(f"CUDA_VISIBLE_DEVICES={serve_gpu} trl vllm-serve --model {shlex.quote(model)} "
                        f"--host 127.0.0.1 --port 8000 &  # wait until it logs 'Uvicorn running'")
    commands.append(train_cmd)
    plan = Plan(profile=p.name, arm=arm, stage=name, levels=levels, out_dir=run_dir, num_processes=procs,
                vllm_mode=p.launch.vllm_mode, accelerate_config=accelerate_config(procs, p.launch.deepspeed_stage),
                grpo_args=grpo, env=env, commands=commands, model=model, settings=p)
    plan.estimate = estimate(p, arm, stage=name)
    return plan


def write_plan_files(plan: Plan, out_dir: str | Path) -> list[Path]:
    """The accelerate config YAML the commands refer to."""
    import yaml

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"accelerate_{plan.num_processes}gpu.yaml"
    path.write_text(yaml.safe_dump(plan.accelerate_config, sort_keys=False))
    return [path]


# --- validation -------------------------------------------------------------------------------------
def memory_needed_gb(profile: Profile, procs: int) -> float:
    """Rough per-GPU memory for full fine-tuning with ZeRO-2 (bf16 weights, fp32 Adam, sharded)."""
    params = PARAMS_1P5B if "1.5B" in profile.model.name_or_path else 1e6
    weights = 2 * params  # bf16
    grads_and_adam = (2 + 12) * params / (procs if profile.launch.deepspeed_stage >= 2 else 1)
    activations = 4e9 if profile.train.gradient_checkpointing else 16e9
    vllm = 0.35 * profile.launch.gpu_memory_gb * 2**30 if profile.launch.vllm_mode == "colocate" else 0.0
    return (weights + grads_and_adam + activations + vllm) / 2**30


def validate(plan: Plan, check_hardware: bool = True, tokenizer: Any = None,
             dataset_columns: list[str] | None = None) -> list[str]:
    """Problems with a plan, one sentence each with the fix (empty list = ready to launch)."""
    p = plan.settings
    t = p.train
    errors: list[str] = []
    completions = t.prompts_per_step * t.num_generations
    procs = plan.num_processes
    per_device = plan.grpo_args["per_device_train_batch_size"]
    if completions % (procs * t.gradient_accumulation_steps) != 0:
        errors.append(f"{completions} completions per step ({t.prompts_per_step} prompts x G={t.num_generations}) "
                      f"do not split over {procs} training processes x {t.gradient_accumulation_steps} accumulation "
                      f"steps: make prompts_per_step x num_generations a multiple of {procs * t.gradient_accumulation_steps}"
                      f" (e.g. num_generations=6 with 3 processes) or use vllm_mode colocate on all GPUs.")
    elif (per_device * procs * t.gradient_accumulation_steps) % t.num_generations != 0:
        errors.append(f"the generation batch ({per_device * procs * t.gradient_accumulation_steps}) is not a multiple "
                      f"of num_generations={t.num_generations}: TRL needs whole groups; change prompts_per_step.")
    if check_hardware:
        try:
            import torch

            found = torch.cuda.device_count()
        except ImportError:  # pragma: no cover
            found = 0
        if found < p.launch.num_gpus:
            errors.append(f"this plan needs {p.launch.num_gpus} GPUs but {found} are visible: run it on a "
                          f"{p.launch.num_gpus}-GPU host (check CUDA_VISIBLE_DEVICES), or use --dry-run here.")
    need = memory_needed_gb(p, procs)
    if p.launch.gpu_memory_gb and need > p.launch.gpu_memory_gb:
        errors.append(f"about {need:.0f} GB per GPU is needed but the GPUs have {p.launch.gpu_memory_gb:.0f} GB: "
                      "turn on gradient_checkpointing, lower vllm_gpu_memory_utilization, or use the LoRA plan.")
    if plan.vllm_mode in ("server", "colocate"):
        from supersmall.diagnose import _version, trl_vllm_range

        spec, have = trl_vllm_range(), _version("vllm")
        if have is None:
            if check_hardware:
                errors.append("vLLM is not installed: pip install -e '.[gpu]' on the GPU host (or set launch.vllm_mode "
                              "to none to generate with transformers, much slower).")
        elif spec:
            from packaging.specifiers import SpecifierSet
            from packaging.version import Version

            if Version(have) not in SpecifierSet(spec):
                errors.append(f"vLLM {have} is outside TRL's supported range {spec}: pip install 'vllm{spec}'.")
    if tokenizer is not None:
        from supersmall.data import template_opens_think

        opens = template_opens_think(tokenizer)
        if opens != p.model.think_prefill:
            errors.append(f"the chat template {'opens' if opens else 'does not open'} <think> but the profile says "
                          f"model.think_prefill={p.model.think_prefill}: set model.think_prefill: {str(opens).lower()} "
                          "so the format reward looks for the right tags.")
    if dataset_columns is not None and p.reward.answer_column not in dataset_columns:
        errors.append(f"the reward reads the column {p.reward.answer_column!r} but the dataset has "
                      f"{', '.join(dataset_columns)}: set reward.answer_column or rename the column.")
    return errors


# --- estimate --------------------------------------------------------------------------------------
def estimate(profile: Profile | str, arm: str = "no-kl", mean_completion_fraction: float = 0.5,
             stage: str = "level1-3") -> dict[str, Any]:
    """Tokens per step, generation and training time, GPU-hours and cost, beside the paper's Table 5."""
    from supersmall.report import PAPER

    p = load_profile(profile)
    t, launch = p.train, p.launch
    completions = t.prompts_per_step * t.num_generations
    gen_tokens = completions * t.max_completion_length * mean_completion_fraction
    prompt_tokens = completions * 200  # MATH-style prompts are ~100-300 tokens
    gpus = max(1, launch.num_gpus)
    gen_gpus = 1 if launch.vllm_mode == "server" else gpus
    gen_s = {k: gen_tokens / (v * gen_gpus) for k, v in THROUGHPUT_TOKENS_PER_S.items()}
    passes = 3 if arm == "no-kl" else 4  # forward+backward (3x forward) + a reference forward for KL arms
    flops = 2 * PARAMS_1P5B * (gen_tokens + prompt_tokens) * passes
    train_s = flops / (training_processes(p) * A6000_BF16_TFLOPS * 1e12 * MFU)
    step_s = {k: v + train_s for k, v in gen_s.items()}
    minutes = {k: v * t.steps / 60 for k, v in step_s.items()}
    hours_mid = minutes["mid"] / 60
    return {
        "completions_per_step": completions, "generated_tokens_per_step": int(gen_tokens),
        "generation_s_per_step": {k: round(v, 1) for k, v in gen_s.items()},
        "training_s_per_step": round(train_s, 1), "steps": t.steps,
        "minutes": {k: round(v, 1) for k, v in minutes.items()},
        "gpu_hours": round(hours_mid * gpus, 2), "cost_usd": round(hours_mid * gpus * launch.usd_per_gpu_hour, 2),
        "paper_minutes": PAPER["table5_minutes"].get(arm if stage == "level1-3" else f"{stage}-{arm}"),
        "assumptions": f"mean completion = {mean_completion_fraction:.0%} of max_completion_length, vLLM "
                       f"{THROUGHPUT_TOKENS_PER_S['low']:.0f}-{THROUGHPUT_TOKENS_PER_S['high']:.0f} tok/s per GPU, "
                       f"training at {MFU:.0%} of {A6000_BF16_TFLOPS} bf16 TFLOPS",
    }


# --- one GPU, LoRA ------------------------------------------------------------------------------------
def lora_plan(profile: Profile | str = "a6000x4", arm: str = "no-kl", out_dir: str = "runs/lora",
              gpu_memory_gb: float = 24.0) -> tuple[Profile, dict[str, Any]]:
    """A 1-GPU variant: LoRA adapters (peft) instead of full fine-tuning, vLLM colocated, smaller batch.

    Returns the adjusted profile and the ``peft.LoraConfig`` arguments (``GRPOTrainer(peft_config=...)``).
    """
    p = load_profile(profile).replace(**{
        "launch.num_gpus": 1, "launch.gpu_memory_gb": gpu_memory_gb, "launch.deepspeed_stage": 0,
        "launch.vllm_mode": "colocate", "train.gradient_checkpointing": True,
        "train.prompts_per_step": 8, "train.learning_rate": 1e-5,
    })
    lora = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "task_type": "CAUSAL_LM",
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
    return p, lora


def plans_for(profile: str, arms: list[str], stages: list[str], out_dir: str) -> list[Plan]:
    """Table 3's arms on level 1-3, then the curriculum stages, each starting from the model its
    preset names (``start_from`` in ``profiles/presets/paper_runs.yaml``)."""
    from supersmall.config import paper_runs

    presets = paper_runs()["stages"]
    plans: list[Plan] = [make_plan(profile, arm, "1-3", out_dir) for arm in arms]
    for stage in [s for s in stages if s != "1-3"]:
        name = STAGES.get(stage, stage)
        if name not in presets:
            raise ValueError(f"unknown stage {stage!r}; valid stages are: {', '.join(STAGES)}")
        start = presets[name]["start_from"]
        model = None if start == "base" else f"{out_dir}/no-kl/{start}/model"
        plans.append(make_plan(profile, "no-kl", stage, out_dir, model=model))
    return plans


def plan_json(plans: list[Plan]) -> str:
    return json.dumps([p.to_dict() for p in plans], indent=2)
