"""The memory model, the time model and ``supersmall estimate`` (supersmall/fullscale/estimate.py)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from supersmall import paper
from supersmall.cli import main
from supersmall.config import LaunchConfig, load_profile
from supersmall.fullscale import cost
from supersmall.fullscale import estimate as E
from supersmall.fullscale.model_shape import model_dims

ROOT = Path(__file__).resolve().parents[2]
R1 = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"
UTIL = {"launch.vllm_gpu_memory_utilization": 0.35} if hasattr(LaunchConfig(), "vllm_gpu_memory_utilization") else {}


def a6000(ga: int, **over):
    """The paper's launch: 4x 48 GB, vLLM colocated at 0.35, ZeRO-2, 16 prompts x G=8, 1024 + 4096 tokens."""
    return load_profile("a6000x4", **{
        "train.gradient_accumulation_steps": ga, "train.prompts_per_step": 16, "train.num_generations": 8,
        "train.max_prompt_length": 1024, "train.max_completion_length": 4096, "train.gradient_checkpointing": True,
        "launch.num_gpus": 4, "launch.gpu_memory_gb": 48, "launch.vllm_mode": "colocate",
        "launch.deepspeed_stage": 2, **UTIL, **over})


def smoke_module():
    spec = importlib.util.spec_from_file_location("gpu_smoke", ROOT / "benchmarks" / "gpu_smoke.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- model dimensions ---------------------------------------------------------------------------------
def test_model_dims_match_real_models():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from supersmall import tiny

    d = model_dims(R1)
    assert (d.hidden, d.layers, d.heads, d.kv_heads, d.intermediate, d.vocab) == (1536, 28, 12, 2, 8960, 151936)
    assert 1.76e9 < d.params < 1.79e9  # ~1.78e9 incl. both embeddings
    assert model_dims("some/local/DeepSeek-R1-Distill-Qwen-1.5B") == d
    vocab = len(tiny.build_tokenizer())
    assert model_dims("tiny").params == sum(p.numel() for p in tiny.new_model(vocab).parameters())
    cfg = Qwen2Config(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=50, tie_word_embeddings=False)
    assert model_dims(cfg).params == sum(p.numel() for p in Qwen2ForCausalLM(cfg).parameters())
    with pytest.raises(ValueError, match="config dict"):
        model_dims("nobody/unknown-model-7B")


def test_weights_term_by_hand(tmp_path):
    toy = dict(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
               intermediate_size=16, vocab_size=10, tie_word_embeddings=True)
    # q 8*8+8, k and v 8*4+4 each, o 8*8, MLP 3*8*16, two norms 2*8; tied embedding 10*8; final norm 8
    params = (64 + 8) + 2 * (32 + 4) + 64 + 384 + 16 + 80 + 8
    assert model_dims(toy).params == params == 696
    m = E.memory_gb(a6000(4), model=toy)
    assert m["weights"] == pytest.approx(2 * 696 / 2**30)
    assert m["optimizer"] == pytest.approx(12 * 696 / 4 / 2**30)  # fp32 master + Adam, over 4 processes
    (tmp_path / "config.json").write_text(json.dumps(toy))
    assert model_dims(str(tmp_path)).params == 696


# --- memory -------------------------------------------------------------------------------------------
def test_32_completions_per_gpu_do_not_fit_8_do():
    big, small = E.memory_gb(a6000(1)), E.memory_gb(a6000(4))
    assert big["micro_batch"] == 32 and small["micro_batch"] == 8 and big["tokens_per_sequence"] == 5120
    assert big["vllm"] == pytest.approx(0.35 * 48)
    assert not big["fits"] and big["total"] > 48
    assert big["activations"] > 20  # the issue: ~27 GB even with checkpointing
    for arm in ("no-kl", "kl-penalty", "kl-nopenalty"):
        m = E.memory_gb(a6000(4), arm)
        assert m["fits"] and m["total"] <= 48, (arm, m)
        assert E.check_memory(a6000(4), arm) is None
    terms = sum(big[k] for k in E.TERMS) - big["overlap"]
    assert big["total"] == pytest.approx(terms)


def test_check_memory_sentence_names_numbers_and_fix():
    msg = E.check_memory(a6000(1))
    m = E.memory_gb(a6000(1))
    assert msg is not None and "\n" not in msg and msg.endswith(".")
    assert f"about {m['total']:.1f} GB" in msg and "have 48 GB" in msg
    assert f"activations {m['activations']:.1f}" in msg and f"logits {m['logits']:.1f}" in msg
    assert "32 completions" in msg
    assert "raise train.gradient_accumulation_steps to 4 (8 completions per GPU)" in msg
    # no micro-batch fits when vLLM takes most of the card: the fix names the other knobs
    msg = E.check_memory(a6000(1, **{"launch.gpu_memory_gb": 16}))
    assert "vllm_gpu_memory_utilization" in msg


def test_kl_arms_need_a_reference_model():
    no_kl, kl = E.memory_gb(a6000(4), "no-kl"), E.memory_gb(a6000(4), "kl-penalty")
    assert kl["total"] > no_kl["total"]
    assert kl["reference"] == pytest.approx(kl["weights"]) and no_kl["reference"] == 0
    assert E.memory_gb(a6000(4), "kl-nopenalty")["total"] == pytest.approx(kl["total"])


def test_zero2_shards_optimizer_and_gradients():
    four, two = E.memory_gb(a6000(4), procs=4), E.memory_gb(a6000(4), procs=2)
    assert two["optimizer"] == pytest.approx(2 * four["optimizer"])
    assert two["gradients"] == pytest.approx(2 * four["gradients"])
    assert two["weights"] == pytest.approx(four["weights"])
    stage1 = E.memory_gb(a6000(4, **{"launch.deepspeed_stage": 1}))
    assert stage1["optimizer"] == pytest.approx(four["optimizer"]) and stage1["gradients"] > four["gradients"]
    server = E.memory_gb(a6000(4, **{"launch.vllm_mode": "server"}))
    assert server["procs"] == 3 and server["vllm"] == 0


def test_checkpointing_and_lm_head():
    on, off = E.memory_gb(a6000(4)), E.memory_gb(a6000(4, **{"train.gradient_checkpointing": False}))
    assert off["activations"] > 3 * on["activations"]
    assert "turn on train.gradient_checkpointing" in E.check_memory(
        a6000(4, **{"train.gradient_checkpointing": False, "train.gradient_accumulation_steps": 16}))
    d = model_dims(R1)
    full = E.memory_gb(a6000(4), lm_head="full")
    n = 8 * 4096  # micro-batch x completion tokens
    assert full["logits"] * 2**30 == pytest.approx(2 * n * d.vocab * 2 + d.vocab * d.hidden * 2)
    assert full["logits"] > 5 * on["logits"]
    with pytest.raises(ValueError):
        E.memory_gb(a6000(4), lm_head="sparse")


# --- time ---------------------------------------------------------------------------------------------
def test_step_seconds_grow_with_length_and_kl():
    short = E.step_seconds(a6000(4, **{"train.max_completion_length": 1024}))
    long = E.step_seconds(a6000(4))
    assert long["generation_s"] > 2 * short["generation_s"] and long["training_s"] > 2 * short["training_s"]
    kl = E.step_seconds(a6000(4), "kl-penalty")
    assert kl["forward_passes"] == long["forward_passes"] + 1
    assert kl["training_s"] == pytest.approx(long["training_s"] * kl["forward_passes"] / long["forward_passes"])
    assert kl["generation_s"] == pytest.approx(long["generation_s"])
    # the batch decodes until its longest rollout ends: the same mean with a shorter longest is faster
    assert (E.step_seconds(a6000(4), longest_fraction=0.6)["generation_s"]
            < E.step_seconds(a6000(4), longest_fraction=1.0)["generation_s"])
    assert E.step_seconds(a6000(4), mean_completion_fraction=0.2)["total_s"] < long["total_s"]


def test_old_logp_forward_follows_trl():
    with_vllm = E.step_seconds(a6000(4))
    assert with_vllm["old_logp_forward"]  # TRL 1.16 + vLLM: importance-sampling correction needs old log-probs
    hf = E.step_seconds(a6000(4, **{"launch.vllm_mode": "none"}))
    assert not hf["old_logp_forward"] and hf["forward_passes"] == with_vllm["forward_passes"] - 1


def test_estimate_beside_table5():
    e = E.estimate(a6000(4), "no-kl")
    assert e["minutes"]["low"] < e["minutes"]["mid"] < e["minutes"]["high"]
    assert e["paper_minutes"] == paper.table5_minutes()["no-kl"]
    assert e["ratio"] == pytest.approx(e["minutes"]["mid"] / e["paper_minutes"], abs=0.01)
    assert e["gpu_hours"] == pytest.approx(e["minutes"]["mid"] / 60 * 4, abs=0.01)
    assert e["fits"] is True and e["peak_memory_gb"] <= 48
    assert "compute alone cannot explain" in e["assumptions"]
    assert E.estimate(a6000(4), "no-kl", stage="4")["paper_minutes"] == paper.table5_minutes()["level4-no-kl"]
    assert E.estimate(a6000(4), "no-kl", stage="level5.5")["paper_minutes"] is None
    assert E.estimate(a6000(1))["fits"] is False


def test_table5_rows_all_six_with_ratios():
    rows = cost.table5_rows(a6000(4))
    table = paper.table5_minutes()
    assert [r["row"] for r in rows] == list(table) and len(rows) == 6
    for r in rows:
        assert r["paper_minutes"] == table[r["row"]]
        assert r["ratio"] == pytest.approx(r["minutes"]["mid"] / r["paper_minutes"], abs=0.01)
    by = {r["row"]: r for r in rows}
    assert by["level4-no-kl"]["stage"] == "level4" and by["level4-no-kl"]["arm"] == "no-kl"
    # the paper's KL arms are faster although they compute more: only shorter completions can explain it
    assert by["kl-penalty"]["ratio"] > by["no-kl"]["ratio"]
    kl_f, no_kl_f = by["kl-penalty"]["implied_mean_completion_fraction"], by["no-kl"]["implied_mean_completion_fraction"]
    assert kl_f is not None and no_kl_f is not None and kl_f < no_kl_f


# --- CLI ----------------------------------------------------------------------------------------------
def test_cli_json_and_text(capsys):
    assert main(["estimate", "--profile", "a6000x4", "--set", "train.gradient_accumulation_steps=4", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["arm"], r["stage"]) for r in runs] == [("no-kl", "level1-3"), ("kl-penalty", "level1-3"),
                                                    ("kl-nopenalty", "level1-3"), ("no-kl", "level4"),
                                                    ("no-kl", "level5")]
    for r in runs:
        assert r["minutes"]["mid"] > 0 and r["peak_memory_gb"] > 0 and r["fits"] is True
    assert main(["estimate", "--set", "train.gradient_accumulation_steps=1", "--json", "--arm", "no-kl"]) == 0
    (one,) = json.loads(capsys.readouterr().out)["runs"]
    assert one["fits"] is False and "gradient_accumulation_steps" in one["memory_check"]
    assert main(["estimate", "--profile", "a6000x4", "--set", "train.gradient_accumulation_steps=4"]) == 0
    text = capsys.readouterr().out
    for row in paper.table5_minutes():
        assert row in text
    assert "ratio" in text and "paper (Table 5): 90.5 min" in text and "compute alone cannot explain" in text


def test_cli_user_errors(capsys):
    assert main(["estimate", "--set", "train.gradient_accumulation_steps"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["estimate", "--arm", "grpo"]) == 2
    assert "valid arms" in capsys.readouterr().err
    assert main(["estimate", "--stage", "9"]) == 2
    assert "valid stages" in capsys.readouterr().err


# --- the GPU smoke test, on CPU -----------------------------------------------------------------------
def test_fused_log_probs_match_full_softmax():
    import torch

    gs = smoke_module()
    torch.manual_seed(0)
    hidden = torch.randn(13, 16, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(70000, 16, dtype=torch.float64, requires_grad=True)  # > one 32768-wide vocab tile
    targets = torch.tensor([0, 5, 32767, 32768, 65535, 65536, 69999, 1, 2, 40000, 3, 4, 33000])
    fused = gs.FusedLogProb.apply(hidden, weight, targets, 0.6)
    full = torch.log_softmax(hidden @ weight.t() / 0.6, -1).gather(-1, targets[:, None]).squeeze(-1)
    assert fused.dtype == torch.float32 and torch.allclose(fused.double(), full, atol=1e-4)
    g = torch.randn(13, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad((fused * g).sum(), (hidden, weight)),
                    torch.autograd.grad((full * g).sum(), (hidden, weight))):
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_gpu_smoke_runs_on_cpu(tmp_path):
    out = tmp_path / "smoke.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_smoke.py"), "--cpu", "--tiny-dims",
                           "--steps", "2", "--arms", "no-kl,kl-nopenalty", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(out.read_text())
    assert set(r["arms"]) == {"no-kl", "kl-nopenalty"} and r["generation"]["measured_s"] > 0
    for a in r["arms"].values():
        assert len(a["steps"]) == 2 and a["steps"][-1]["train_s"] > 0
        assert a["predicted"]["train_peak_above_base_gb"] > 0
    assert "ref_s" in r["arms"]["kl-nopenalty"]["steps"][-1] and "ref_s" not in r["arms"]["no-kl"]["steps"][-1]
    assert "predicted" in proc.stdout and "measured" in proc.stdout


@pytest.mark.slow
def test_train_step_benchmark_runs():
    """benchmarks/train_step.py keeps working against the library's API (it once imported names that moved)."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_step.py"), "--steps", "4"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = {line.split(":")[0]: line for line in proc.stdout.splitlines() if ":" in line}
    for name in ("raw GRPOTrainer", "kit TRL backend", "minimal loop", "FLOP model"):
        seconds = float(lines[name].split(":", 1)[1].split()[0])
        assert seconds > 0, lines[name]
    assert "overhead kit / raw" in lines["kit TRL backend"]


# --- issue 22: usable memory, vLLM's share, the length model, the whole replication ------------------------
def test_memory_is_compared_with_the_usable_not_the_nominal_size():
    p = a6000(4, **{"launch.gpu_usable_gb": 46.0})
    m = E.memory_gb(p, "kl-penalty")
    assert m["capacity"] == 48 and m["usable"] == 46.0 and m["fits"]
    squeezed = E.memory_gb(p.replace(**{"launch.gpu_usable_gb": m["total"] - 0.5}), "kl-penalty")
    assert squeezed["total"] < 48 and not squeezed["fits"]  # under 48 nominal, over what a process can allocate
    msg = E.check_memory(p.replace(**{"launch.gpu_usable_gb": m["total"] - 0.5}), "kl-penalty")
    assert f"({m['total'] - 0.5:.1f} usable;" in msg
    assert E.memory_gb(a6000(4, **{"launch.gpu_usable_gb": 0.0}))["usable"] == 48  # 0 = the nominal size
    full = load_profile("a6000x4")
    assert full.launch.gpu_usable_gb < full.launch.gpu_memory_gb  # the profile names its usable memory
    for arm in paper.ARMS:
        assert E.memory_gb(full, arm)["fits"] and E.check_vllm(full) is None


def test_vllm_share_is_sized_from_its_kv_need():
    d = model_dims(R1)
    v = E.vllm_memory(a6000(4, **{"launch.vllm_gpu_memory_utilization": 0.25}))
    kv = 32 * 5120 * 2 * d.layers * d.kv_dim * 2 / 2**30  # 32 sequences of 1024 + 4096 tokens, K and V in bf16
    assert v["sequences"] == 32 and v["need"] == pytest.approx(2 * d.params / 2**30 + E.VLLM_RUNTIME_GB + kv)
    assert v["share"] == 12.0 and v["need"] < v["share"] and v["concurrent"] == 32  # 0.25 holds every sequence
    wide = E.memory_gb(a6000(4)), E.memory_gb(a6000(4, **{"launch.vllm_gpu_memory_utilization": 0.25}))
    assert wide[0]["total"] - wide[1]["total"] == pytest.approx(0.1 * 48)  # 0.35 -> 0.25 frees 4.8 GiB
    assert load_profile("a6000x4").launch.vllm_gpu_memory_utilization == 0.25
    small = a6000(4, **{"launch.vllm_gpu_memory_utilization": 0.05})
    assert E.vllm_memory(small)["concurrent"] == 0 and "raise launch.vllm_gpu_memory_utilization" in E.check_vllm(small)
    # fewer sequences at once than a step generates: several waves, a slower step
    tight = a6000(4, **{"launch.vllm_gpu_memory_utilization": 0.15})
    assert E.vllm_memory(tight)["concurrent"] == int((0.15 * 48 - v["fixed"]) / v["kv_per_sequence"]) == 21
    assert E.step_seconds(tight)["waves"] == 2
    assert E.step_seconds(tight)["generation_s"] > E.step_seconds(a6000(4))["generation_s"]


def test_stage_length_model_from_paper_yaml():
    p = a6000(4)
    for stage in ("level1-3", "level4", "level5"):
        model = paper.fact(f"estimate.lengths.{stage}")
        assert model.kind == "choice"
        s = E.stage_lengths(p, stage)
        assert s["rollouts_per_step"] == 128 and s["mean_fraction"] == model.value["mean"]
        assert s["cap_hit_per_step"] == pytest.approx(1 - (1 - model.value["cap_hit"]) ** 128, abs=1e-4)
    one = load_profile("a6000x4", **{"train.prompts_per_step": 1, "train.num_generations": 2,
                                     "train.gradient_accumulation_steps": 1, "launch.num_gpus": 2})
    s = E.stage_lengths(one, "level1-3")  # 2 rollouts: the cap is rarely hit, the longest is ~2x the mean
    assert s["cap_hit_per_step"] == pytest.approx(1 - 0.95**2) and s["longest_fraction"] == pytest.approx(1.0)
    # harder stages decode longer: their steps take longer
    assert E.estimate(p, "no-kl", "level5")["minutes"]["mid"] > E.estimate(p, "no-kl", "level1-3")["minutes"]["mid"]


def test_paper_numbers_are_read_from_paper_yaml():
    source = (ROOT / "supersmall" / "fullscale" / "estimate.py").read_text() + (ROOT / "supersmall" / "fullscale" / "cost.py").read_text()
    for minutes in paper.table5_minutes().values():
        assert f"{minutes:g}" not in source.replace("0.5 GiB", ""), minutes
    assert "gpu_type" not in source  # no such profile field


def test_the_whole_replication_counts_every_run_and_evaluation():
    p = load_profile("a6000x4")
    c = cost.replicate_cost(p)
    seeds = len(p.notebooks.claim_seeds)  # 5: a paper claim's verdict needs 5 agreeing seeds
    assert c["training_runs"] == 5 * seeds and c["evaluations"] == 5 * seeds + 1
    minutes = sum(c["minutes_per_run"].values())  # one seed's five runs, each with its start-up
    assert c["training_hours"] == pytest.approx(seeds * minutes / 60, abs=0.1)
    rounds = -(-(5 * seeds + 1) // 4)  # evaluations four at a time, one per GPU
    assert c["evaluation_hours"] == pytest.approx(rounds * cost.eval_minutes(p) / 60, abs=0.1)
    assert c["total_hours"]["mid"] == pytest.approx(c["training_hours"] + c["evaluation_hours"], abs=0.11)
    assert c["total_hours"]["low"] < c["total_hours"]["mid"] < c["total_hours"]["high"]
    assert 24 < c["total_hours"]["mid"] < 24 * 5  # days, not hours: about five times the paper's single run
    assert set(c["truncation"]) == {"level1-3", "level4", "level5"}
    one_seed = cost.replicate_cost(p, seeds=[42])
    assert one_seed["training_runs"] == 5 and one_seed["evaluations"] == 6


def test_cli_json_prints_total_hours_and_single_gpu_fits_24_gb(capsys):
    assert main(["estimate", "--profile", "a6000x4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_hours"]["mid"] > 0 and out["truncation"]["level5"]["cap_hit_per_step"] > 0.99
    assert main(["estimate", "--profile", "single-gpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["training_runs"] == 4 * 5  # two arms (no kl-penalty under LoRA) + two stages, five seeds
    for r in out["runs"]:
        assert r["fits"] and r["peak_memory_gb"] <= r["usable_memory_gb"] <= 24 and r["memory_check"] is None
        assert r["micro_batch"] == 8 and r["vllm_check"] is None
    assert main(["estimate", "--profile", "a6000x4"]) == 0
    assert "the whole replicate (25 training runs, 26 evaluations" in capsys.readouterr().out


# --- LoRA: passes and activations -------------------------------------------------------------------------
def test_lora_counts_four_passes_not_five():
    """Frozen weights get no weight gradient: forward + activation backward + recomputation + old log-probs = 4."""
    lora, full = load_profile("single-gpu"), load_profile("single-gpu", **{"train.lora_rank": 0})
    a, b = E.step_seconds(lora), E.step_seconds(full)
    assert (a["forward_passes"], b["forward_passes"]) == (4, 5)
    assert a["training_s"] == pytest.approx(b["training_s"] * 4 / 5)
    assert E.step_seconds(lora, "kl-nopenalty")["forward_passes"] == 5  # + the reference (adapters disabled)
    no_ckpt = load_profile("single-gpu", **{"train.gradient_checkpointing": False})
    assert E.step_seconds(no_ckpt)["forward_passes"] == 3


def test_lora_activation_memory_by_formula():
    from supersmall.fullscale.model_shape import lora_saved_bytes

    dims = model_dims(R1)
    per_token = lora_saved_bytes(dims, 16)
    assert per_token == (4 - 2) * (6 * 1536 + 8960) + 4 * 7 * 16 == 36800
    assert lora_saved_bytes(dims, 16, dropout=True) == per_token + 6 * 1536 + 8960  # + a bool mask per input
    lora = load_profile("single-gpu")
    tokens = 8 * (1024 + 2048)  # 8 completions of prompt + completion per micro-step
    extra = tokens * E.BACKWARD_WORKSET * per_token / E.GIB  # with checkpointing: the recomputed layer only
    assert 1.0 < extra < 1.1  # ~1.05 GiB
    without = E.memory_gb(lora)["activations"] - extra
    base_layer = (20 * 1536 + 6 * 256 + 8 * 8960 + 4 * 12) * E.GPU_SAVED_FACTOR
    assert without == pytest.approx((tokens * 28 * 1536 * 2 + tokens * E.BACKWARD_WORKSET * base_layer
                                     + 8 * 3072 * 3072) / E.GIB)


def test_lora_saved_bytes_match_what_autograd_saves():
    """The formula against torch.autograd.graph.saved_tensors_hooks on one bf16 Qwen2 block with peft's adapters
    (a small block: the same layers, other widths)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from supersmall.fullscale.model_shape import lora_saved_bytes

    cfg = Qwen2Config(hidden_size=256, intermediate_size=1024, num_attention_heads=4, num_key_value_heads=2,
                      num_hidden_layers=1, vocab_size=64)
    tokens = 32

    def saved(rank: int) -> float:
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
        if rank:
            model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, task_type="CAUSAL_LM",
                                                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                     "gate_proj", "up_proj", "down_proj"]))
        model.train()
        layer = model.get_decoder().layers[0]
        params = {p.data_ptr() for p in model.parameters()}
        seen: dict = {}

        def pack(t):
            if t.data_ptr() not in params:
                seen[(t.data_ptr(), t.dtype, tuple(t.shape))] = t.numel() * t.element_size()
            return t

        x = torch.randn(1, tokens, 256, dtype=torch.bfloat16, requires_grad=True)
        pos = (torch.ones(1, tokens, 64, dtype=torch.bfloat16), torch.zeros(1, tokens, 64, dtype=torch.bfloat16))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            layer(x, position_embeddings=pos)
        return sum(seen.values()) / tokens

    measured = saved(8) - saved(0)
    predicted = lora_saved_bytes(model_dims(cfg), 8)
    assert predicted == pytest.approx(measured, rel=0.15), (predicted, measured)


