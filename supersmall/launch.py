"""Launch: plans for the paper's runs (which process trains what, with which command) and ``replicate``,
which runs them in order, evaluates every model and writes the report. (``runner`` runs *notebooks*;
``launch`` runs *training jobs*; ``supersmall replicate`` is the command over :func:`replicate`.)

    plans = plans_for("a6000x4", arms=paper.ARMS, stages=["level1-3", "level4", "level5"], seeds=[42])
    validate(plans[0])     # one sentence per problem, with the fix
    replicate("rehearsal", "runs/rehearsal")   # the same code path on CPU, 2 processes

On GPUs a plan is accelerate + DeepSpeed ZeRO-2 + vLLM (colocated on every GPU, or a ``trl vllm-serve``
server on one GPU, as Open-RS did); on CPU (the ``rehearsal`` profile) the same ``supersmall train``
command runs under ``torchrun`` with DDP on gloo. Every plan's ``GRPOConfig`` comes from
:func:`supersmall.trl_args.grpo_config_kwargs`, the same call training makes.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from supersmall import estimate as est
from supersmall import paper, report
from supersmall.config import Profile, load_profile
from supersmall.curriculum import parse_stages
from supersmall.data import template_opens_think
from supersmall.errors import UserError
from supersmall.evaluate import run_eval
from supersmall.runcard import is_complete, package_version, series_key
from supersmall.trl_args import (
    accelerate_config,
    grpo_config_kwargs,
    lora_config_kwargs,
    training_processes,
    trl_vllm_range,
)

ENV = {"TOKENIZERS_PARALLELISM": "false", "NCCL_ASYNC_ERROR_HANDLING": "1", "PYTHONUNBUFFERED": "1"}


@dataclass
class Plan:
    arm: str
    stage: str
    seed: int
    levels: list[int]
    out_dir: str
    model: str  # the model training starts from
    num_processes: int
    vllm_mode: str
    accelerate_config: dict[str, Any]
    grpo_args: dict[str, Any]
    env: dict[str, str]
    commands: list[str]
    settings: Profile = field(default_factory=Profile)  # the exact profile of the run
    estimate: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stage_steps(profile: Profile, stage: str) -> int:
    """A stage's steps: the profile's ``curriculum.stages`` in the paper's stage order."""
    order = list(paper.stages())
    spec = parse_stages(profile.curriculum.stages)
    i = order.index(stage)
    return spec[i].steps if i < len(spec) else profile.train.steps


def make_plan(profile: Profile | str, arm: str = "no-kl", stage: str = "level1-3", seed: int | None = None,
              out_dir: str = "runs/full", model: str | None = None, reading: str = "isolated",
              curriculum: str = "staged") -> Plan:
    """The plan of one run: ``arm`` (Table 3) on ``stage`` (Sec. 4.4), under one ``seed``."""
    stages = paper.stages(curriculum)
    if stage not in stages:
        raise UserError(f"unknown stage {stage!r}; valid stages are: {', '.join(stages)}")
    base = load_profile(profile)
    seed = base.train.seed if seed is None else seed
    levels = stages[stage]["levels"]
    sets = {**paper.arm_settings(arm, reading), "train.arm": arm, "train.seed": seed,
            "train.steps": _stage_steps(base, stage), "data.levels": "+".join(map(str, levels))}
    p = base.replace(**sets)
    run_dir = f"{out_dir}/{arm}/{stage}/seed{seed}"
    start = model or p.model.name_or_path
    procs = training_processes(p)
    profile_arg = str(profile) if Path(str(profile)).suffix in (".yaml", ".yml") else p.name
    set_args = " ".join(f"--set {k}={shlex.quote(str(v))}" for k, v in sets.items() if k != "train.arm")
    cli = (f"-m supersmall.cli train --profile {shlex.quote(profile_arg)} --arm {arm} {set_args} "
           f"--model {shlex.quote(start)} --no-eval --out {shlex.quote(run_dir)}")
    if p.launch.num_gpus:
        gpus = ",".join(str(i) for i in range(procs))
        launcher = f"CUDA_VISIBLE_DEVICES={gpus} accelerate launch --config_file {out_dir}/accelerate_{procs}gpu.yaml"
    elif procs > 1:
        launcher = f"{shlex.quote(sys.executable)} -m torch.distributed.run --standalone --nproc_per_node {procs}"
    else:
        launcher = shlex.quote(sys.executable)
    commands = [f"{launcher} {cli}"]
    if p.launch.vllm_mode == "server":
        commands.insert(0, f"CUDA_VISIBLE_DEVICES={p.launch.num_gpus - 1} trl vllm-serve --model {shlex.quote(start)} "
                           f"--host 127.0.0.1 --port 8000 --max-model-len "
                           f"{p.train.max_prompt_length + p.train.max_completion_length}")
    return Plan(arm=arm, stage=stage, seed=seed, levels=list(levels), out_dir=run_dir, model=start,
                num_processes=procs, vllm_mode=p.launch.vllm_mode,
                accelerate_config=accelerate_config(procs, p.launch.deepspeed_stage,
                                                    "bf16" if p.train.bf16 else "no"),
                grpo_args=grpo_config_kwargs(p, run_dir, arm=arm), env=dict(ENV), commands=commands, settings=p,
                estimate=est.estimate(p, arm, stage) if p.launch.num_gpus else {})


