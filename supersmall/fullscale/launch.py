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

import functools
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

from supersmall import paper, report
from supersmall.config import Profile, ProfileError, load_profile
from supersmall.data import template_opens_think, train_rows
from supersmall.errors import UserError
from supersmall.evaluate import run_eval
from supersmall.fullscale import cost, gpus
from supersmall.fullscale import estimate as est
from supersmall.runcard import code_version, is_complete, package_version, read_run_card, series_key
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


def _yaml(value: Any) -> str:
    """A value as ``--set`` reads it back (YAML), e.g. 5e-06 -> 5.0e-06, [16, 32] -> [16, 32], None -> null."""
    if isinstance(value, str) and str(yaml.safe_load(value)) == value:  # "4", "1+2+3": the profile reads them back
        return value
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    return text.removesuffix("\n...").strip()


def _differences(base: Profile, p: Profile) -> dict[str, Any]:
    """Dotted keys whose value in ``p`` differs from ``base`` (what ``--set`` must pass)."""
    a, b = base.to_dict(), p.to_dict()
    return {f"{s}.{k}": v for s, sec in b.items() if isinstance(sec, dict) for k, v in sec.items() if a[s][k] != v}


def make_plan(profile: Profile | str, arm: str = "no-kl", stage: str = "level1-3", seed: int | None = None,
              out_dir: str = "runs/full", model: str | None = None, reading: str = "isolated",
              curriculum: str = "staged", topology: Any = None, overrides: dict[str, Any] | None = None) -> Plan:
    """The plan of one run: ``arm`` (Table 3) on ``stage`` (Sec. 4.4), under one ``seed``. ``topology`` (tests):
    a function returning ``nvidia-smi topo -m``'s text, for ``launch.nccl_p2p: auto``."""
    stages = paper.stages(curriculum)
    if stage not in stages:
        raise UserError(f"unknown stage {stage!r}; valid stages are: {', '.join(stages)}")
    base = load_profile(profile, **(overrides or {}))
    seed = base.train.seed if seed is None else seed
    levels = stages[stage]["levels"]
    sets = {**paper.arm_settings(arm, reading), "train.arm": arm, "train.seed": seed,
            "train.steps": cost.stage_steps(base, stage), "data.levels": "+".join(map(str, levels))}
    p = base.replace(**sets)
    run_dir = f"{out_dir}/{arm}/{stage}/seed{seed}"
    start = model or p.model.name_or_path
    procs = training_processes(p)
    profile_arg = str(profile) if Path(str(profile)).suffix in (".yaml", ".yml") else p.name
    try:  # every setting that differs from the named profile travels on the command line (--set overrides too)
        sets = {**sets, **_differences(load_profile(profile_arg), p)}
    except ProfileError:
        pass
    set_args = " ".join(f"--set {k}={shlex.quote(_yaml(v))}" for k, v in sets.items() if k != "train.arm")
    cli = (f"-m supersmall.cli train --profile {shlex.quote(profile_arg)} --arm {arm} {set_args} "
           f"--model {shlex.quote(start)} --no-eval --out {shlex.quote(run_dir)}")
    if p.launch.num_gpus:
        nccl = "".join(f"{k}={v} " for k, v in gpus.nccl_env(p.launch.nccl_p2p, topology).items())
        visible = ",".join(str(i) for i in range(procs))
        launcher = (f"{nccl}CUDA_VISIBLE_DEVICES={visible} accelerate launch --config_file "
                    f"{out_dir}/accelerate_{procs}gpu.yaml")
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
              out_dir: str = "runs/full", reading: str = "isolated", curriculum: str = "staged",
              overrides: dict[str, Any] | None = None) -> list[Plan]:
    """Table 3's arms on level 1-3, then the curriculum stages of the no-kl model, each starting from the
    model of the stage it names (``start_from``), for every seed."""
    seeds = list(seeds) if seeds else load_profile(profile, **(overrides or {})).notebooks.claim_seeds
    kw = {"overrides": overrides}
    presets = paper.stages(curriculum)
    plans = []
    for seed in seeds:
        plans += [make_plan(profile, arm, "level1-3", seed, out_dir, None, reading, curriculum, **kw) for arm in arms]
        for stage in [s for s in stages if s != "level1-3"]:
            if stage not in presets:
                raise UserError(f"unknown stage {stage!r}; valid stages are: {', '.join(presets)}")
            start = presets[stage]["start_from"]
            model = None if start == "base" else f"{out_dir}/no-kl/{start}/seed{seed}/model"
            plans.append(make_plan(profile, "no-kl", stage, seed, out_dir, model, reading, curriculum, **kw))
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
    if p.launch.num_gpus and (share := est.check_vllm(p)):
        errors.append(share)
    if t.lora_rank and plan.arm == "kl-penalty":  # PEFT has no separate reference model for KLPenaltyTrainer
        errors.append("the kl-penalty arm needs a separate reference model, which LoRA does not build (TRL disables "
                      "the adapters instead): drop kl-penalty from --arms or set train.lora_rank to 0.")
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