# --- other cards ------------------------------------------------------------------------------------------
CARDS = {"rtx 3090": 71.0, "rtx 4090": 165.2, "rtx a5000": 111.1, "l4": 121.0, "a10": 125.0}


@pytest.mark.parametrize("name", sorted(CARDS))
def test_each_24_gb_card_has_its_memory_and_speed(name):
    card = E.gpu_card(name)
    assert card["bf16_tflops"] == CARDS[name] and card["usable_gb"] < card["memory_gb"] <= 24
    assert paper.fact(f"gpus.{name.replace(' ', '-')}").kind == "choice"
    p = E.on_gpu("single-gpu", name)
    assert (p.launch.gpu_memory_gb, p.launch.gpu_usable_gb) == (card["memory_gb"], card["usable_gb"])
    assert E.step_seconds(p, gpu=name)["gpu"] == name


def test_card_names_as_nvidia_smi_writes_them():
    assert E.gpu_card("NVIDIA GeForce RTX 3090")["name"] == "rtx 3090"
    assert E.gpu_card("NVIDIA RTX A5000")["name"] == "rtx a5000" and E.gpu_card("A6000")["name"] == "rtx a6000"
    assert E.gpu_card("NVIDIA L4")["name"] == "l4" and E.gpu_card("nvidia-a10")["name"] == "a10"
    for other in ("NVIDIA A100-SXM4-80GB", "NVIDIA L40S", "RTX 3080"):  # not A10, not L4: unknown, never a near miss
        with pytest.raises(ValueError, match="unknown GPU"):
            E.gpu_card(other)


