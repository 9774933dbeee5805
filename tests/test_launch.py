import json
import subprocess
import sys

import pytest
import yaml

from supersmall import launch
from supersmall.config import load_profile


@pytest.mark.parametrize("arm", launch.ARMS)
@pytest.mark.parametrize("stage", list(launch.STAGES))
def test_every_plan_is_valid_and_grpo_config_accepts_it(arm, stage, tmp_path):
    from accelerate.commands.config.config_args import ClusterConfig
    from trl import GRPOConfig

    plan = launch.make_plan("a6000x4", arm, stage, str(tmp_path))
    assert launch.validate(plan, check_hardware=False) == []
    kw = {**plan.grpo_args, "use_cpu": True, "bf16": False}
    kw.pop("use_vllm", None)  # vLLM is not installed here; the rest must be accepted as is
    cfg = GRPOConfig(**kw)
    assert cfg.per_device_train_batch_size * plan.num_processes == 16 * 8
    path = launch.write_plan_files(plan, tmp_path)[0]
    acc = ClusterConfig.from_yaml_file(str(path))  # accelerate's own schema
    assert acc.num_processes == 4 and acc.deepspeed_config["zero_stage"] == 2
    assert any("accelerate launch" in c and f"--arm {arm}" in c for c in plan.commands)


def test_validation_catches_each_mistake(tmp_path):
    full = load_profile("a6000x4")
    server = launch.make_plan(full.replace(**{"launch.vllm_mode": "server"}), "no-kl", "1-3", str(tmp_path))
    msgs = launch.validate(server, check_hardware=False)
    assert len(msgs) == 1 and "do not split over 3 training processes" in msgs[0] and "num_generations=6" in msgs[0]
    ok = launch.make_plan(full.replace(**{"launch.vllm_mode": "server", "train.num_generations": 6}), "no-kl", "1-3",
                          str(tmp_path))
    assert launch.validate(ok, check_hardware=False) == []
    assert ok.commands[0].startswith("CUDA_VISIBLE_DEVICES=3 trl vllm-serve")
    hw = launch.validate(ok, check_hardware=True)
    assert any("needs 4 GPUs but 0 are visible" in m for m in hw)
    assert any("vLLM is not installed" in m for m in hw)
    small = launch.make_plan(full.replace(**{"launch.gpu_memory_gb": 8}), "no-kl", "1-3", str(tmp_path))
    assert any("GB per GPU is needed" in m for m in launch.validate(small, check_hardware=False))
    tok = type("Tok", (), {"chat_template": "x", "apply_chat_template": lambda self, m, tokenize, add_generation_prompt:
                           "<|Assistant|>"})()
    assert any("think_prefill" in m for m in launch.validate(ok, check_hardware=False, tokenizer=tok))
    assert any("reads the column 'answer'" in m for m in launch.validate(ok, check_hardware=False,
                                                                        dataset_columns=["prompt", "solution"]))
    for m in msgs + hw:
        assert m.count(": ") >= 1 and "\n" not in m  # one sentence with its fix


def test_estimate_and_lora():
    e = launch.estimate("a6000x4", "no-kl")
    assert e["completions_per_step"] == 128 and e["paper_minutes"] == 90.5
    assert e["minutes"]["high"] < e["minutes"]["mid"] < e["minutes"]["low"]
    assert launch.estimate("a6000x4", "no-kl", stage="level4")["paper_minutes"] == 130.2
    p, lora = launch.lora_plan()
    assert p.launch.num_gpus == 1 and lora["r"] == 16
    from peft import LoraConfig

    LoraConfig(**lora)


def test_replicate_dry_run_and_estimate_cli(tmp_path):
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "replicate", "--profile", "a6000x4", "--dry-run",
                          "--out", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert [(p["arm"], p["stage"]) for p in plan] == [("no-kl", "level1-3"), ("kl-penalty", "level1-3"),
                                                    ("kl-nopenalty", "level1-3"), ("no-kl", "level4"),
                                                    ("no-kl", "level5")]
    assert plan[3]["model"].endswith("no-kl/level1-3/model")  # stages chain
    assert yaml.safe_load((tmp_path / "accelerate_4gpu.yaml").read_text())["distributed_type"] == "DEEPSPEED"
    real = subprocess.run([sys.executable, "-m", "supersmall.cli", "replicate", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True)
    assert real.returncode == 2 and "problem(s)" in real.stderr and "Traceback" not in real.stderr
    bad = subprocess.run([sys.executable, "-m", "supersmall.cli", "replicate", "--stages", "7", "--dry-run",
                          "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert bad.returncode == 2 and "valid stages" in bad.stderr
    est = subprocess.run([sys.executable, "-m", "supersmall.cli", "estimate", "--profile", "a6000x4"],
                         capture_output=True, text=True)
    assert est.returncode == 0 and "paper (Table 5): 90.5 min" in est.stdout


def test_papermill_batch_accepts_the_full_profile(tmp_path):
    import papermill as pm

    from supersmall.runner import NOTEBOOKS_DIR

    out = tmp_path / "07.ipynb"
    pm.execute_notebook(str(NOTEBOOKS_DIR / "07_full_scale.ipynb"), str(out), kernel_name="python3",
                        parameters={"profile": "a6000x4", "out_dir": str(tmp_path / "o"), "runs_dir": str(tmp_path)},
                        cwd=str(NOTEBOOKS_DIR), progress_bar=False)
    assert (tmp_path / "o" / "full" / "plan.json").exists()


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
