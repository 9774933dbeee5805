"""Profiles: one typed config per scale (``tiny`` on a laptop CPU, ``a6000x4`` = the paper's setup).

A profile is a YAML file with sections (``model``, ``train``, ``reward``, ``curriculum``, ``eval``,
``data``, ``launch``, ``notebooks``). Every key is declared below with its type and default, so a
typo is an error, not a silently ignored setting, and every value is checked against its range in
one table (:data:`RULES`, in :mod:`supersmall.profile_rules`), so ``train.steps: -5`` is one
sentence, not a traceback::

    >>> from supersmall.config import load_profile
    >>> p = load_profile("tiny")
    >>> p.train.num_generations
    8

Values the paper does not give are marked ``# choice`` in the YAML files, with the reason.
"""

from __future__ import annotations

import difflib
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from supersmall import paper
from supersmall.profile_rules import RULES

PROFILES_DIR = Path(__file__).parent / "profiles"


class ProfileError(ValueError):
    """A profile name, file or key is not valid; the message is one sentence that says what is."""


@dataclass
class ModelConfig:
    name_or_path: str = "tiny"  # "tiny" = the kit's own model, "tiny-r1" = the same with an R1 chat template
    dtype: str = "float32"  # float32 | bfloat16 | float16: the dtype the weights are loaded in
    think_prefill: bool = False  # does the chat template already open <think>? (R1-Distill: yes)
    attn_implementation: str | None = None  # None = transformers' default (sdpa)


@dataclass
class TrainConfig:
    backend: str = "trl"  # trl | minimal
    arm: str = "no-kl"  # no-kl | kl-nopenalty | kl-penalty (paper, Table 3)
    steps: int = 60
    learning_rate: float = 3e-4
    prompts_per_step: int = 16  # distinct prompts per optimizer step
    num_generations: int = 8  # G completions per prompt
    temperature: float = 1.0
    top_p: float = 1.0
    max_prompt_length: int = 64  # prompts longer than this (template tokens) are filtered out and counted
    max_completion_length: int = 64
    loss_type: str = "grpo"  # TRL's name for the aggregation: losses.aggregate(aggregation=loss_type); grpo | dapo | dr_grpo | group_token_mean | sequence | cispo (MiniMax-M1's objective, aggregated as dapo)
    scale_rewards: str = "group"  # group (mean and std) | none (mean only) | batch
    clip_eps: float = 0.2
    clip_eps_high: float | None = None  # None = clip_eps; DAPO's clip-higher; with loss_type cispo: eps_max, the cap on the ratio itself
    beta_kl_loss: float = 0.04  # kl-nopenalty arm: KL as a loss term (k3, as TRL beta > 0)
    beta_kl_reward: float = 0.001  # kl-penalty arm: KL in the reward (k1, as verl use_kl_in_reward)
    kl_penalty_loss: bool = False  # kl-penalty arm: keep the KL loss (beta_kl_loss) too (Table 3's paper reading)
    num_iterations: int = 1  # updates per generated batch (1 => ratio == 1, clip inactive)
    importance_sampling_level: str = "token"  # token (PPO / GRPO) | sequence (GSPO: one length-normalised ratio per sequence)
    optimizer: str = "adamw_torch"
    lr_scheduler_type: str = "constant"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    bf16: bool = False
    seed: int = 0
    logging_steps: int = 1
    save_steps: int = 20
    save_total_limit: int = 2  # checkpoints kept for resuming (a 1.5B checkpoint with optimizer is ~28 GB)
    report_to: str = "none"  # none | tensorboard | wandb | trackio | ... (TRL's trackers)
    # TRL defaults that change the algorithm, pinned here (see the YAML files for each reason)
    vllm_importance_sampling: str = "token_truncate"  # off | token_truncate | token_mask | sequence_truncate | sequence_mask
    vllm_importance_sampling_cap: float = 3.0
    kl_ratio_weighting: bool = False  # TRL's use_bias_correction_kl: multiply the KL loss by the importance ratio
    mask_truncated_completions: bool = False
    lora_rank: int = 0  # 0 = full fine-tuning; > 0 = LoRA adapters of this rank on every linear layer (peft)
    lora_dropout: float = 0.0  # LoRA: 0 = the policy scored as it was sampled (TRL scores with dropout on)
    force_max_length: bool = False  # every rollout runs to max_completion_length (min_tokens): the canary's worst case


@dataclass
class RewardConfig:
    # supersmall (eq. 6 + 7) | correctness (eq. 6) | bipolar (eq. 4) | open_rs (Open-RS exp. 2: format +
    # accuracy) | open_rs_cosine (exp. 3: format + cosine) | structured (Small-Math-R1): rewards.REWARDS
    name: str = "supersmall"
    answer_column: str = "answer"
    length_threshold: float = 0.95  # eq. 7: penalise when len(y) > threshold * L_max
    length_penalty: float = -0.1
    length_unit: str = "tokens"  # tokens | chars
    strict: bool = True  # ">" (True) or ">=" (False) in eq. 7
    grading_timeout: float = 1.0

    @property
    def weights(self) -> dict[str, float]:
        """TRL's ``reward_weights`` of this reward's functions, by function name (``rewards.reward_weights``
        puts them in order): Open-RS's from ``paper.yaml`` (App. E); ``{}`` (all 1.0) for the others."""
        key = _REWARD_WEIGHTS.get(self.name)
        return paper.value(key) if key else {}