def test_an_l4_is_refused_where_a_3090_fits():
    """single-gpu at its worst case (8 completions of 1,024 + 2,048 tokens per micro-step): ~22 GB, under a 3090's
    22.5 usable, over an L4's 21 (nvidia-smi shows 22.5 GiB on an L4)."""
    assert E.check_memory(E.on_gpu("single-gpu", "rtx 3090")) is None
    msg = E.check_memory(E.on_gpu("single-gpu", "l4"))
    assert msg is not None and "21.0 usable" in msg and msg.count(". ") == 0 and msg.endswith(".")
    slow = E.step_seconds(E.on_gpu("single-gpu", "l4"), gpu="l4")["generation_s"]
    assert slow > 2 * E.step_seconds(E.on_gpu("single-gpu", "rtx 4090"), gpu="rtx 4090")["generation_s"]


def test_cli_gpu(capsys):
    assert main(["estimate", "--profile", "single-gpu", "--gpu", "l4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = out["runs"][0]
    assert r["gpu"] == "l4" and r["usable_memory_gb"] == 21.0 and not r["fits"] and "21.0 usable" in r["memory_check"]
    assert main(["estimate", "--profile", "single-gpu", "--gpu", "rtx 4090"]) == 0
    assert "on rtx 4090: 24 GB, 22.5 usable" in capsys.readouterr().out
    assert main(["estimate", "--gpu", "voodoo2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown GPU 'voodoo2'" in err and "rtx 3090" in err and "\n" not in err
