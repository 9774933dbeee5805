"""Memory per GPU and time per run of a full-scale GRPO run, from the model's shape and the launch.

    from supersmall.fullscale import estimate
    estimate.check_memory("a6000x4")      # None when it fits, else one sentence with the numbers and the fix
    estimate.estimate("a6000x4", "no-kl")  # minutes (low/mid/high), GPU-hours, cost, beside Table 5
    (the whole replication's hours and Table 5 row by row: supersmall.fullscale.cost; the model's shape and
    parameter count: supersmall.fullscale.model_shape)

"GB" are GiB (2**30 bytes), as torch counts (an RTX A6000's 48 GB are 47.99 GiB). Per training GPU:
  weights      bf16 policy, 2 bytes/param (4 in fp32).
  optimizer    DeepSpeed ZeRO >= 1: fp32 master + Adam m, v = 12 bytes/param over the processes;
               without DeepSpeed: AdamW's m, v in the weights' dtype.
  gradients    ZeRO-2: fp32 partitions, 4 bytes/param over the processes; ZeRO-1: unsharded; none: weights' dtype.
  activations  with checkpointing: each layer's input for every token + one recomputed layer (x BACKWARD_WORKSET);
               without: every layer's saved tensors; + SDPA's boolean padding mask (TRL left-pads prompts).
               LoRA: + peft's fp32 adapter inputs per layer, less the frozen matrices' inputs
               (model_shape.lora_saved_bytes: 36.8 KB per token at rank 16, ~1.05 GiB at 8 x 3,072 tokens).
  logits       "fused" (TRL 1.16 patches a tiled LM head, trl/kernels/chunked_logprob.py): fp32 gradient buffers
               for the completion hidden states and the head, one 4096 x 32768 tile. "full" (older TRL):
               micro-batch x completion x vocab logits + the log_softmax output autograd keeps.
  reference    KL arms: a bf16 copy; its no-grad forward runs before the micro-steps, so only weights stack.
  vllm         colocate: vllm_gpu_memory_utilization x the GPU's memory, held during training (no sleep mode);
               its need (weights + KV cache of the sequences one GPU generates per step + runtime) is checked.
  overhead     CUDA context, NCCL, DeepSpeed's reduce/all-gather buckets, allocator fragmentation.
  overlap      subtracted: the head's backward frees its buffers before the first layer is recomputed.
The total is compared with ``launch.gpu_usable_gb`` (what a process can allocate), not the card's nominal size.
Time per step uses a per-stage length model (``paper.yaml`` ``estimate.lengths.*``, choices): a step decodes
until its longest rollout ends, so the chance that one of the step's 128 rollouts reaches the cap sets its time.
Checked with benchmarks/gpu_smoke.py on one H200 (random-init 1.5B, bf16, SDPA, 256 + 4096 tokens): the training
peak above weights + gradients was 8.00 / 15.99 / 31.99 GiB at 8 / 16 / 32 completions (predicted 7.99 / 15.98 /
31.95), 21.97 with full logits at 8 (predicted 21.9), 29.5 without checkpointing at 2 (predicted 30.0); fwd+bwd
with checkpointing ran at 33% of peak FLOPS (the mid scenario assumes 30%), the no-grad forwards at 30-31%.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from supersmall import paper
from supersmall.config import Profile, load_profile
from supersmall.fullscale.model_shape import MODELS, ModelDims, lora_params, lora_saved_bytes, model_dims
from supersmall.trl_args import per_device_batch, training_processes

GIB = 2**30
TERMS = ("weights", "optimizer", "gradients", "activations", "logits", "reference", "vllm", "overhead")
KL_ARMS = ("kl-penalty", "kl-nopenalty")
STAGES = {"1-3": "level1-3", "4": "level4", "5": "level5", "5.5": "level5.5", "6": "level6"}
# Every card the estimate knows (paper.yaml gpus.*, choices from the vendors' spec sheets): memory and usable GiB,
# peak dense bf16 tensor TFLOPS (fp32 accumulation) and memory bandwidth (GB/s).
CARDS = {f.value["name"]: f.value for f in paper.facts("gpus.")}
GPUS = {name: (float(c["bf16_tflops"]), float(c["bandwidth_gbs"])) for name, c in CARDS.items()}
DEFAULT_GPU = "rtx a6000"  # the paper's card; used when the profile names no (or an unknown) GPU
# Three scenarios for the range. mfu: achieved / peak FLOPS in training (recomputation counted as work);
# 0.30 mid is typical for 1-2B full fine-tuning on one card, 0.20-0.45 the range seen in practice.
# bw: achieved / peak memory bandwidth in vLLM decode (0.55-0.85). overhead_s per optimizer step: reward
# grading of 128 completions, weight sync into vLLM, ZeRO-2 reduce-scatter/all-gather over PCIe (the A6000s
# have no all-to-all NVLink), optimizer step, logging. All three are choices, not measurements.
SCENARIOS = {"low": dict(mfu=0.45, bw=0.85, overhead_s=2.0), "mid": dict(mfu=0.30, bw=0.70, overhead_s=5.0),
             "high": dict(mfu=0.20, bw=0.55, overhead_s=10.0)}
VLLM_RUNTIME_GB = 1.0  # choice: vLLM's activations, sampler and CUDA graphs beside weights and KV cache
VLLM_DEFAULT_SEQS = 256  # vLLM's default max_num_seqs (evaluation: LLM(...) with its defaults, 0.9 of the GPU)
RUN_STARTUP_S = 300.0  # choice: per training run, model load + DeepSpeed init + vLLM start and CUDA graphs
EVAL_STARTUP_S = 120.0  # choice: per evaluation, model load + vLLM start
DECODE_STEP_S = 0.002  # vLLM scheduler + sampling per decode step with CUDA graphs (choice, ~1-3 ms)
MEAN_COMPLETION_FRACTION = paper.value("estimate.lengths.level1-3")["mean"]  # choice (paper.yaml)
PROMPT_TOKENS = 256  # choice: longest prompt of a batch after the chat template (DeepMath questions are short)
# choice: the network between hosts, Gbit/s (common cloud and lab Ethernet is 10-100; 25 is a middle value). NCCL's
# rings cross it once per direction, so every byte of a collective crosses it about once.
INTERNODE_GBIT = 25.0
# Saved tensors per token per layer (bf16, SDPA): 20*h + 6*kv_dim + 8*intermediate + 4*heads bytes, counted with
# torch.autograd.graph.saved_tensors_hooks on a Qwen2 layer on CPU (fp32 RMSNorm inputs, q/k/v before and after
# RoPE, attention output, gate, up, SiLU, product) = 104.0 KB for the 1.5B. On a GPU with a padding mask it is
# more (likely K/V repeated to all heads and SDPA's mask bias; not itemised): x GPU_SAVED_FACTOR. Both were fitted to
# benchmarks/gpu_smoke.py on an H200: 8/16/32 completions with checkpointing, 2 without (all within 2%).
GPU_SAVED_FACTOR = 1.2
BACKWARD_WORKSET = 1.25  # the recomputed layer + the gradients in flight through it, in layers
# CUDA 12 context + cuBLAS workspace; NCCL buffers; allocator fragmentation as a fraction of the training peak
# above weights + gradients (H200, max_memory_reserved vs max_memory_allocated: 0.17-0.22 with checkpointing)
CUDA_CONTEXT_GB, NCCL_GB, FRAGMENTATION = 0.75, 0.5, 0.20
ZERO_BUCKET_ELEMENTS = 5e8  # DeepSpeed's default reduce_bucket_size and allgather_bucket_size (elements, bf16)
FUSED_TILE = (4096, 32768)  # trl/kernels/chunked_logprob.py TOKEN_CHUNK_SIZE, trl _CHUNKED_LOGPROB_CHUNK_SIZE


def memory_gb(profile: Profile | str, arm: str = "no-kl", procs: int | None = None, model: Any = None,
              lm_head: str = "fused") -> dict[str, Any]:
    """Peak memory per training GPU, term by term (see the module docstring), for the longest sequences
    (max_prompt_length + max_completion_length) in a micro-batch. ``model`` overrides the profile's model."""
    p = load_profile(profile)
    t, launch = p.train, p.launch
    dims = model_dims(model if model is not None else p.model.name_or_path)
    procs = procs or training_processes(p)
    micro, seq, comp = per_device_batch(p, procs), t.max_prompt_length + t.max_completion_length, t.max_completion_length
    wb = 2 if (t.bf16 or p.model.dtype in ("bfloat16", "float16")) else 4
    P, h, stage = dims.params, dims.hidden, launch.deepspeed_stage
    sharded = procs if stage >= 1 else 1
    optimizer = ((4 * P if wb == 2 else 0) + 8 * P) / sharded if stage >= 1 else 2 * wb * P
    gradients = 4 * P / (procs if stage >= 2 else 1) if stage >= 1 else wb * P
    if t.lora_rank:  # LoRA: only the adapters (every linear layer) train, in fp32 with AdamW
        adapters = lora_params(dims, t.lora_rank)
        optimizer, gradients = 12 * adapters, 4 * adapters
    layer = (20 * h + 6 * dims.kv_dim + 8 * dims.intermediate + 4 * dims.heads) * wb / 2 * GPU_SAVED_FACTOR
    if t.lora_rank:  # peft's fp32 inputs (and dropout masks) for the adapters (model_shape.lora_saved_bytes)
        layer += lora_saved_bytes(dims, t.lora_rank, wb, dropout=t.lora_dropout > 0)
    tokens, n = micro * seq, micro * comp
    held = tokens * dims.layers * (h * wb if t.gradient_checkpointing else layer)  # kept through the backward
    work = tokens * (BACKWARD_WORKSET if t.gradient_checkpointing else BACKWARD_WORKSET - 1) * layer
    acts = held + work + micro * seq * seq  # + SDPA's boolean 4D mask for left-padded prompts
    if lm_head == "fused":
        logits = n * h * (wb + 4 + wb) + dims.vocab * h * (4 + wb) + min(n, FUSED_TILE[0]) * FUSED_TILE[1] * wb
    elif lm_head == "full":
        logits = 2 * n * dims.vocab * wb + dims.vocab * h * wb
    else:
        raise ValueError(f"lm_head must be 'fused' or 'full', not {lm_head!r}")
    overlap = min(work, logits)  # the head's backward frees its buffers before the first layer is recomputed
    reference = wb * P if arm in KL_ARMS and not t.lora_rank else 0.0  # LoRA: the base is the reference
    cap = float(launch.gpu_memory_gb or 0.0)
    usable = min(launch.gpu_usable_gb or cap, cap)
    vllm = launch.vllm_gpu_memory_utilization * cap * GIB if launch.vllm_mode == "colocate" else 0.0
    overhead = (CUDA_CONTEXT_GB + (NCCL_GB if procs > 1 else 0.0)) * GIB + FRAGMENTATION * (acts + logits - overlap)
    if stage >= 1 and procs > 1:
        overhead += 2 * ZERO_BUCKET_ELEMENTS * 2
    out: dict[str, Any] = {k: v / GIB for k, v in dict(
        weights=wb * P, gradients=gradients, optimizer=optimizer, activations=acts, logits=logits,
        reference=reference, vllm=vllm, overhead=overhead).items()}
    out["overlap"] = overlap / GIB
    out["total"] = sum(out[k] for k in TERMS) - out["overlap"]
    out.update(capacity=cap or None, usable=usable or None, fits=not cap or out["total"] <= usable, micro_batch=micro,
               tokens_per_sequence=seq, procs=procs, lm_head=lm_head)
    return out