def plans_for(profile: Profile | str, arms: list[str] | tuple[str, ...] = paper.ARMS,
              stages: list[str] | tuple[str, ...] = ("level1-3", "level4", "level5"), seeds: list[int] | None = None,
              out_dir: str = "runs/full", reading: str = "isolated", curriculum: str = "staged") -> list[Plan]:
    """Table 3's arms on level 1-3, then the curriculum stages of the no-kl model, each starting from the
    model of the stage it names (``start_from``), for every seed."""
    seeds = list(seeds) if seeds else load_profile(profile).notebooks.seeds
    presets = paper.stages(curriculum)
    plans = []
    for seed in seeds:
        plans += [make_plan(profile, arm, "level1-3", seed, out_dir, None, reading, curriculum) for arm in arms]
        for stage in [s for s in stages if s != "level1-3"]:
            if stage not in presets:
                raise UserError(f"unknown stage {stage!r}; valid stages are: {', '.join(presets)}")
            start = presets[stage]["start_from"]
            model = None if start == "base" else f"{out_dir}/no-kl/{start}/seed{seed}/model"
            plans.append(make_plan(profile, "no-kl", stage, seed, out_dir, model, reading, curriculum))
    return plans


def write_plan_files(plans: list[Plan], out_dir: str | Path) -> Path:
    """``plan.json`` and the accelerate config file(s) the commands refer to."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for plan in plans:
        if plan.settings.launch.num_gpus:
            cfg = out / f"accelerate_{plan.num_processes}gpu.yaml"
            cfg.write_text(yaml.safe_dump(plan.accelerate_config, sort_keys=False))
    path = out / "plan.json"
    path.write_text(json.dumps([p.to_dict() for p in plans], indent=2, default=str) + "\n")
    return path


# --- validation -------------------------------------------------------------------------------------
def validate(plan: Plan, check_hardware: bool = True, tokenizer: Any = None,
             dataset_columns: list[str] | None = None) -> list[str]:
    """Problems with a plan, one sentence each with the fix (empty list = ready to launch)."""
    p, t = plan.settings, plan.settings.train
    errors: list[str] = []
    completions, split = t.prompts_per_step * t.num_generations, plan.num_processes * t.gradient_accumulation_steps
    if completions % split:
        errors.append(f"{completions} completions per step ({t.prompts_per_step} prompts x G={t.num_generations}) do not "
                      f"split over {plan.num_processes} processes x {t.gradient_accumulation_steps} accumulation steps: "
                      f"make prompts_per_step x num_generations a multiple of {split}.")
    if check_hardware and p.launch.num_gpus:
        if torch.cuda.device_count() < p.launch.num_gpus:
            errors.append(f"this plan needs {p.launch.num_gpus} GPUs but {torch.cuda.device_count()} are visible: run "
                          "it on a GPU host (check CUDA_VISIBLE_DEVICES), or use --dry-run here.")
    if p.launch.num_gpus and (memory := est.check_memory(p, plan.arm)):
        errors.append(memory)
    if plan.vllm_mode != "none":
        spec, have = trl_vllm_range(), package_version("vllm")
        if have is None and check_hardware:
            errors.append("vLLM is not installed: pip install -e '.[gpu]' on the GPU host (or set launch.vllm_mode "
                          "to none to generate with transformers, much slower).")
        elif have and spec and Version(have) not in SpecifierSet(spec):
            errors.append(f"vLLM {have} is outside TRL's supported range {spec}: pip install 'vllm{spec}'.")
    if tokenizer is not None:
        if template_opens_think(tokenizer) != p.model.think_prefill:
            errors.append(f"the chat template {'opens' if not p.model.think_prefill else 'does not open'} <think> but "
                          f"model.think_prefill={p.model.think_prefill}: set model.think_prefill to "
                          f"{str(not p.model.think_prefill).lower()} so the format reward looks for the right tags.")
    if dataset_columns is not None and p.reward.answer_column not in dataset_columns:
        errors.append(f"the reward reads the column {p.reward.answer_column!r} but the dataset has "
                      f"{', '.join(dataset_columns)}: set reward.answer_column or rename the column.")
    return errors


def lora_plan(profile: Profile | str = "a6000x4", gpu_memory_gb: float = 24.0) -> tuple[Profile, dict[str, Any]]:
    """A 1-GPU variant: LoRA adapters (peft, ``train.lora_rank``) instead of full fine-tuning, vLLM colocated,
    8 prompts x G per step in micro-batches of 4. Returns the adjusted profile (train with it as usual: ``make_trainer`` passes the
    ``peft.LoraConfig``) and the LoRA arguments (:func:`supersmall.trl_args.lora_config_kwargs`)."""
    p = load_profile(profile).replace(**{
        "launch.num_gpus": 1, "launch.gpu_memory_gb": gpu_memory_gb, "launch.deepspeed_stage": 0,
        "launch.vllm_mode": "colocate", "train.gradient_checkpointing": True, "train.prompts_per_step": 8,
        "train.gradient_accumulation_steps": 16, "train.learning_rate": 1e-5, "train.lora_rank": 16})
    return p, lora_config_kwargs(p)


# --- replicate -------------------------------------------------------------------------------------------
def _wait_for_port(port: int, timeout: float = 900.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(5)
    raise UserError(f"the vLLM server did not open port {port} within {timeout:.0f} s: see its log")


def _run_plan(plan: Plan, log_dir: Path) -> None:
    env = {**os.environ, **plan.env}
    server = None
    try:
        for cmd in plan.commands:
            print(f"$ {cmd}", flush=True)
            if "vllm-serve" in cmd:  # a server for this run, stopped when the run ends
                server = subprocess.Popen(cmd, shell=True, env=env, stdout=(log_dir / "vllm.log").open("w"),
                                          stderr=subprocess.STDOUT, start_new_session=True)
                _wait_for_port(8000)
                continue
            if subprocess.run(cmd, shell=True, env=env).returncode != 0:
                raise UserError(f"{plan.arm}/{plan.stage}/seed{plan.seed} failed; rerun the same command to resume "
                                "from its last checkpoint")
    finally:
        if server is not None:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)


def replicate(profile: Profile | str, out_dir: str | Path, arms: list[str] | tuple[str, ...] = paper.ARMS,
              stages: list[str] | tuple[str, ...] = ("level1-3", "level4", "level5"), seeds: list[int] | None = None,
              reading: str = "isolated", curriculum: str = "staged", dry_run: bool = False) -> dict[str, Any]:
    """The replication, in order: train every plan (skipping complete runs), evaluate the base model once and
    every trained model with one protocol, then write the report (``out/report/verdicts.json``)."""
    out = Path(out_dir)
    plans = plans_for(profile, arms, stages, seeds, str(out), reading, curriculum)
    write_plan_files(plans, out)
    problems = {f"{p.arm}/{p.stage}/seed{p.seed}": validate(p, check_hardware=not dry_run) for p in plans}
    for plan in plans:
        print(f"# {plan.arm} / {plan.stage} / seed {plan.seed}: {plan.num_processes} training process(es), "
              f"vLLM {plan.vllm_mode}" + (f", ~{plan.estimate['minutes']['mid']:.0f} min" if plan.estimate else ""))
        print("\n".join(plan.commands + [f"  ! {m}" for m in problems[f"{plan.arm}/{plan.stage}/seed{plan.seed}"]]))
    if dry_run:
        return {"plan": str(out / "plan.json"), "problems": problems}
    blocking = [m for msgs in problems.values() for m in msgs]
    if blocking:
        raise UserError(f"{len(blocking)} problem(s) above; fix them or use --dry-run")
    p0 = load_profile(profile)
    series = series_key({"profile": p0.to_dict(), "reading": reading, "curriculum": curriculum})
    run_eval(p0.model.name_or_path, p0, out / "eval" / "base", meta={"role": "base", "series": series})
    for plan in plans:
        if is_complete(plan.out_dir):
            print(f"skip {plan.arm}/{plan.stage}/seed{plan.seed}: its run card is complete")
        else:
            _run_plan(plan, out)
        run_eval(f"{plan.out_dir}/model", plan.settings, out / "eval" / f"{plan.arm}-{plan.stage}-seed{plan.seed}",
                 meta={"role": "trained", "arm": plan.arm, "stage": plan.stage, "seed": plan.seed, "series": series,
                       "reading": reading})
    paths = report.write_report(out, out / "report", series=series)
    return {"plan": str(out / "plan.json"), "report": {k: str(v) for k, v in paths.items()}, "series": series}