def run_plan(plan: Plan, log_dir: Path, exit_timeout: float = gpus.EXIT_TIMEOUT_S) -> None:
    """Run a plan's commands; a run that wrote its complete card but hangs at exit is stopped after
    ``exit_timeout`` seconds (:func:`supersmall.fullscale.gpus.run_command`)."""
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
            done = functools.partial(_finished_since, plan.out_dir, time.time())
            if gpus.run_command(cmd, env, done=done, exit_timeout=exit_timeout) != 0:
                raise UserError(f"{plan.arm}/{plan.stage}/seed{plan.seed} failed; rerun the same command to resume "
                                "from its last checkpoint")
    finally:
        if server is not None:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)


def _finished_since(out_dir: str, t0: float) -> bool:
    """The run card says complete and was written after ``t0`` (not an earlier run's card)."""
    card = Path(out_dir) / "run_card.json"
    return is_complete(out_dir) and card.stat().st_mtime >= t0


def reusable(plan: Plan) -> bool:
    """True for a complete run of the plan's exact config and this code version (skipped); False when it must
    train (no run, unfinished, or older code: ``train`` redoes it); a complete run of another config is an error."""
    if not is_complete(plan.out_dir):
        return False
    card = read_run_card(plan.out_dir)
    if card.get("code_version") != code_version():
        print(f"{plan.out_dir}: finished with other code ({card.get('code_version')}); training again")
        return False
    if card.get("config") != json.loads(json.dumps(plan.settings.to_dict())):
        raise UserError(f"{plan.out_dir} holds a finished run with another config than this plan's: choose another "
                        "--out, or delete that folder to retrain it")
    return True


def prepare_data(profile: Profile) -> None:
    """Build the training data's cache once, here, before any rank starts (ranks then read the cache instead of
    preparing DeepMath four times at once)."""
    if profile.data.train != "tiny":
        train_rows(profile)


def eval_job(spec_path: str | Path) -> None:
    """One evaluation from its job file (``model``, ``profile`` YAML path, ``out``, ``meta``): what each GPU's
    evaluation process runs (:func:`eval_jobs`)."""
    spec = json.loads(Path(spec_path).read_text())
    run_eval(spec["model"], load_profile(spec["profile"]), spec["out"], meta=spec["meta"], limit=spec.get("limit"),
             progress=False)


def eval_jobs(jobs: list[tuple[str, str, Profile, dict[str, Any]]], out: Path, limit: int | None = None
              ) -> dict[str, str]:
    """One command per evaluation, each in its own process so its vLLM engine is released when it exits."""
    commands = {}
    for name, model, settings, meta in jobs:
        job_dir = out / "eval" / name
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / "profile.yaml").write_text(yaml.safe_dump(settings.to_dict(), sort_keys=False))
        (job_dir / "job.json").write_text(json.dumps({"model": model, "profile": str(job_dir / "profile.yaml"),
                                                      "out": str(job_dir), "meta": meta, "limit": limit}))
        commands[name] = (f"{shlex.quote(sys.executable)} -c 'import sys; from supersmall.fullscale.launch import eval_job; "
                          f"eval_job(sys.argv[1])' {shlex.quote(str(job_dir / 'job.json'))}")
    return commands


