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

Past one machine (the README's section of that name): ``replicate(..., shard=(i, n))`` runs every n-th seed
(:func:`shard_seeds`; :mod:`supersmall.fullscale.shards` merges the shards' folders into one report);
``launch.gpus_per_run`` runs several seeds at once on disjoint GPUs of one host; ``launch.num_machines``,
``machine_rank``, ``main_process_ip``/``port`` make one run span hosts (each host's command line in the
plan, the others' in ``Plan.elsewhere``); ``launch.vllm_server_host`` uses a ``trl vllm-serve`` on another
host. Commands pin the GPUs the user's ``CUDA_VISIBLE_DEVICES`` lists, in PCI order.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from supersmall import paper, report
from supersmall.config import Profile, ProfileError, _build, load_profile
from supersmall.data import template_opens_think, train_rows
from supersmall.errors import UserError
from supersmall.evaluate import run_eval
from supersmall.fullscale import cost, gpus
from supersmall.fullscale import estimate as est
from supersmall.runcard import is_complete, package_version, read_run_card, reuse_decision, series_key
from supersmall.trl_args import (
    accelerate_config,
    grpo_config_kwargs,
    local_vllm_server,
    training_processes,
    trl_vllm_range,
)

# every process of a plan gets these (the trainer and a trl vllm-serve alike), with the GPU settings of gpus.py
ENV = {"TOKENIZERS_PARALLELISM": "false", "NCCL_ASYNC_ERROR_HANDLING": "1", "PYTHONUNBUFFERED": "1",
       **gpus.DEVICE_ENV}
# launch keys that say which host is which (not what a run computes) and the host's description, which the run's
# process count sums up: runs that differ only in these are the same run (shards on unlike hosts merge)
WHERE = ("machine_rank", "main_process_ip", "main_process_port", "vllm_server_host", "vllm_server_port")
HOST = ("num_gpus", "gpus_per_run", "num_machines", "num_processes", "gpu_memory_gb", "gpu_usable_gb",
        "usd_per_gpu_hour", "nccl_p2p")


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
    devices: list[str] = field(default_factory=list)  # this host's GPUs of the run (CUDA_VISIBLE_DEVICES entries)
    slot: int = 0  # which of the host's concurrent runs (launch.gpus_per_run) it is
    elsewhere: dict[str, list[str]] = field(default_factory=dict)  # commands for other hosts (printed, never run)

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


def run_identity(profile: Profile) -> dict[str, Any]:
    """What a run computes: the profile less the launch keys of :data:`WHERE` and :data:`HOST`, plus its number of
    training processes (which sets the per-device batch). The series key and the reuse check compare this."""
    d = profile.to_dict()
    d["launch"] = {k: v for k, v in d["launch"].items() if k not in WHERE + HOST}
    d["launch"]["training_processes"] = training_processes(profile)
    return d


def local_processes(profile: Profile) -> int:
    """Training processes of one run on each of its hosts."""
    return training_processes(profile) // max(1, profile.launch.num_machines)


def _prefix(env: dict[str, str]) -> str:
    return "".join(f"{k}={shlex.quote(v)} " for k, v in env.items())


def make_plan(profile: Profile | str, arm: str = "no-kl", stage: str = "level1-3", seed: int | None = None,
              out_dir: str = "runs/full", model: str | None = None, reading: str = "isolated",
              curriculum: str = "staged", topology: Any = None, overrides: dict[str, Any] | None = None,
              devices: list[str] | None = None, slot: int = 0) -> Plan:
    """The plan of one run: ``arm`` (Table 3) on ``stage`` (Sec. 4.4), under one ``seed``. ``topology`` (tests):
    a function returning ``nvidia-smi topo -m``'s text, for ``launch.nccl_p2p: auto``. ``devices``: this host's
    GPUs of the run (default: the first ``gpus_per_run`` of :func:`supersmall.fullscale.gpus.visible_devices`);
    ``slot``: which concurrent run on the host it is (its own rendezvous port)."""
    stages = paper.stages(curriculum)
    if stage not in stages:
        raise UserError(f"unknown stage {stage!r}; valid stages are: {', '.join(stages)}")
    base = load_profile(profile, **(overrides or {}))
    seed = base.train.seed if seed is None else seed
    levels = stages[stage]["levels"]
    sets = {**paper.arm_settings(arm, reading), "train.arm": arm, "train.seed": seed,
            "train.steps": cost.stage_steps(base, stage), "data.levels": "+".join(map(str, levels))}
    p = base.replace(**sets)
    launch = p.launch
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
    devices = list(devices) if devices else (gpus.visible_devices(launch.gpus_per_run or launch.num_gpus)
                                             if launch.num_gpus else [])
    elsewhere: dict[str, list[str]] = {}
    max_len = p.train.max_prompt_length + p.train.max_completion_length
    nccl = gpus.nccl_env(launch.nccl_p2p, topology) if launch.num_gpus else {}
    # the trainer's NCCL settings, for a vLLM server too (its weight-sync group is an NCCL group with rank 0)
    server_env = {**nccl, "NCCL_ASYNC_ERROR_HANDLING": ENV["NCCL_ASYNC_ERROR_HANDLING"], **gpus.DEVICE_ENV}
    if launch.num_gpus:
        local = local_processes(p)
        pin = f"{_prefix({**nccl, 'CUDA_DEVICE_ORDER': gpus.DEVICE_ENV['CUDA_DEVICE_ORDER']})}" \
              f"CUDA_VISIBLE_DEVICES={','.join(devices[:local])}"
        config = f"{out_dir}/{accelerate_file(p)}"
        port = f" --main_process_port {launch.main_process_port + slot}" if slot else ""

        def node(rank: int) -> str:
            machine = f" --machine_rank {rank}" if launch.num_machines > 1 else ""
            return f"{pin} accelerate launch --config_file {config}{machine}{port} {cli}"

        commands = [node(launch.machine_rank)]
        elsewhere.update({f"host {r} (machine_rank {r})": [node(r)] for r in range(launch.num_machines)
                          if r != launch.machine_rank})
    else:
        if procs > 1:
            launcher = f"{shlex.quote(sys.executable)} -m torch.distributed.run --standalone --nproc_per_node {procs}"
        else:
            launcher = shlex.quote(sys.executable)
        commands = [f"{launcher} {cli}"]
    if launch.vllm_mode == "server":
        serve = f"trl vllm-serve --model {shlex.quote(start)} --port {launch.vllm_server_port} --max-model-len {max_len}"
        if local_vllm_server(p):  # started by run_plan, on this host's last GPU of the run, stopped with the run
            commands.insert(0, f"{_prefix(server_env)}CUDA_VISIBLE_DEVICES={devices[-1] if devices else 0} "
                               f"{serve.replace(' --port', ' --host 127.0.0.1 --port')}")
        else:  # a server on another host: started there by the user, listening on every interface
            elsewhere[f"vLLM server on {launch.vllm_server_host}"] = [
                f"{_prefix(server_env)}CUDA_VISIBLE_DEVICES=0 {serve.replace(' --port', ' --host 0.0.0.0 --port')}"]
    acc = accelerate_config(procs, launch.deepspeed_stage, "bf16" if p.train.bf16 else "no", launch.num_machines,
                            launch.machine_rank, launch.main_process_ip, launch.main_process_port)
    return Plan(arm=arm, stage=stage, seed=seed, levels=list(levels), out_dir=run_dir, model=start,
                num_processes=procs, vllm_mode=launch.vllm_mode, accelerate_config=acc,
                grpo_args=grpo_config_kwargs(p, run_dir, arm=arm), env=dict(ENV), commands=commands, settings=p,
                estimate=est.estimate(p, arm, stage) if launch.num_gpus else {}, devices=devices, slot=slot,
                elsewhere=elsewhere)


def accelerate_file(profile: Profile) -> str:
    """The accelerate config's file name: ``accelerate_4gpu.yaml``, across hosts ``accelerate_2x4gpu.yaml``."""
    machines, procs = profile.launch.num_machines, training_processes(profile)
    return f"accelerate_{procs}gpu.yaml" if machines == 1 else f"accelerate_{machines}x{procs // machines}gpu.yaml"


def shard_seeds(seeds: list[int], shard: tuple[int, int] | None) -> list[int]:
    """Shard ``i`` of ``n`` (``replicate --shard i/n``) takes every n-th seed from the i-th: the shards are
    disjoint and together hold every seed (a curriculum chain stays within one seed, so within one shard)."""
    if shard is None:
        return list(seeds)
    i, n = shard
    if not 0 <= i < n:
        raise UserError(f"--shard {i}/{n} is not valid: use i/n with 0 <= i < n, e.g. --shard 0/2 and --shard 1/2")
    if n > len(seeds):
        raise UserError(f"--shard {i}/{n} splits {len(seeds)} seed(s) over {n} shards, leaving some empty: use at "
                        f"most {len(seeds)} shards")
    return list(seeds)[i::n]


def plans_for(profile: Profile | str, arms: list[str] | tuple[str, ...] = paper.ARMS,
              stages: list[str] | tuple[str, ...] = ("level1-3", "level4", "level5"), seeds: list[int] | None = None,
              out_dir: str = "runs/full", reading: str = "isolated", curriculum: str = "staged",
              overrides: dict[str, Any] | None = None) -> list[Plan]:
    """Table 3's arms on level 1-3, then the curriculum stages of the no-kl model, each starting from the
    model of the stage it names (``start_from``), for every seed."""
    p0 = load_profile(profile, **(overrides or {}))
    seeds = list(seeds) if seeds else p0.notebooks.claim_seeds
    # launch.gpus_per_run: the host's GPUs in disjoint groups, one seed's chain per group (seeds in turn)
    slots = gpus.device_slots(gpus.visible_devices(p0.launch.num_gpus), p0.launch.gpus_per_run) \
        if p0.launch.num_gpus else [[]]
    presets = paper.stages(curriculum)
    plans = []
    for k, seed in enumerate(seeds):
        kw = {"overrides": overrides, "devices": slots[k % len(slots)] or None, "slot": k % len(slots)}
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
            cfg = out / accelerate_file(plan.settings)
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
    launch = p.launch
    if launch.num_machines > 1 and not launch.main_process_ip:
        errors.append(f"a run over {launch.num_machines} hosts needs the rank-0 host's address: set "
                      "launch.main_process_ip (and launch.machine_rank on each host).")
    if launch.vllm_server_host and launch.vllm_mode != "server":
        errors.append(f"launch.vllm_server_host is {launch.vllm_server_host!r} but launch.vllm_mode is "
                      f"{launch.vllm_mode!r}: set launch.vllm_mode to server to use that server.")
    if local_vllm_server(p) and launch.num_gpus and (launch.gpus_per_run or launch.num_gpus) < launch.num_gpus:
        errors.append("concurrent runs (launch.gpus_per_run) with a local vLLM server each would share TRL's "
                      "weight-sync port: use launch.vllm_mode colocate, or one run at a time (gpus_per_run 0).")
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
                server = subprocess.Popen(cmd, shell=True, env=env, stdout=(log_dir / f"vllm{plan.slot}.log").open("w"),
                                          stderr=subprocess.STDOUT, start_new_session=True)
                _wait_for_port(plan.settings.launch.vllm_server_port)
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
    train (no run, unfinished, or older code: ``train`` resumes or redoes it); a run of another config is an
    error (:func:`supersmall.runcard.reuse_decision`, the policy ``train`` applies too). Configs are compared by
    :func:`run_identity`: where a run is launched (hosts, GPUs, ports) is not what it computes."""
    try:
        card = read_run_card(plan.out_dir)
    except FileNotFoundError:
        card = None
    if card is not None:
        card = {**card, "config": _identity_of(card.get("config"))}
    decision = reuse_decision(card, run_identity(plan.settings))
    if decision.action == "refuse":
        raise UserError(f"{plan.out_dir} {decision.reason}")
    if decision.action == "retrain":
        print(f"{plan.out_dir}: {decision.reason}")
    return decision.action == "reuse"


def _identity_of(config: Any) -> Any:
    """:func:`run_identity` of a run card's config (None when it is not a profile)."""
    try:
        return json.loads(json.dumps(run_identity(_build(Profile, config, where="run card"))))
    except (ProfileError, TypeError, ValueError, KeyError):
        return None


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


def _train_slots(plans: list[Plan], out: Path, query: gpus.Query) -> None:
    """Train the plans, the plans of one slot (one group of GPUs, ``launch.gpus_per_run``) in order, the slots at
    once; an error in one slot lets the others finish, then is raised."""
    slots: dict[int, list[Plan]] = {}
    for plan in plans:
        slots.setdefault(plan.slot, []).append(plan)
    lock = threading.Lock()

    def train(todo: list[Plan]) -> None:
        for plan in todo:
            with lock:  # the reuse check prints and may raise: one slot at a time
                skip = reusable(plan)
            if skip:
                print(f"skip {plan.arm}/{plan.stage}/seed{plan.seed}: complete, same config and code")
                continue
            if plan.settings.launch.num_gpus:
                gpus.wait_until_free(gpus.indices(plan.devices), query)
            run_plan(plan, out)

    if len(slots) == 1:
        train(next(iter(slots.values())))
        return
    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        futures = [pool.submit(train, todo) for todo in slots.values()]
    for f in futures:
        f.result()


def replicate(profile: Profile | str, out_dir: str | Path, arms: list[str] | tuple[str, ...] | None = None,
              stages: list[str] | tuple[str, ...] = ("level1-3", "level4", "level5"), seeds: list[int] | None = None,
              reading: str = "isolated", curriculum: str = "staged", dry_run: bool = False,
              overrides: dict[str, Any] | None = None, query: gpus.Query = gpus.memory_used,
              shard: tuple[int, int] | None = None) -> dict[str, Any]:
    """The replication, in order: train every plan (reusing complete runs of the same config and code; with
    ``launch.gpus_per_run`` several seeds at once on disjoint GPUs), then evaluate the base model once and every
    trained model with one protocol (on GPUs: one process per evaluation, one per GPU in parallel, each GPU checked
    free first), then write the report (``out/report/verdicts.json``). ``overrides``: dotted profile keys, as
    ``--set``. ``shard=(i, n)``: only shard i's seeds (:func:`shard_seeds`), the base evaluated on shard 0 only,
    and no report (``supersmall report --runs`` merges the shards'). On a host with ``launch.machine_rank`` > 0
    (a run over several hosts) only the training runs: the rank-0 host evaluates and reports."""
    out = Path(out_dir)
    p0 = load_profile(profile, **(overrides or {}))
    if arms is None:
        arms = default_arms(p0)
        if len(arms) < len(paper.ARMS):
            print("# kl-penalty is left out: it needs a reference model, which LoRA does not build")
    seeds = shard_seeds(list(seeds) if seeds else p0.notebooks.claim_seeds, shard)
    plans = plans_for(profile, arms, stages, seeds, str(out), reading, curriculum, overrides)
    write_plan_files(plans, out)
    problems = {f"{p.arm}/{p.stage}/seed{p.seed}": validate(p, check_hardware=not dry_run) for p in plans}
    if shard:
        print(f"# shard {shard[0]}/{shard[1]}: seeds {', '.join(map(str, seeds))}"
              + (", and the base model's evaluation" if shard[0] == 0 else ""))
    print("# every command runs with " + " ".join(f"{k}={v}" for k, v in ENV.items()))
    for plan in plans:
        print(f"# {plan.arm} / {plan.stage} / seed {plan.seed}: {plan.num_processes} training process(es)"
              + (f" on GPUs {','.join(plan.devices)}" if plan.devices else "") + f", vLLM {plan.vllm_mode}"
              + (f", ~{plan.estimate['minutes']['mid']:.0f} min" if plan.estimate else ""))
        print("\n".join(plan.commands + [f"  ! {m}" for m in problems[f"{plan.arm}/{plan.stage}/seed{plan.seed}"]]))
        for where, cmds in plan.elsewhere.items():
            print("\n".join(f"# on {where}: {c}" for c in cmds))
    if dry_run:
        return {"plan": str(out / "plan.json"), "problems": problems}
    blocking = [m for msgs in problems.values() for m in msgs]
    if blocking:
        raise UserError(f"{len(blocking)} problem(s) above; fix them or use --dry-run")
    series = series_key({"profile": run_identity(p0), "reading": reading, "curriculum": curriculum})
    if any(not reusable(plan) for plan in plans):
        prepare_data(p0)
    _train_slots(plans, out, query)
    if p0.launch.machine_rank > 0:
        print(f"# machine_rank {p0.launch.machine_rank}: training done; the rank-0 host evaluates and reports")
        return {"plan": str(out / "plan.json"), "series": series}
    jobs = [("base", p0.model.name_or_path, p0, {"role": "base", "series": series})] if not shard or shard[0] == 0 \
        else []
    jobs += [(f"{p.arm}-{p.stage}-seed{p.seed}", f"{p.out_dir}/model", p.settings,
              {"role": "trained", "arm": p.arm, "stage": p.stage, "seed": p.seed, "series": series, "reading": reading})
             for p in plans]
    if p0.launch.num_gpus:
        failed = [n for n, rc in gpus.run_parallel(eval_jobs(jobs, out), gpus.visible_devices(p0.launch.num_gpus),
                                                   env={**os.environ, **ENV}, query=query,
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
    if shard and shard[1] > 1:
        print(f"# shard {shard[0]}/{shard[1]} done: merge every shard's folder with supersmall report --runs DIR ... "
              "--out DIR")
        return {"plan": str(out / "plan.json"), "series": series, "shard": list(shard)}
    paths = report.write_report(out, out / "report", series=series)
    return {"plan": str(out / "plan.json"), "report": {k: str(v) for k, v in paths.items()}, "series": series}