def _fix(p: Profile, arm: str, **kw: Any) -> str:
    t, procs = p.train, kw.pop("procs", None) or training_processes(p)
    if not t.gradient_checkpointing and memory_gb(p.replace(**{"train.gradient_checkpointing": True}), arm,
                                                  procs, **kw)["fits"]:
        return "turn on train.gradient_checkpointing"
    completions = t.prompts_per_step * t.num_generations
    for ga in range(t.gradient_accumulation_steps + 1, completions // procs + 1):
        if completions % (procs * ga) == 0:
            q = p.replace(**{"train.gradient_accumulation_steps": ga})
            if memory_gb(q, arm, procs, **kw)["fits"]:
                return (f"raise train.gradient_accumulation_steps to {ga} ({per_device_batch(q, procs)} completions "
                        "per GPU)")
    return ("lower launch.vllm_gpu_memory_utilization or train.max_completion_length, or train LoRA adapters on one "
            "card (--profile single-gpu)")


def check_memory(profile: Profile | str, arm: str = "no-kl", **kw: Any) -> str | None:
    """None when the run fits, else ONE sentence with the numbers and the fix."""
    p = load_profile(profile)
    m = memory_gb(p, arm, **kw)
    if m["fits"]:
        return None
    parts = ", ".join(f"{k} {m[k]:.1f}" for k in TERMS if m[k]) + f", less {m['overlap']:.1f} not live at once"
    return (f"about {m['total']:.1f} GB per GPU is needed but the GPUs have {m['capacity']:g} GB "
            f"({m['usable']:.1f} usable; {parts}) with "
            f"{m['micro_batch']} completions of up to {m['tokens_per_sequence']} tokens per GPU per micro-step: "
            f"{_fix(p, arm, **kw)}.")


def vllm_memory(profile: Profile | str) -> dict[str, Any]:
    """vLLM's share beside its need (GiB): bf16 weights + runtime + the KV cache of every sequence one vLLM
    generates per step (TRL sets max_num_seqs to that count) at prompt + completion tokens. ``concurrent``: how many
    sequences its KV cache holds at once (fewer than the step's sequences = several waves, slower)."""
    p = load_profile(profile)
    t, launch, dims = p.train, p.launch, model_dims(p.model.name_or_path)
    seqs = t.prompts_per_step * t.num_generations // (training_processes(p) if launch.vllm_mode == "colocate" else 1)
    kv_token = 2 * dims.layers * dims.kv_dim * 2 / GIB  # K and V, bf16
    fixed = 2 * dims.params / GIB + VLLM_RUNTIME_GB
    context = t.max_prompt_length + t.max_completion_length
    share = launch.vllm_gpu_memory_utilization * launch.gpu_memory_gb if launch.vllm_mode == "colocate" else 0.0
    need = fixed + seqs * context * kv_token
    concurrent = int(max(0.0, share - fixed) / (context * kv_token)) if share else seqs
    return {"share": share, "need": need, "fixed": fixed, "kv_per_sequence": context * kv_token, "sequences": seqs,
            "concurrent": min(seqs, concurrent), "utilization_needed": need / launch.gpu_memory_gb
            if launch.gpu_memory_gb else None}


def check_vllm(profile: Profile | str) -> str | None:
    """None when vLLM's colocated share holds at least one full sequence beside its weights, else ONE sentence."""
    p = load_profile(profile)
    if p.launch.vllm_mode != "colocate" or not p.launch.gpu_memory_gb:
        return None
    v = vllm_memory(p)
    if v["concurrent"] >= 1:
        return None
    return (f"vLLM's share ({p.launch.vllm_gpu_memory_utilization} x {p.launch.gpu_memory_gb:.0f} = {v['share']:.1f} GB) "
            f"does not hold its weights and runtime ({v['fixed']:.1f} GB) plus one sequence's KV cache "
            f"({v['kv_per_sequence']:.2f} GB): raise launch.vllm_gpu_memory_utilization to "
            f"{math.ceil((v['fixed'] + v['kv_per_sequence']) / p.launch.gpu_memory_gb * 20) / 20:.2f}.")


def eval_concurrency(profile: Profile | str, mean_tokens: float, samples: int) -> int:
    """Samples one evaluation decodes at once. vLLM (``eval.backend: vllm``, 0.9 of the GPU, its defaults): up to
    its ``max_num_seqs`` (:data:`VLLM_DEFAULT_SEQS`), fewer when the KV cache of sequences of ``mean_tokens`` (+ the
    prompt) does not hold them (what :func:`supersmall.fullscale.cost.eval_minutes` assumes);
    transformers: ``eval.batch_size``."""
    p = load_profile(profile)
    if p.eval.backend != "vllm":
        return max(1, min(p.eval.batch_size, samples))
    dims = model_dims(p.model.name_or_path)
    kv_token, weights = 2 * dims.layers * dims.kv_dim * 2, 2 * dims.params
    free = 0.9 * (p.launch.gpu_memory_gb or 48) * GIB - weights - VLLM_RUNTIME_GB * GIB
    return max(1, min(VLLM_DEFAULT_SEQS, samples, int(free / (kv_token * (PROMPT_TOKENS + mean_tokens)))))


def decode_step_seconds(profile: Profile | str, sequences: int, mean_tokens: float, scenario: str = "mid",
                        gpu: str | None = None) -> float:
    """One vLLM decode step of ``sequences`` running sequences of ``mean_tokens`` on average: the weights read once
    and every sequence's KV cache (prompt + half the completion on average), or the FLOPs when compute-bound, +
    the scheduler's share (the step of :func:`supersmall.fullscale.cost.eval_minutes`)."""
    p = load_profile(profile)
    dims, s = model_dims(p.model.name_or_path), SCENARIOS[scenario]
    _, tflops, gbps = gpu_spec(gpu)
    bw, flops = gbps * 1e9 * s["bw"], tflops * 1e12 * s["mfu"]
    kv_token, weights = 2 * dims.layers * dims.kv_dim * 2, 2 * dims.params
    return max(weights / bw + sequences * (PROMPT_TOKENS + mean_tokens / 2) * kv_token / bw,
               sequences * 2 * dims.params / flops) + DECODE_STEP_S


def _card_key(name: str | None) -> str | None:
    """The table's key for a GPU name as people and nvidia-smi write it ("NVIDIA GeForce RTX 3090", "A5000",
    "L4"), matched as whole words ("A10" is not "A100", "L4" is not "L40S"); None when unknown."""
    low = re.sub(r"[-_]", " ", (name or "").lower())
    for key in sorted(CARDS, key=len, reverse=True):
        for form in {key, key.replace("rtx ", "")}:
            if re.search(rf"(?<![a-z0-9]){re.escape(form)}(?![a-z0-9])", low):
                return key
    return None


def gpu_spec(name: str | None) -> tuple[str, float, float]:
    """(key, peak dense bf16 TFLOPS, bandwidth GB/s) for a GPU name; the A6000 when unknown."""
    key = _card_key(name) or DEFAULT_GPU
    return (key, *GPUS[key])


def gpu_card(name: str) -> dict[str, Any]:
    """One card of the table (``paper.yaml`` ``gpus.*``): name, memory_gb, usable_gb, bf16_tflops, bandwidth_gbs.
    A name the table does not hold is a ValueError that lists the known cards."""
    key = _card_key(name)
    if key is None:
        raise ValueError(f"unknown GPU {name!r}; known cards: {', '.join(sorted(CARDS))} (or set launch.gpu_memory_gb "
                         "and launch.gpu_usable_gb yourself)")
    return dict(CARDS[key])


def on_gpu(profile: Profile | str, name: str) -> Profile:
    """The profile on another card: its memory and usable memory from :func:`gpu_card` (pass ``gpu=name`` to the
    time functions for its speed)."""
    card = gpu_card(name)
    return load_profile(profile).replace(**{"launch.gpu_memory_gb": float(card["memory_gb"]),
                                            "launch.gpu_usable_gb": float(card["usable_gb"])})


def forward_flops(dims: ModelDims, sequences: float, seq_len: float, completion: float) -> float:
    """One forward pass: 2 x (non-embedding params) per token, causal attention 4 x layers x hidden x seq/2 per
    token, and the LM head only on completion positions (TRL's fused head skips the prompt)."""
    head = dims.vocab * dims.hidden
    body = dims.params - head * (1 if dims.tied else 2)
    per_token = 2 * body + 4 * dims.layers * dims.hidden * seq_len / 2
    return sequences * (seq_len * per_token + completion * 2 * head)


def step_seconds(profile: Profile | str, arm: str = "no-kl", mean_completion_fraction: float = MEAN_COMPLETION_FRACTION,
                 longest_fraction: float | None = None, prompt_tokens: int = PROMPT_TOKENS, scenario: str = "mid",
                 gpu: str | None = None) -> dict[str, Any]:
    """Seconds per optimizer step on each GPU (they work in parallel): generation + training + overhead.

    Generation (vLLM): every decode step reads the weights once and the KV cache of the active sequences; the
    batch runs until its LONGEST rollout ends (``longest_fraction`` x max_completion_length, default min(1, 2 x
    mean): the longest of 32 samples is about twice the mean). Training: (6 + 2 with checkpointing) x forward FLOPs
    on micro-batches padded to the longest completion, + a no-grad forward for the old log-probs (TRL 1.16 with
    vLLM computes them for its importance-sampling correction unless ``train.vllm_importance_sampling: off``;
    without vLLM and num_iterations == 1 it skips them), + a reference forward for the KL arms.
    """
    p = load_profile(profile)
    t, launch, s = p.train, p.launch, SCENARIOS[scenario]
    dims = model_dims(p.model.name_or_path)
    key, tflops, gbps = gpu_spec(gpu)
    peak, bw = tflops * 1e12, gbps * 1e9 * s["bw"]
    procs = training_processes(p)
    completions = t.prompts_per_step * t.num_generations
    gen_gpus = 1 if launch.vllm_mode == "server" else procs
    seqs = completions / gen_gpus
    mean = mean_completion_fraction * t.max_completion_length
    lf = min(1.0, 2 * mean_completion_fraction) if longest_fraction is None else longest_fraction
    longest = max(mean, lf * t.max_completion_length)
    wb = 2 if (t.bf16 or p.model.dtype in ("bfloat16", "float16")) else 4
    per_decode = max(wb * dims.params / bw, seqs * 2 * dims.params / (peak * s["mfu"])) + DECODE_STEP_S
    kv_bytes = 2 * dims.layers * dims.kv_dim * wb  # K and V per token
    kv_s = seqs * mean * (prompt_tokens + mean / 2) * kv_bytes / bw
    prefill_s = forward_flops(dims, seqs, prompt_tokens, 0) / (peak * s["mfu"])
    waves = math.ceil(seqs / max(1, vllm_memory(p)["concurrent"])) if launch.vllm_mode != "none" else 1
    gen_s = waves * longest * per_decode + kv_s + prefill_s
    per_gpu = completions / procs
    fwd = forward_flops(dims, per_gpu, prompt_tokens + longest, longest)
    old = t.num_iterations > 1 or (launch.vllm_mode != "none"
                                   and getattr(t, "vllm_importance_sampling", "token_truncate") != "off")
    # forward 1 + backward 2 (activation and weight gradients) + 1 recomputation; LoRA: frozen weights get no
    # gradient, so the backward is 1 (the adapters' own gradients are ~1% of it)
    backward = 1 if t.lora_rank else 2
    passes = 1 + backward + (1 if t.gradient_checkpointing else 0) + (1 if old else 0) + (1 if arm in KL_ARMS else 0)
    train_s = passes * fwd / (peak * s["mfu"])
    return {"generation_s": gen_s, "training_s": train_s, "overhead_s": s["overhead_s"],
            "total_s": gen_s + train_s + s["overhead_s"], "forward_passes": passes, "old_logp_forward": old,
            "training_flops": passes * fwd, "decode_steps": longest, "sequences_per_gpu": seqs, "gpu": key,
            "generated_tokens_per_step": completions * mean, "mean_completion_tokens": mean, "waves": waves}


def internode_seconds(profile: Profile | str) -> float:
    """Seconds per optimizer step that one run over ``launch.num_machines`` > 1 hosts spends on the network
    between them (0 on one host). ZeRO-2 reduce-scatters the bf16 gradients at every micro-step (gradient
    accumulation does not save it: DeepSpeed reduces each micro-step's gradients into its partition) and
    all-gathers the updated bf16 weights once per step; each moves (N-1)/N of 2 bytes x params, which crosses the
    hosts' link (:data:`INTERNODE_GBIT`, a choice). Within a host NVLink/PCIe is ~10x faster and is left in the
    step model's overhead. With ZeRO-0 (DDP) the all-reduce moves twice the bytes, once per step."""
    p = load_profile(profile)
    n = training_processes(p)
    if p.launch.num_machines <= 1 or n <= 1:
        return 0.0
    grad_bytes = 2 * model_dims(p.model.name_or_path).params * (n - 1) / n
    per_link = INTERNODE_GBIT * 1e9 / 8
    if p.launch.deepspeed_stage >= 2:
        return (p.train.gradient_accumulation_steps + 1) * grad_bytes / per_link
    return 2 * grad_bytes / per_link


def _paper_minutes(arm: str, stage: str) -> float | None:
    return paper.table5_minutes().get(arm if stage == "level1-3" else f"{stage}-{arm}")


def _paper_model(p: Profile) -> bool:
    """Table 5 timed DeepSeek-R1-Distill-Qwen-1.5B: a ratio against another model would mean nothing."""
    return Path(p.model.name_or_path).name == Path(next(iter(MODELS))).name


def stage_lengths(profile: Profile | str, stage: str) -> dict[str, float]:
    """The stage's length model (``paper.yaml`` ``estimate.lengths.<stage>``, choices): the mean completion as a
    fraction of max_completion_length, the chance one rollout reaches the cap, the chance that at least one of
    the step's rollouts does (1 - (1 - p)^n, n = 128 on a6000x4), and the longest rollout's expected fraction."""
    p = load_profile(profile)
    model = paper.value(f"estimate.lengths.{STAGES.get(stage, stage)}")
    n = p.train.prompts_per_step * p.train.num_generations
    per_step = 1 - (1 - model["cap_hit"]) ** n
    uncapped = min(1.0, 2 * model["mean"])  # the longest of many samples is about twice the mean
    return {"mean_fraction": model["mean"], "cap_hit_per_rollout": model["cap_hit"], "rollouts_per_step": n,
            "cap_hit_per_step": round(per_step, 4), "longest_fraction": per_step + (1 - per_step) * uncapped}


def estimate(profile: Profile | str, arm: str = "no-kl", stage: str = "level1-3",
             mean_completion_fraction: float | None = None, **kw: Any) -> dict[str, Any]:
    """Minutes (low < mid < high), GPU-hours, cost, peak memory and fit, beside the paper's Table 5 row. Without
    ``mean_completion_fraction`` the stage's length model (:func:`stage_lengths`) sets the lengths. A run over
    ``launch.num_machines`` hosts adds :func:`internode_seconds` to every step and counts every host's GPUs."""
    p = load_profile(profile)
    stage = STAGES.get(stage, stage)
    if mean_completion_fraction is None:
        lengths = stage_lengths(p, stage)
        mean_completion_fraction = lengths["mean_fraction"]
        kw.setdefault("longest_fraction", lengths["longest_fraction"])
    steps = {k: step_seconds(p, arm, mean_completion_fraction, scenario=k, **kw) for k in SCENARIOS}
    network = internode_seconds(p)  # one run over several hosts: ZeRO's collectives cross the network every step
    minutes = {k: (v["total_s"] + network) * p.train.steps / 60 for k, v in steps.items()}
    mid, mem, paper_min = steps["mid"], memory_gb(p, arm), _paper_minutes(arm, stage)
    gpu_hours = minutes["mid"] / 60 * max(1, p.launch.num_gpus) * p.launch.num_machines  # every host's GPUs
    return {
        "arm": arm, "stage": stage, "steps": p.train.steps,
        "completions_per_step": p.train.prompts_per_step * p.train.num_generations,
        "generated_tokens_per_step": int(mid["generated_tokens_per_step"]),
        "generation_s_per_step": {k: round(v["generation_s"], 1) for k, v in steps.items()},
        "training_s_per_step": {k: round(v["training_s"], 1) for k, v in steps.items()},
        "network_s_per_step": round(network, 1), "hosts": p.launch.num_machines,
        "minutes": {k: round(v, 1) for k, v in minutes.items()}, "gpu_hours": round(gpu_hours, 2),
        "cost_usd": round(gpu_hours * p.launch.usd_per_gpu_hour, 2), "peak_memory_gb": round(mem["total"], 1),
        "fits": mem["fits"], "memory": mem, "paper_minutes": paper_min,
        "ratio": round(minutes["mid"] / paper_min, 2) if paper_min and _paper_model(p) else None,
        "assumptions": assumptions(p, mean_completion_fraction, mid), "vllm": vllm_memory(p),
    }


def assumptions(p: Profile, f: float, s: dict[str, Any]) -> str:
    scen = ", ".join(f"{v['mfu']:.0%} MFU / {v['bw']:.0%} bandwidth / {v['overhead_s']:.0f} s overhead"
                     for v in SCENARIOS.values())
    t5 = paper.table5_minutes()
    return (f"Mean completion {f:.0%} of max_completion_length ({s['mean_completion_tokens']:.0f} tokens), the "
            f"longest rollout {s['decode_steps']:.0f} tokens, prompts {PROMPT_TOKENS} tokens; vLLM decodes "
            f"{s['sequences_per_gpu']:.0f} sequences per GPU until the longest ends; training counts "
            f"{s['forward_passes']} forward-pass equivalents on micro-batches padded to the longest completion "
            f"(old log-probs forward: {'yes' if s['old_logp_forward'] else 'no'}); {s['gpu']} (pass gpu= for "
            f"another card) at {scen} "
            f"(low/mid/high). Table 5's KL arms ({t5['kl-nopenalty']:g}-{t5['kl-penalty']:g} min) are faster than no-kl "
            f"({t5['no-kl']:g} min) although they do strictly "
            "more work (a reference forward): compute alone cannot explain that; most likely their completions "
            "were shorter (see the implied mean completion fraction) or the paper's runs differed in settings it "
            "does not give (framework, G, padding removal).")


def calibrate_tiny(profile: Profile | str = "tiny", matmul_gflops: float = 10.0) -> dict[str, Any]:
    """The FLOP model's seconds for one step of a small CPU run (benchmarks/train_step.py passes the matmul rate it
    measures): generation at 2 x params per generated token + the training passes, all at ``matmul_gflops``."""
    p = load_profile(profile)
    t, dims = p.train, model_dims(p.model.name_or_path)
    seqs, comp = t.prompts_per_step * t.num_generations, t.max_completion_length
    gen = 2 * dims.params * seqs * comp
    passes = (4 if t.gradient_checkpointing else 3) + (1 if t.num_iterations > 1 else 0)
    train = passes * forward_flops(dims, seqs, t.max_prompt_length + comp, comp)
    return {"params": dims.params, "generation_flops": gen, "training_flops": train, "matmul_gflops": matmul_gflops,
            "predicted_s_per_step": (gen + train) / (matmul_gflops * 1e9)}