_REWARD_WEIGHTS = {"open_rs": "openrs.exp2.reward_weights", "open_rs_cosine": "openrs.exp3.reward_weights"}


@dataclass
class CurriculumConfig:
    scheme: str = "round"  # round (half-up) | floor: float difficulty -> level
    schedule: str = "staged"  # staged | cumulative | shuffled
    stages: str = "1-3:20,4:20,5:20"  # "levels:steps,..."


@dataclass
class EvalConfig:
    dataset: str = "tiny"  # tiny (held-out split) | math500
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    n_samples: int = 1  # samples per problem; pass@1 is their mean
    batch_size: int = 256
    prompt_template: str = "chat"  # raw | chat (supersmall.data.format_prompt) for rows that carry a problem only
    backend: str = "hf"  # hf | vllm
    problems_per_level: int = 100  # tiny: held-out problems per level; 0 = every problem of the dataset
    budgets: list[int] = field(default_factory=list)  # re-score the one long pass at these token budgets
    min_new_tokens: int = 0  # > 0: no sample stops earlier (vLLM min_tokens); = max_new_tokens: the worst-case lengths


@dataclass
class DataConfig:
    train: str = "tiny"  # tiny | deepmath | open_rs
    source: str | None = None  # local file instead of the hub
    levels: str = "1-3"
    instruction: str = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass
class LaunchConfig:
    num_gpus: int = 0  # 0 = CPU
    num_processes: int = 1  # training processes on CPU (gloo); on GPUs it follows num_gpus and vllm_mode
    gpu_memory_gb: float = 0.0
    gpu_usable_gb: float = 0.0  # what a process can allocate (GiB); 0 = gpu_memory_gb
    nccl_p2p: str = "auto"  # auto (off when no NVLink is found) | on | off (NCCL_P2P_DISABLE=1)
    vllm_mode: str = "none"  # none | server | colocate
    vllm_gpu_memory_utilization: float = 0.35  # colocate: the share of each GPU vLLM may take
    deepspeed_stage: int = 0  # 0 = plain DDP
    usd_per_gpu_hour: float = 0.0
    # past one machine (supersmall.fullscale.launch): these say *where* runs go, never what they compute
    gpus_per_run: int = 0  # GPUs of one run; 0 = all num_gpus (runs one after another); 4 on 8 GPUs: 2 at once
    num_machines: int = 1  # hosts of ONE run (accelerate across nodes); seeds across hosts: replicate --shard
    machine_rank: int = 0  # this host's rank in a multi-node run (0 = the main process's host)
    main_process_ip: str = ""  # the rank-0 host's address, reachable from every host (multi-node only)
    main_process_port: int = 29500  # the rank-0 host's rendezvous port
    vllm_server_host: str = ""  # server mode: "" = a local server on the last GPU; a host = trl vllm-serve there
    vllm_server_port: int = 8000  # server mode: the server's HTTP port


@dataclass
class NotebooksConfig:
    cell_timeout: int = 1800  # seconds per cell under papermill
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # seeds of the course's exploratory experiments
    # seeds of the runs behind the paper's claims (ZeroGRPO vs base, the KL arms, the staged curriculum): the rule
    # decides on supersmall.stats.MIN_SEEDS or more; 5 narrow the seeds' part of the interval
    claim_seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    steps: int = 20  # training steps of each run in the notebooks' multi-seed experiments