def run_in_turn(commands: dict[str, str], log_dir: Path) -> list[str]:
    """Run each command in its own process, one after another (vLLM's engine is released when each exits), with
    its output in ``log_dir/<name>.log``; returns the names that failed."""
    log_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for name, cmd in commands.items():
        print(f"$ {cmd}", flush=True)
        with (log_dir / f"{name}.log").open("w") as log:
            if subprocess.run(cmd, shell=True, stdout=log, stderr=subprocess.STDOUT).returncode:
                failed.append(name)
    return failed


def default_arms(profile: Profile) -> list[str]:
    """Table 3's arms, less kl-penalty under LoRA (see :func:`validate`)."""
    return [a for a in paper.ARMS if not (profile.train.lora_rank and a == "kl-penalty")]


def replicate(profile: Profile | str, out_dir: str | Path, arms: list[str] | tuple[str, ...] | None = None,
              stages: list[str] | tuple[str, ...] = ("level1-3", "level4", "level5"), seeds: list[int] | None = None,
              reading: str = "isolated", curriculum: str = "staged", dry_run: bool = False,
              overrides: dict[str, Any] | None = None, query: gpus.Query = gpus.memory_used) -> dict[str, Any]:
    """The replication, in order: train every plan (reusing complete runs of the same config and code), then
    evaluate the base model once and every trained model with one protocol (on GPUs: one process per
    evaluation, one per GPU in parallel, each GPU checked free first), then write the report
    (``out/report/verdicts.json``). ``overrides``: dotted profile keys, as ``--set``."""
    out = Path(out_dir)
    p0 = load_profile(profile, **(overrides or {}))
    if arms is None:
        arms = default_arms(p0)
        if len(arms) < len(paper.ARMS):
            print("# kl-penalty is left out: it needs a reference model, which LoRA does not build")
    plans = plans_for(profile, arms, stages, seeds, str(out), reading, curriculum, overrides)
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
    series = series_key({"profile": p0.to_dict(), "reading": reading, "curriculum": curriculum})
    todo = [plan for plan in plans if not reusable(plan)]
    if todo:
        prepare_data(p0)
    for plan in plans:
        if plan not in todo:
            print(f"skip {plan.arm}/{plan.stage}/seed{plan.seed}: complete, same config and code")
            continue
        if p0.launch.num_gpus:
            gpus.wait_until_free(range(p0.launch.num_gpus), query)
        run_plan(plan, out)
    jobs = [("base", p0.model.name_or_path, p0, {"role": "base", "series": series})]
    jobs += [(f"{p.arm}-{p.stage}-seed{p.seed}", f"{p.out_dir}/model", p.settings,
              {"role": "trained", "arm": p.arm, "stage": p.stage, "seed": p.seed, "series": series, "reading": reading})
             for p in plans]
    if p0.launch.num_gpus:
        failed = [n for n, rc in gpus.run_parallel(eval_jobs(jobs, out), range(p0.launch.num_gpus), query=query,
                                                   log_dir=out / "eval" / "logs").items() if rc]
        if failed:
            raise UserError(f"evaluation(s) {', '.join(failed)} failed: see {out}/eval/logs; rerun to redo only those")
    elif p0.eval.backend == "vllm":  # CPU, vLLM's CPU build: one device, so one evaluation process at a time
        failed = run_in_turn(eval_jobs(jobs, out), out / "eval" / "logs")
        if failed:
            raise UserError(f"evaluation(s) {', '.join(failed)} failed: see {out}/eval/logs; rerun to redo only those")
    else:  # CPU, transformers: one process, the evaluations in turn
        for name, model, settings, meta in jobs:
            run_eval(model, settings, out / "eval" / name, meta=meta)
    paths = report.write_report(out, out / "report", series=series)
    return {"plan": str(out / "plan.json"), "report": {k: str(v) for k, v in paths.items()}, "series": series}
