"""supersmall.fullscale.launch: plans (TRL and accelerate accept them), validation, the LoRA variant, replicate --dry-run."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from supersmall import paper, trl_args
from supersmall.config import load_profile
from supersmall.fullscale import gpus, launch

STAGES = ["level1-3", "level4", "level5", "level5.5", "level6"]


def _grpo_config(args):
    """``trl.GRPOConfig`` from a plan's arguments, as given: only ``use_cpu`` is added so that this CPU-only
    machine accepts bf16 (vLLM and DeepSpeed are checked by the trainer, not the config)."""
    from trl import GRPOConfig

    return GRPOConfig(**{**args, "use_cpu": True})


@pytest.mark.parametrize("arm", paper.ARMS)
@pytest.mark.parametrize("stage", STAGES)
def test_every_a6000x4_plan_is_valid_and_trl_and_accelerate_accept_it(arm, stage, tmp_path):
    from accelerate.commands.config.config_args import ClusterConfig

    plan = launch.make_plan("a6000x4", arm, stage, 42, str(tmp_path))
    assert launch.validate(plan, check_hardware=False) == []
    assert plan.levels == paper.stages()[stage]["levels"] and plan.seed == 42
    assert plan.out_dir == f"{tmp_path}/{arm}/{stage}/seed42" and plan.grpo_args["output_dir"] == plan.out_dir
    cfg = _grpo_config(plan.grpo_args)
    for key, value in plan.grpo_args.items():  # every key reaches the config unchanged (none renamed or dropped)
        assert getattr(cfg, key) == value, key
    assert cfg.per_device_train_batch_size * plan.num_processes * cfg.gradient_accumulation_steps == 16 * 8
    assert cfg.use_vllm and cfg.vllm_mode == "colocate" and cfg.bf16 and cfg.loss_type == "dr_grpo"
    assert cfg.beta == {"no-kl": 0.0, "kl-nopenalty": 0.04, "kl-penalty": 0.001}[arm]
    assert cfg.seed == 42 and cfg.max_steps == 100
    path = Path(launch.write_plan_files([plan], tmp_path)).parent / "accelerate_4gpu.yaml"
    acc = ClusterConfig.from_yaml_file(str(path))  # accelerate's own schema
    assert acc.num_processes == 4 and acc.deepspeed_config["zero_stage"] == 2
    assert acc.distributed_type.value == "DEEPSPEED" and str(acc.mixed_precision).endswith("bf16")
    assert len(plan.commands) == 1
    cmd = plan.commands[0]
    assert cmd.startswith("CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=0,1,2,3 accelerate launch --config_file "
                          f"{tmp_path}/accelerate_4gpu.yaml")
    assert f"--arm {arm}" in cmd and "--no-eval" in cmd and f"--out {plan.out_dir}" in cmd
    assert f"--set data.levels={'+'.join(map(str, plan.levels))}" in cmd
    assert plan.estimate["completions_per_step"] == 128 and plan.estimate["fits"]


def test_the_command_line_trains_the_plans_exact_config(tmp_path):
    """The plan's command, parsed back, resolves to the same profile that the plan's grpo_args came from."""
    from supersmall.cli import build_parser
    from supersmall.commands import parse_sets
    from supersmall.train import resolve

    for profile in ("a6000x4", "rehearsal"):
        plan = launch.make_plan(profile, "kl-penalty", "level4", 3, str(tmp_path))
        argv = shlex.split(plan.commands[-1].split(" -m supersmall.cli ", 1)[1])
        args = build_parser().parse_args(argv)
        resolved = resolve(args.profile, args.arm, args.steps, args.seed, args.backend, args.curriculum, args.stages,
                           parse_sets(args.set))
        assert resolved == plan.settings, profile
        assert trl_args.grpo_config_kwargs(resolved, plan.out_dir, arm=args.arm) == plan.grpo_args


def test_rehearsal_plans_use_torchrun_on_two_processes(tmp_path):
    plans = launch.plans_for("rehearsal", paper.ARMS, ["level1-3", "level4", "level5"], [0], str(tmp_path))
    assert [(p.arm, p.stage) for p in plans] == [(a, "level1-3") for a in paper.ARMS] + [("no-kl", "level4"),
                                                                                        ("no-kl", "level5")]
    for plan in plans:
        assert plan.num_processes == 2 and plan.vllm_mode == "none" and plan.estimate == {}
        assert len(plan.commands) == 1
        assert plan.commands[0].startswith(f"{shlex.quote(sys.executable)} -m torch.distributed.run --standalone "
                                           "--nproc_per_node 2 -m supersmall.cli train --profile rehearsal")
        assert plan.grpo_args["ddp_backend"] == "gloo" and plan.grpo_args["use_cpu"] is True
        assert "use_vllm" in plan.grpo_args and plan.grpo_args["use_vllm"] is False
        assert plan.grpo_args["per_device_train_batch_size"] * 2 * plan.grpo_args["gradient_accumulation_steps"] == 8 * 4
        assert launch.validate(plan, check_hardware=True) == []  # nothing to check on CPU
        # ddp_backend needs the torchrun environment (the 2-process rehearsal test in test_train runs it for real)
        _grpo_config({k: v for k, v in plan.grpo_args.items() if k != "ddp_backend"})
    assert plans[0].model == "tiny-r1" and "--model tiny-r1" in plans[0].commands[0]
    # the stages chain: each starts from the no-kl model of the stage before
    assert plans[3].model == f"{tmp_path}/no-kl/level1-3/seed0/model"
    assert plans[4].model == f"{tmp_path}/no-kl/level4/seed0/model"
    path = launch.write_plan_files(plans, tmp_path)
    assert [p["arm"] for p in json.loads(Path(path).read_text())] == [p.arm for p in plans]
    assert not list(tmp_path.glob("accelerate_*.yaml"))  # no accelerate config on CPU


def test_plans_for_orders_seeds_and_stages(tmp_path):
    plans = launch.plans_for("a6000x4", ["no-kl"], ["level1-3", "level5.5"], [1, 2], str(tmp_path))
    assert [(p.arm, p.stage, p.seed) for p in plans] == [("no-kl", "level1-3", 1), ("no-kl", "level5.5", 1),
                                                          ("no-kl", "level1-3", 2), ("no-kl", "level5.5", 2)]
    assert plans[1].model == f"{tmp_path}/no-kl/level5/seed1/model"  # level5.5 continues level 5
    assert [p.seed for p in launch.plans_for("a6000x4", ["no-kl"], ["level1-3"])] == [42, 43, 44, 45, 46]  # claim_seeds
    cumulative = launch.plans_for("a6000x4", ["no-kl"], ["level1-3", "level4"], [0], str(tmp_path),
                                  curriculum="cumulative")
    assert cumulative[1].levels == [1, 2, 3, 4] and cumulative[1].settings.data.levels == "1+2+3+4"
    paper_reading = launch.make_plan("a6000x4", "kl-penalty", reading="paper")
    assert paper_reading.settings.reward.name == "bipolar"
    assert launch.make_plan("a6000x4", "kl-penalty").settings.reward.name == "supersmall"
    with pytest.raises(launch.UserError, match="valid stages"):
        launch.plans_for("a6000x4", ["no-kl"], ["level1-3", "7"], [0], str(tmp_path))
    with pytest.raises(launch.UserError, match="valid stages"):
        launch.make_plan("a6000x4", "no-kl", "1-3")


def test_validation_catches_each_mistake(tmp_path, monkeypatch):
    full = load_profile("a6000x4")
    server = launch.make_plan(full.replace(**{"launch.vllm_mode": "server"}), "no-kl", "level1-3", None, str(tmp_path))
    msgs = launch.validate(server, check_hardware=False)
    assert len(msgs) == 1 and "do not split over 3 processes x 4 accumulation steps" in msgs[0]
    assert "a multiple of 12" in msgs[0]
    ok = launch.make_plan(full.replace(**{"launch.vllm_mode": "server", "train.num_generations": 6}), "no-kl",
                          "level1-3", None, str(tmp_path))
    assert launch.validate(ok, check_hardware=False) == []
    assert ok.num_processes == 3 and ok.grpo_args["vllm_server_port"] == 8000
    assert "CUDA_VISIBLE_DEVICES=3 trl vllm-serve" in ok.commands[0]
    assert "--max-model-len 5120" in ok.commands[0] and "CUDA_VISIBLE_DEVICES=0,1,2 accelerate" in ok.commands[1]
    hw = launch.validate(ok, check_hardware=True)
    assert any("needs 4 GPUs but 0 are visible" in m for m in hw)
    assert any("vLLM is not installed" in m for m in hw)
    monkeypatch.setattr(launch, "package_version", lambda name: "0.99.0" if name == "vllm" else None)
    old = launch.validate(ok, check_hardware=False)
    assert len(old) == 1 and "outside TRL's supported range" in old[0] and "pip install 'vllm" in old[0]
    monkeypatch.setattr(launch, "package_version", lambda name: "0.30.0" if name == "vllm" else None)
    assert launch.validate(ok, check_hardware=False) == []
    monkeypatch.undo()
    small = launch.make_plan(full.replace(**{"launch.gpu_memory_gb": 8}), "no-kl", "level1-3", None, str(tmp_path))
    mem = launch.validate(small, check_hardware=False)
    assert len(mem) == 2 and "GB per GPU is needed but the GPUs have 8 GB (8.0 usable" in mem[0]
    assert "vLLM's share (0.25 x 8 = 2.0 GB) does not hold" in mem[1]
    tok = type("Tok", (), {"chat_template": "x", "apply_chat_template": lambda self, m, tokenize, add_generation_prompt:
                           "<|Assistant|>"})()
    think = launch.validate(ok, check_hardware=False, tokenizer=tok)
    assert len(think) == 1 and "model.think_prefill to false" in think[0]
    cols = launch.validate(ok, check_hardware=False, dataset_columns=["prompt", "solution"])
    assert len(cols) == 1 and "reads the column 'answer'" in cols[0]
    assert launch.validate(ok, check_hardware=False, dataset_columns=["prompt", "answer"]) == []
    for m in msgs + hw + mem + think + cols + old:
        assert m.count(": ") >= 1 and "\n" not in m  # one sentence with its fix


def test_estimate_and_lora():
    plan = launch.make_plan("a6000x4", "no-kl", "level1-3")
    e = plan.estimate
    assert e["completions_per_step"] == 128 and e["paper_minutes"] == 90.5 and e["steps"] == 100
    assert e["minutes"]["low"] < e["minutes"]["mid"] < e["minutes"]["high"]
    assert e["gpu_hours"] == pytest.approx(e["minutes"]["mid"] / 60 * 4, abs=0.01)
    assert e["cost_usd"] == pytest.approx(e["gpu_hours"] * 0.8, abs=0.01) and e["fits"]
    assert e["memory"]["micro_batch"] == 8 and e["memory"]["procs"] == 4
    assert launch.make_plan("a6000x4", "no-kl", "level4").estimate["paper_minutes"] == 130.2
    assert launch.make_plan("a6000x4", "kl-penalty").estimate["paper_minutes"] == 58.4
    assert launch.make_plan("a6000x4", "kl-penalty").estimate["memory"]["reference"] > 0  # a reference copy
    assert e["memory"]["reference"] == 0

    # the one-card LoRA plan is the single-gpu profile (launch.lora_plan, which disagreed with it, is gone)
    assert not hasattr(launch, "lora_plan")
    p = load_profile("single-gpu")
    lora = trl_args.lora_config_kwargs(p)
    assert (p.launch.num_gpus, p.launch.gpu_memory_gb, p.launch.deepspeed_stage, p.launch.vllm_mode) == \
        (1, 24, 0, "colocate")
    assert p.train.gradient_checkpointing and p.train.lora_rank == 16 and trl_args.training_processes(p) == 1
    t = p.train
    assert t.prompts_per_step * t.num_generations == trl_args.per_device_batch(p) * t.gradient_accumulation_steps
    lp = launch.make_plan(p, "no-kl", "level1-3", 0)
    assert lp.num_processes == 1 and launch.validate(lp, check_hardware=False) == []  # it fits the memory model
    full = launch.make_plan(p.replace(**{"train.lora_rank": 0}), "no-kl", "level1-3", 0)
    assert [m for m in launch.validate(full, check_hardware=False) if "GB per GPU" in m]  # full fine-tuning does not
    cfg = _grpo_config(lp.grpo_args)
    assert cfg.per_device_train_batch_size == trl_args.per_device_batch(p)
    assert cfg.gradient_accumulation_steps == t.gradient_accumulation_steps
    assert lp.accelerate_config["distributed_type"] == "NO" and "deepspeed_config" not in lp.accelerate_config
    # the adapters go on every linear layer of a Qwen2 block (the R1-Distill architecture), and only they train
    assert (lora["r"], lora["lora_alpha"], lora["task_type"]) == (16, 32, "CAUSAL_LM")
    from peft import LoraConfig, get_peft_model

    from supersmall import tiny

    model = tiny.new_model(len(tiny.build_tokenizer()))
    linear = {name.rsplit(".", 1)[-1] for name, mod in model.model.layers[0].named_modules()
              if type(mod).__name__ == "Linear"}
    assert set(lora["target_modules"]) == linear
    peft_model = get_peft_model(model, LoraConfig(**lora))
    trainable = [n for n, w in peft_model.named_parameters() if w.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert len(trainable) == 2 * len(lora["target_modules"]) * len(model.model.layers)
    from supersmall.fullscale import model_shape

    counted = sum(w.numel() for w in peft_model.parameters() if w.requires_grad)
    assert model_shape.lora_params(model_shape.model_dims(model.config), lora["r"]) == counted  # the memory model's count


def test_replicate_dry_run_in_process(tmp_path, capsys):
    result = launch.replicate("rehearsal", tmp_path, seeds=[0], dry_run=True)
    assert result["plan"] == str(tmp_path / "plan.json")
    assert set(result["problems"]) == {f"{a}/level1-3/seed0" for a in paper.ARMS} | {"no-kl/level4/seed0",
                                                                                     "no-kl/level5/seed0"}
    assert all(v == [] for v in result["problems"].values())
    printed = capsys.readouterr().out
    assert printed.count("torch.distributed.run --standalone --nproc_per_node 2") == 5
    assert not (tmp_path / "eval").exists() and not (tmp_path / "no-kl").exists()  # nothing ran
    full = launch.replicate("a6000x4", tmp_path / "full", arms=["no-kl"], stages=["level1-3"], seeds=[42], dry_run=True)
    assert full["problems"] == {"no-kl/level1-3/seed42": []}
    assert (tmp_path / "full" / "accelerate_4gpu.yaml").is_file()


@pytest.mark.slow  # over 20 s (CLI processes / a training loop): the slow tier
def test_replicate_dry_run_cli(tmp_path):
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "replicate", "--profile", "a6000x4", "--dry-run",
                          "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    first = [(p["arm"], p["stage"]) for p in plan if p["seed"] == 42]
    assert first == [("no-kl", "level1-3"), ("kl-nopenalty", "level1-3"), ("kl-penalty", "level1-3"),
                     ("no-kl", "level4"), ("no-kl", "level5")]
    assert [p["seed"] for p in plan] == [s for s in load_profile("a6000x4").notebooks.claim_seeds for _ in range(5)]
    assert plan[3]["model"].endswith("no-kl/level1-3/seed42/model")  # stages chain
    assert yaml.safe_load((tmp_path / "accelerate_4gpu.yaml").read_text())["distributed_type"] == "DEEPSPEED"
    real = subprocess.run([sys.executable, "-m", "supersmall.cli", "replicate", "--seeds", "42", "--out",
                           str(tmp_path / "r")], capture_output=True, text=True)
    assert real.returncode == 2 and "problem(s)" in real.stderr and "Traceback" not in real.stderr
    bad = subprocess.run([sys.executable, "-m", "supersmall.cli", "replicate", "--stages", "7", "--dry-run",
                          "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert bad.returncode == 2 and "valid stages" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.notebooks
def test_papermill_batch_accepts_the_full_profile(tmp_path):
    import papermill as pm

    from supersmall.runner import NOTEBOOKS_DIR

    out = tmp_path / "07.ipynb"
    pm.execute_notebook(str(NOTEBOOKS_DIR / "07_full_scale.ipynb"), str(out), kernel_name="python3",
                        parameters={"profile": "a6000x4", "out_dir": str(tmp_path / "o"), "runs_dir": str(tmp_path)},
                        cwd=str(NOTEBOOKS_DIR), progress_bar=False)
    assert list((tmp_path / "o").rglob("plan.json"))


@pytest.mark.slow
def test_gpu_extra_resolves_on_linux(tmp_path):
    """pip's resolver, not an install: the [gpu] extra's pins must be satisfiable together with torch 2.13."""
    pytest.importorskip("pip")
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps",
                          "--ignore-installed", "--report", str(tmp_path / "r.json"), "vllm==0.31.0",
                          "deepspeed>=0.18.6,<0.20"], capture_output=True, text=True, timeout=600)
    if out.returncode != 0 and ("No matching distribution" in out.stderr or "Could not" in out.stderr) \
            and "vllm" not in out.stderr:
        pytest.skip(f"package index unreachable: {out.stderr[-300:]}")
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    names = {i["metadata"]["name"].lower(): i["metadata"] for i in report["install"]}
    assert "vllm" in names
    torch_req = [r for r in names["vllm"].get("requires_dist", []) if r.startswith("torch")]
    assert any("2.13" in r for r in torch_req), torch_req


# --- issue 22: full-scale readiness ------------------------------------------------------------------------
PCIE = "        GPU0    GPU1\nGPU0     X      PHB\nGPU1    PHB      X\n"
NVLINK = "        GPU0    GPU1\nGPU0     X      NV4\nGPU1    NV4      X\n"


def test_nccl_p2p_is_disabled_on_pcie_hosts_in_the_command_line(tmp_path):
    def cmd(topology, **over):
        return launch.make_plan(load_profile("a6000x4", **over), "no-kl", "level1-3", 42, str(tmp_path),
                                topology=lambda: topology).commands[0]

    pin = "CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES="
    assert cmd(PCIE).startswith(f"NCCL_P2P_DISABLE=1 {pin}0,1,2,3 accelerate launch")
    assert cmd(NVLINK).startswith(f"{pin}0,1,2,3 accelerate launch")
    assert cmd(None).startswith(pin)  # unknown (a plan made on CPU): nothing guessed
    assert cmd(NVLINK, **{"launch.nccl_p2p": "off"}).startswith("NCCL_P2P_DISABLE=1 ")
    assert cmd(PCIE, **{"launch.nccl_p2p": "on"}).startswith(pin)
    assert gpus.nvlink_present(lambda: PCIE) is False and gpus.nvlink_present(lambda: NVLINK) is True


@pytest.mark.slow  # over 20 s (CLI processes / a training loop): the slow tier
def test_replicate_and_estimate_take_set_through_the_one_parser(tmp_path, capsys):
    from supersmall.cli import build_parser
    from supersmall.commands import estimate as estimate_cmd
    from supersmall.commands import parse_sets
    from supersmall.train import resolve

    assert not hasattr(estimate_cmd, "_overrides")  # one --set parser (supersmall.commands.parse_sets)
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "replicate", "--profile", "a6000x4", "--dry-run",
                          "--seeds", "42", "--arms", "kl-penalty", "--stages", "level1-3", "--set",
                          "train.learning_rate=1e-6", "--set", "eval.budgets=[1024, 4096]", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    (plan,) = json.loads((tmp_path / "plan.json").read_text())
    assert plan["settings"]["train"]["learning_rate"] == 1e-6 and plan["grpo_args"]["learning_rate"] == 1e-6
    # the command line carries the overrides, so the run trains exactly the plan's config
    args = build_parser().parse_args(shlex.split(plan["commands"][0].split(" -m supersmall.cli ", 1)[1]))
    resolved = resolve(args.profile, args.arm, args.steps, args.seed, args.backend, args.curriculum, args.stages,
                       parse_sets(args.set))
    assert resolved.train.learning_rate == 1e-6 and resolved.eval.budgets == [1024, 4096]
    assert resolved.to_dict() == plan["settings"]
    bad = subprocess.run([sys.executable, "-m", "supersmall.cli", "replicate", "--dry-run", "--set", "train.lr",
                          "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert bad.returncode == 2 and "must be KEY=VALUE" in bad.stderr


def _card(plan, **over):
    from supersmall.runcard import code_version, write_run_card

    write_run_card(plan.out_dir, kind="train", config=over.pop("config", plan.settings), seed=plan.seed,
                   status="complete", extra={"code_version": over.pop("code_version", code_version())})


def test_a_finished_run_is_reused_only_with_the_same_config_and_code(tmp_path, capsys):
    plan = launch.make_plan("rehearsal", "no-kl", "level1-3", 0, str(tmp_path))
    assert not launch.reusable(plan)  # nothing there
    _card(plan)
    assert launch.reusable(plan)
    _card(plan, code_version="0ld")
    assert not launch.reusable(plan) and "other code" in capsys.readouterr().out  # train redoes it
    _card(plan, config=plan.settings.replace(**{"train.learning_rate": 1.0}))
    with pytest.raises(launch.UserError, match="another config"):
        launch.reusable(plan)


def _fake_replicate(monkeypatch, calls):
    monkeypatch.setattr(launch, "validate", lambda plan, **kw: [])
    monkeypatch.setattr(launch, "prepare_data", lambda p: calls.append("prepare"))
    monkeypatch.setattr(launch, "run_plan", lambda plan, out: calls.append(f"train {plan.arm}/{plan.stage}"))
    monkeypatch.setattr(launch.gpus, "wait_until_free", lambda ids, query: calls.append(f"free {list(ids)}"))
    monkeypatch.setattr(launch.report, "write_report", lambda out, dest, series: {})


def test_replicate_refuses_a_stale_run_of_another_config(tmp_path, monkeypatch):
    calls = []
    _fake_replicate(monkeypatch, calls)
    plan = launch.make_plan("rehearsal", "no-kl", "level1-3", 0, str(tmp_path))
    _card(plan)
    with pytest.raises(launch.UserError, match="another config"):
        launch.replicate("rehearsal", tmp_path, ["no-kl"], ["level1-3"], [0], overrides={"train.learning_rate": 0.1})
    assert calls == []  # refused before anything trained


def test_replicate_evaluates_each_model_in_its_own_process_one_per_gpu(tmp_path, monkeypatch):
    calls, parallel = [], {}
    _fake_replicate(monkeypatch, calls)

    def run_parallel(jobs, gpu_ids, query, log_dir, env):
        parallel.update(jobs=jobs, gpus=list(gpu_ids), env=env)
        return dict.fromkeys(jobs, 0)

    monkeypatch.setattr(launch.gpus, "run_parallel", run_parallel)
    monkeypatch.setattr(launch, "run_eval", lambda *a, **k: pytest.fail("no evaluation inside replicate on GPUs"))
    launch.replicate("a6000x4", tmp_path, seeds=[42, 43, 44])
    # the data is prepared once, before any rank starts; each training run waits for free GPUs
    assert calls[0] == "prepare" and calls.count("prepare") == 1
    assert calls[1:3] == ["free [0, 1, 2, 3]", "train no-kl/level1-3"] and calls.count("free [0, 1, 2, 3]") == 15
    assert parallel["gpus"] == ["0", "1", "2", "3"] and len(parallel["jobs"]) == 16 and "base" in parallel["jobs"]
    assert parallel["env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # nvidia-smi's numbering, which wait_until_free asks
    for name, cmd in parallel["jobs"].items():
        assert "eval_job" in cmd and "CUDA_VISIBLE_DEVICES" not in cmd  # run_parallel adds the GPU
        job = json.loads((tmp_path / "eval" / name / "job.json").read_text())
        assert load_profile(job["profile"]).launch.num_gpus == 4
    job = json.loads((tmp_path / "eval" / "kl-penalty-level1-3-seed43" / "job.json").read_text())
    assert job["model"] == f"{tmp_path}/kl-penalty/level1-3/seed43/model"
    assert job["meta"]["arm"] == "kl-penalty" and job["meta"]["seed"] == 43 and job["meta"]["role"] == "trained"


def test_run_parallel_gives_each_job_a_free_gpu(tmp_path):
    seen = []

    def query():  # GPU 1 is busy for the first two polls (an evaluation engine still exiting)
        seen.append(1)
        return {0: 0.3, 1: 20.0 if len(seen) <= 2 else 0.4}

    script = "import os, sys, time; time.sleep(0.3); open(sys.argv[1], 'w').write(os.environ['CUDA_VISIBLE_DEVICES'])"
    jobs = {f"j{i}": f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} {tmp_path}/j{i}" for i in range(4)}
    status = gpus.run_parallel(jobs, [0, 1], query=query, poll=0.05, wait_timeout=5)
    assert status == dict.fromkeys(jobs, 0)
    assert sorted((tmp_path / f"j{i}").read_text() for i in range(4)) == ["0", "0", "1", "1"]
    assert len(seen) >= 3  # the busy GPU was polled until free


def test_wait_until_free_names_the_busy_gpu():
    waits = []
    with pytest.raises(launch.UserError, match=r"GPU 2 \(30.0 GB\) still in use after 10 s"):
        gpus.wait_until_free([0, 2], lambda: {0: 0.2, 2: 30.0}, timeout=10, poll=5, sleep=waits.append)
    assert waits == [5, 5]
    gpus.wait_until_free([0, 1], lambda: {}, sleep=waits.append)  # no GPU information: nothing to wait for


def test_a_finished_run_that_hangs_at_exit_is_stopped(tmp_path):
    import time

    flag = tmp_path / "run_card.json"
    script = f"import time; open({str(flag)!r}, 'w').write('x'); time.sleep(120)"
    t0 = time.time()
    rc = gpus.run_command(f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}", done=flag.exists,
                          exit_timeout=1.0, poll=0.1)
    assert rc == 0 and time.time() - t0 < 30
    assert gpus.run_command(f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(3)'", poll=0.05) == 3


def test_lora_refuses_the_kl_penalty_arm_and_single_gpu_plans(tmp_path):
    p = load_profile("single-gpu")
    msgs = launch.validate(launch.make_plan(p, "kl-penalty", "level1-3", 42, str(tmp_path)), check_hardware=False)
    assert len(msgs) == 1 and "LoRA" in msgs[0] and "drop kl-penalty" in msgs[0]
    assert launch.default_arms(p) == ["no-kl", "kl-nopenalty"] and launch.default_arms(load_profile("a6000x4")) == \
        list(paper.ARMS)
    result = launch.replicate("single-gpu", tmp_path / "sg", dry_run=True)
    assert len(result["problems"]) == 4 * len(p.notebooks.claim_seeds) and all(v == [] for v in result["problems"].values())
    plans = json.loads((tmp_path / "sg" / "plan.json").read_text())
    assert {pl["arm"] for pl in plans} == {"no-kl", "kl-nopenalty"} and all(pl["num_processes"] == 1 for pl in plans)
    assert all(pl["settings"]["train"]["lora_rank"] > 0 for pl in plans)
    assert plans[0]["settings"]["model"]["name_or_path"] == load_profile("a6000x4").model.name_or_path
    assert plans[0]["settings"]["eval"] == load_profile("a6000x4").to_dict()["eval"]  # the same evaluation
    assert plans[0]["settings"]["curriculum"] == load_profile("a6000x4").to_dict()["curriculum"]


# --- issue 28 (devices) and issue 31 (past one machine) ------------------------------------------------------
def test_commands_pin_the_users_own_gpus_in_pci_order(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpus.visible_devices(4) == ["0", "1", "2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3,6,7")  # a shared host: the user's GPUs are 2, 3, 6 and 7
    assert gpus.visible_devices(4) == ["2", "3", "6", "7"]
    plan = launch.make_plan("a6000x4", "no-kl", "level1-3", 42, str(tmp_path))
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=2,3,6,7 accelerate launch" in plan.commands[0]
    server = launch.make_plan(load_profile("a6000x4", **{"launch.vllm_mode": "server", "train.num_generations": 6}),
                              "no-kl", "level1-3", 42, str(tmp_path))
    assert "CUDA_VISIBLE_DEVICES=7 trl vllm-serve" in server.commands[0]  # the last of the user's GPUs
    assert "CUDA_VISIBLE_DEVICES=2,3,6 accelerate" in server.commands[1]
    for hidden in ("", "-1"):  # GPUs hidden (a CPU host making a plan for a GPU host): the plan's own numbering
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert gpus.visible_devices(4) == ["0", "1", "2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with pytest.raises(launch.UserError, match="names 1 GPU.*launch.num_gpus=4"):
        launch.make_plan("a6000x4", "no-kl", "level1-3", 42, str(tmp_path))
    # every process gets PCI order (nvidia-smi's numbering, which wait_until_free asks) and expandable segments
    assert plan.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert plan.env["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    assert gpus.indices(["2", "GPU-8f3a", "7"]) == [2, 7]  # UUID entries cannot be asked about


def test_vllm_serve_gets_the_trainers_nccl_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    p = load_profile("a6000x4", **{"launch.vllm_mode": "server", "train.num_generations": 6})
    plan = launch.make_plan(p, "no-kl", "level1-3", 42, str(tmp_path), topology=lambda: PCIE)
    server, trainer = plan.commands
    assert trainer.startswith("NCCL_P2P_DISABLE=1 ")
    for setting in ("NCCL_P2P_DISABLE=1", "NCCL_ASYNC_ERROR_HANDLING=1", "CUDA_DEVICE_ORDER=PCI_BUS_ID"):
        assert setting in server.split(" trl vllm-serve")[0], setting
    nvlink = launch.make_plan(p, "no-kl", "level1-3", 42, str(tmp_path), topology=lambda: NVLINK)
    assert "NCCL_P2P_DISABLE" not in nvlink.commands[0] and "NCCL_P2P_DISABLE" not in nvlink.commands[1]


def test_gpus_per_run_runs_two_seeds_at_once_on_disjoint_gpus_of_an_8_gpu_host(tmp_path, monkeypatch):
    import threading

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    over = {"launch.num_gpus": 8, "launch.gpus_per_run": 4}
    plans = launch.plans_for("a6000x4", ["no-kl"], ["level1-3", "level4"], [42, 43], str(tmp_path), overrides=over)
    by_seed = {p.seed: p for p in plans if p.stage == "level1-3"}
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3 accelerate" in by_seed[42].commands[0]
    assert "CUDA_VISIBLE_DEVICES=4,5,6,7 accelerate" in by_seed[43].commands[0]
    assert "--main_process_port 29501" in by_seed[43].commands[0]  # its own rendezvous port on the shared host
    assert "--main_process_port" not in by_seed[42].commands[0]
    for plan in plans:  # each run is a 4-GPU run: 4 processes, the a6000x4 batch split over them
        assert plan.num_processes == 4 and plan.grpo_args["per_device_train_batch_size"] == 8
        assert plan.accelerate_config["num_processes"] == 4 and launch.validate(plan, check_hardware=False) == []
    # the level-4 stage of a seed stays on that seed's GPUs (its chain)
    assert [p.devices for p in plans if p.seed == 43] == [["4", "5", "6", "7"]] * 2
    with pytest.raises(launch.ProfileError, match="gpus_per_run = 8 is more than"):
        load_profile("a6000x4", **{"launch.gpus_per_run": 8})
    served = launch.make_plan(load_profile("a6000x4", **over, **{"launch.vllm_mode": "server"}), "no-kl")
    assert any("weight-sync port" in m for m in launch.validate(served, check_hardware=False))
    # replicate runs the two slots at once: each fake run waits for the other to start (a barrier)
    calls, barrier, inside = [], threading.Barrier(2, timeout=20), set()
    _fake_replicate(monkeypatch, calls)

    def run_plan(plan, out):
        inside.add(tuple(plan.devices))
        if plan.stage == "level1-3":
            barrier.wait()  # times out (BrokenBarrierError) if the runs go one after another

    monkeypatch.setattr(launch, "run_plan", run_plan)
    monkeypatch.setattr(launch.gpus, "run_parallel", lambda jobs, gpu_ids, **kw: dict.fromkeys(jobs, 0))
    launch.replicate("a6000x4", tmp_path / "r", ["no-kl"], ["level1-3", "level4"], [42, 43], overrides=over)
    assert inside == {("0", "1", "2", "3"), ("4", "5", "6", "7")}
    assert sorted(c for c in calls if c.startswith("free")) == ["free [0, 1, 2, 3]"] * 2 + ["free [4, 5, 6, 7]"] * 2


def test_a_two_node_dry_run_prints_both_nodes_command_lines(tmp_path, capsys, monkeypatch):
    from accelerate.commands.config.config_args import ClusterConfig

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    over = {"launch.num_machines": 2, "launch.main_process_ip": "10.0.0.1", "launch.main_process_port": 29600}
    result = launch.replicate("a6000x4", tmp_path, ["no-kl"], ["level1-3"], [42], dry_run=True, overrides=over)
    assert result["problems"] == {"no-kl/level1-3/seed42": []}
    printed = capsys.readouterr().out
    rank0 = [line for line in printed.splitlines() if "accelerate launch" in line and "--machine_rank 0" in line]
    rank1 = [line for line in printed.splitlines() if "accelerate launch" in line and "--machine_rank 1" in line]
    assert len(rank0) == 1 and len(rank1) == 1 and rank1[0].startswith("# on host 1 (machine_rank 1): ")
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3 accelerate" in rank1[0]  # 4 local GPUs on each host
    cfg = ClusterConfig.from_yaml_file(str(tmp_path / "accelerate_2x4gpu.yaml"))  # accelerate's own schema
    assert (cfg.num_machines, cfg.num_processes, cfg.machine_rank) == (2, 8, 0)
    assert (cfg.main_process_ip, cfg.main_process_port) == ("10.0.0.1", 29600)
    (plan,) = json.loads((tmp_path / "plan.json").read_text())
    # 8 processes in all: the step's 128 completions split 2 per process and micro-step (batch unchanged)
    assert plan["num_processes"] == 8 and plan["grpo_args"]["per_device_train_batch_size"] == 4
    assert plan["grpo_args"]["per_device_train_batch_size"] * 8 * plan["grpo_args"]["gradient_accumulation_steps"] \
        == 16 * 8
    host1 = load_profile("a6000x4", **{**over, "launch.machine_rank": 1})
    p1 = launch.make_plan(host1, "no-kl", "level1-3", 42, str(tmp_path))
    assert "--machine_rank 1" in p1.commands[0] and "--machine_rank 0" in p1.elsewhere["host 0 (machine_rank 0)"][0]
    assert launch.run_identity(host1) == launch.run_identity(load_profile("a6000x4", **over))  # one run, one series
    no_ip = launch.make_plan(load_profile("a6000x4", **{"launch.num_machines": 2}), "no-kl")
    assert any("launch.main_process_ip" in m for m in launch.validate(no_ip, check_hardware=False))
    with pytest.raises(launch.ProfileError, match="machine_rank = 2 is not valid"):
        load_profile("a6000x4", **{**over, "launch.machine_rank": 2})


def test_a_remote_vllm_server_reaches_trl_and_starts_no_local_server(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    p = load_profile("a6000x4", **{"launch.vllm_mode": "server", "launch.vllm_server_host": "10.0.0.9",
                                   "launch.vllm_server_port": 8010})
    plan = launch.make_plan(p, "no-kl", "level1-3", 42, str(tmp_path), topology=lambda: PCIE)
    cfg = _grpo_config(plan.grpo_args)  # TRL's own config takes them
    assert (cfg.vllm_mode, cfg.vllm_server_host, cfg.vllm_server_port) == ("server", "10.0.0.9", 8010)
    assert len(plan.commands) == 1 and "vllm-serve" not in plan.commands[0]  # no local server
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3 accelerate" in plan.commands[0]  # every local GPU trains
    assert plan.num_processes == 4 and launch.validate(plan, check_hardware=False) == []
    (remote,) = plan.elsewhere["vLLM server on 10.0.0.9"]
    assert "trl vllm-serve" in remote and "--host 0.0.0.0 --port 8010" in remote
    assert "NCCL_P2P_DISABLE=1" in remote and "NCCL_ASYNC_ERROR_HANDLING=1" in remote  # NCCL on both sides
    calls = []
    monkeypatch.setattr(launch.gpus, "run_command", lambda cmd, env, **kw: calls.append(cmd) or 0)
    monkeypatch.setattr(launch.subprocess, "Popen", lambda *a, **k: pytest.fail("no local server"))
    launch.run_plan(plan, tmp_path)
    assert calls == plan.commands
    local = launch.make_plan(p.replace(**{"launch.vllm_server_host": "", "train.num_generations": 6}), "no-kl")
    assert local.grpo_args["vllm_server_host"] == "127.0.0.1" and "vllm-serve" in local.commands[0]
    wrong = launch.make_plan(load_profile("a6000x4", **{"launch.vllm_server_host": "10.0.0.9"}), "no-kl")
    assert any("set launch.vllm_mode to server" in m for m in launch.validate(wrong, check_hardware=False))


def test_a_host_of_machine_rank_1_only_trains(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    calls = []
    _fake_replicate(monkeypatch, calls)
    monkeypatch.setattr(launch.gpus, "run_parallel", lambda *a, **k: pytest.fail("host 1 evaluates nothing"))
    over = {"launch.num_machines": 2, "launch.machine_rank": 1, "launch.main_process_ip": "10.0.0.1"}
    result = launch.replicate("a6000x4", tmp_path, ["no-kl"], ["level1-3", "level4"], [42], overrides=over)
    assert [c for c in calls if c.startswith("train")] == ["train no-kl/level1-3", "train no-kl/level4"]
    assert "report" not in result and not (tmp_path / "eval").exists()


def test_run_in_turn_runs_each_command_in_its_own_process_and_names_the_failures(tmp_path):
    done = tmp_path / "order.txt"
    failed = launch.run_in_turn({"a": f"echo a >> {done}; echo hello", "b": "exit 3", "c": f"echo c >> {done}"},
                                tmp_path / "logs")
    assert failed == ["b"] and done.read_text().split() == ["a", "c"]
    assert (tmp_path / "logs" / "a.log").read_text().strip() == "hello"