@dataclass
class Profile:
    name: str = "tiny"
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    data: DataConfig = field(default_factory=DataConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    notebooks: NotebooksConfig = field(default_factory=NotebooksConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **overrides: Any) -> Profile:
        """A copy with dotted overrides applied, e.g. ``p.replace(**{"train.steps": 10})``."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            *parents, leaf = dotted.split(".")
            node = data
            for key in parents:
                if key not in node or not isinstance(node[key], dict):
                    raise ProfileError(f"unknown profile section {key!r} in override {dotted!r}")
                node = node[key]
            node[leaf] = value
        return check_profile(_build(Profile, data, where="profile"))


def check_profile(profile: Profile) -> Profile:
    """Check every value against :data:`RULES`; the first bad one is a :class:`ProfileError` sentence."""
    data = profile.to_dict()
    for dotted, (ok, expected) in RULES.items():
        section, key = dotted.split(".")
        value = data[section][key]
        if not ok(value):
            raise ProfileError(f"{dotted} = {value!r} is not valid: expected {expected}")
    launch = profile.launch
    if launch.machine_rank >= launch.num_machines:
        raise ProfileError(f"launch.machine_rank = {launch.machine_rank} is not valid with launch.num_machines = "
                           f"{launch.num_machines}: ranks are 0 .. {launch.num_machines - 1}, one per host")
    if launch.gpus_per_run > launch.num_gpus:
        raise ProfileError(f"launch.gpus_per_run = {launch.gpus_per_run} is more than the host's launch.num_gpus = "
                           f"{launch.num_gpus}: set it to {launch.num_gpus} or less (0 = all)")
    t = profile.train
    if t.loss_type == "cispo" and t.clip_eps_high is None:  # TRL would cap the ratio at clip_eps (0.2)
        raise ProfileError("train.loss_type = 'cispo' needs train.clip_eps_high: CISPO's eps_max, the cap on the "
                           "importance ratio itself (ScaleRL recommends 5.0, TRL's docs), not an offset from 1")
    if profile.eval.min_new_tokens > profile.eval.max_new_tokens:
        raise ProfileError(f"eval.min_new_tokens = {profile.eval.min_new_tokens} is not valid: expected at most "
                           f"eval.max_new_tokens ({profile.eval.max_new_tokens})")
    if t.lora_rank and t.backend == "minimal":  # grpo.py trains every weight; it would ignore the rank silently
        raise ProfileError(f"train.lora_rank = {t.lora_rank} with the minimal backend: the readable loop (grpo.py) "
                           "trains every weight, only TRL trains LoRA adapters; use --backend trl or train.lora_rank=0")
    return profile


def available_profiles() -> list[str]:
    """Names of the profiles shipped with the kit (``supersmall/profiles/*.yaml``)."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _check_scalar(value: Any, tp: Any, where: str) -> Any:
    """Light type check with the conversions YAML needs (int -> float, '3e-4' -> float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        last_error: ProfileError | None = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_scalar(value, arg, where)
            except ProfileError as e:
                last_error = e
        raise last_error or ProfileError(f"{where}: bad value {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ProfileError(f"{where} must be a list, got {value!r}")
        return [_check_scalar(v, args[0], where) for v in value] if args else value
    if tp is float:
        if isinstance(value, bool):
            raise ProfileError(f"{where} must be a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ProfileError(f"{where} must be a number, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProfileError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ProfileError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ProfileError(f"{where} must be a string, got {value!r}")
        return str(value)
    return value


def _build(cls: type, data: dict[str, Any] | None, where: str) -> Any:
    data = data or {}
    if not isinstance(data, dict):
        raise ProfileError(f"{where} must be a mapping of keys to values, got {type(data).__name__}")
    types = _field_types(cls)
    unknown = [k for k in data if k not in types]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(types), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ProfileError(
            f"unknown key {key!r} in {where}{hint}; valid keys are: {', '.join(sorted(types))}"
        )
    kwargs = {}
    for name, value in data.items():
        tp = types[name]
        sub = f"{where}.{name}" if where != "profile" else name
        if isinstance(tp, type) and is_dataclass(tp):
            kwargs[name] = _build(tp, value, sub)
        else:
            kwargs[name] = _check_scalar(value, tp, sub)
    return cls(**kwargs)


def load_profile(name_or_path: str | Path = "tiny", **overrides: Any) -> Profile:
    """Load a profile by name (``tiny``, ``a6000x4``, ...) or from a YAML path.

    ``overrides`` use dotted keys: ``load_profile("tiny", **{"train.steps": 5})``.
    Raises :class:`ProfileError` with one sentence naming the valid choices.
    """
    if isinstance(name_or_path, Profile):
        return name_or_path.replace(**overrides) if overrides else name_or_path
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ProfileError(f"profile file {text!r} does not exist; shipped profiles are: "
                               f"{', '.join(available_profiles())}")
    else:
        path = PROFILES_DIR / f"{text}.yaml"
        if not path.is_file():
            raise ProfileError(
                f"unknown profile {text!r}; valid profiles are: {', '.join(available_profiles())} "
                "(or a path to a .yaml file)"
            )
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ProfileError(f"profile {str(path)!r} is not valid YAML: {' '.join(str(e).split())}") from None
    raw = {} if raw is None else raw  # an empty file: every default
    if not isinstance(raw, dict):
        raise ProfileError(f"profile {str(path)!r} must be a YAML mapping of sections (model:, train:, ...), "
                           f"not a {type(raw).__name__}")
    raw.setdefault("name", path.stem)
    profile = check_profile(_build(Profile, raw, where="profile"))
    return profile.replace(**overrides) if overrides else profile


def profile_table(*names: str) -> list[dict[str, Any]]:
    """Rows ``{setting, <profile>: value, ...}`` to show profiles side by side (notebook 00)."""
    profiles = [load_profile(n) for n in (names or available_profiles())]
    rows: list[dict[str, Any]] = []
    for section in fields(Profile):
        if section.name in ("name", "description"):
            continue
        for f in fields(getattr(profiles[0], section.name)):
            row = {"setting": f"{section.name}.{f.name}"}
            for p in profiles:
                row[p.name] = getattr(getattr(p, section.name), f.name)
            rows.append(row)
    return rows


__all__ = [
    "Profile", "ProfileError", "ModelConfig", "TrainConfig", "RewardConfig", "CurriculumConfig",
    "EvalConfig", "DataConfig", "LaunchConfig", "NotebooksConfig", "load_profile",
    "available_profiles", "profile_table", "check_profile", "RULES",
]
