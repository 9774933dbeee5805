"""One-GPU smoke test of ``supersmall.fullscale.estimate``'s memory and time model, offline, in a few minutes.

Builds a RANDOMLY INITIALISED Qwen2ForCausalLM with DeepSeek-R1-Distill-Qwen-1.5B's shape (no download), bf16,
and for each arm runs a few training micro-steps the way TRL 1.16's GRPOTrainer does the tensor work: a
no-grad reference forward (KL arms), a no-grad forward for the old log-probs (TRL computes them when vLLM's
importance-sampling correction is on), then forward + backward with gradient checkpointing on micro-batch x
(prompt + completion) tokens, log-probs of the completion tokens through the LM head ("fused": tiled, as
``trl.kernels.chunked_logprob`` does, using TRL's kernel when ``trl`` imports, else a plain-torch mirror with
the same buffers; "full": B x T x vocab logits and a per-row log_softmax, as older TRL did). GRPOTrainer itself
is not run: a real step would have to generate the 4096-token completions with HF generate first.
Generation is timed separately (HF generate of ``--gen-tokens`` for the micro-batch; not vLLM).

    python benchmarks/gpu_smoke.py --micro-batch 8 --completion-tokens 4096 --gen-tokens 256 --steps 2 \\
        --arms no-kl,kl-penalty --out smoke.json
    python benchmarks/gpu_smoke.py --cpu --tiny-dims          # seconds on a CPU, for the tests

It prints predicted (``estimate.memory_gb`` for one GPU: no vLLM share, no ZeRO, no optimizer states, since
no optimizer step is taken) against measured (``torch.cuda.max_memory_allocated``), and seconds per micro-step
against the FLOP model at the mid MFU, with the MFU the measurement implies.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from supersmall.fullscale import estimate as E  # noqa: E402
from supersmall.fullscale.model_shape import model_dims  # noqa: E402

GIB = 2**30
# deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B config.json (the shape; weights are random)
R1_CONFIG = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936, max_position_embeddings=131072, rope_theta=10000.0,
                 rms_norm_eps=1e-6, tie_word_embeddings=False, hidden_act="silu")
TINY_DIMS = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=256, max_position_embeddings=4096, tie_word_embeddings=False)


class FusedLogProb(torch.autograd.Function):
    """log softmax(hidden @ weight.T / T)[target] in [4096 token x 32768 vocab] tiles with online logsumexp; the
    backward recomputes each tile and accumulates the gradients in fp32 (the buffers of TRL's kernel)."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, temperature):
        n_tok, vocab = hidden.shape[0], weight.shape[0]
        tt, vt = E.FUSED_TILE
        run_max = torch.full((n_tok,), float("-inf"), device=hidden.device)
        sum_exp = torch.zeros(n_tok, device=hidden.device)
        target = torch.zeros(n_tok, device=hidden.device)
        for a in range(0, n_tok, tt):
            b = min(a + tt, n_tok)
            for v0 in range(0, vocab, vt):
                z = (hidden[a:b] @ weight[v0:v0 + vt].t()).float() / temperature
                new = torch.maximum(run_max[a:b], z.max(-1).values)
                sum_exp[a:b] = sum_exp[a:b] * torch.exp(run_max[a:b] - new) + torch.exp(z - new[:, None]).sum(-1)
                run_max[a:b] = new
                local = targets[a:b] - v0
                hit = ((local >= 0) & (local < z.shape[1])).nonzero().squeeze(1)
                target[a + hit] = z[hit, local[hit]]
        log_z = run_max + torch.log(sum_exp)
        ctx.save_for_backward(hidden, weight, targets, log_z)
        ctx.temperature = temperature
        return target - log_z

    @staticmethod
    def backward(ctx, grad):
        hidden, weight, targets, log_z = ctx.saved_tensors
        n_tok, vocab = hidden.shape[0], weight.shape[0]
        tt, vt = E.FUSED_TILE
        grad_h = torch.zeros(hidden.shape, device=hidden.device, dtype=torch.float32)
        grad_w = torch.zeros(weight.shape, device=weight.device, dtype=torch.float32)
        grad = grad.float()
        for a in range(0, n_tok, tt):
            b = min(a + tt, n_tok)
            for v0 in range(0, vocab, vt):
                w = weight[v0:v0 + vt]
                z = (hidden[a:b] @ w.t()).float() / ctx.temperature
                gz = -torch.exp(z - log_z[a:b, None]) * grad[a:b, None]
                local = targets[a:b] - v0
                hit = ((local >= 0) & (local < z.shape[1])).nonzero().squeeze(1)
                gz[hit, local[hit]] += grad[a:b][hit]
                gz = (gz / ctx.temperature).to(hidden.dtype)
                grad_h[a:b] += (gz @ w).float()
                grad_w[v0:v0 + vt] += (gz.t() @ hidden[a:b]).float()
        return grad_h.to(hidden.dtype), grad_w.to(weight.dtype), None, None


def trl_kernel():
    """TRL's own fused kernel when ``trl`` imports (it is not installed on every GPU host), else None."""
    try:
        from trl.kernels.chunked_logprob import ChunkedLogProbFunction
    except Exception:  # noqa: BLE001 - any import problem means: use the mirror
        return None
    return ChunkedLogProbFunction


def completion_logprobs(model, ids, mask, n_comp: int, head: str, temperature: float = 0.6):
    """Per-token log-probs of the last ``n_comp`` tokens, as TRL's ``_get_per_token_logps_and_entropies``."""
    hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, -n_comp - 1:-1]
    targets = ids[:, -n_comp:]
    if head == "full":  # older TRL: the logits, then selective_log_softmax's per-row loop for bf16
        logits = model.lm_head(hidden) / temperature
        return torch.stack([torch.log_softmax(r, -1).gather(-1, t[:, None]).squeeze(-1)
                            for r, t in zip(logits, targets)]).float()
    flat, weight = hidden.reshape(-1, hidden.shape[-1]), model.lm_head.weight
    kernel = trl_kernel()
    if kernel is not None and flat.is_cuda:
        out = kernel.apply(flat, weight, None, targets.reshape(-1), temperature, E.FUSED_TILE[1], None, 1.0,
                           ("log_probs",))[0]
    else:
        out = FusedLogProb.apply(flat, weight, targets.reshape(-1), temperature)
    return out.view(targets.shape).float()


def grpo_loss(logp, adv, ref_logp=None, beta=0.0):
    """TRL's loss_type="grpo" with num_iterations=1 (ratio = 1, clip inactive) + beta x k3."""
    per_token = -torch.exp(logp - logp.detach()) * adv[:, None]
    if ref_logp is not None and beta:
        d = ref_logp - logp
        per_token = per_token + beta * (torch.exp(d) - d - 1)
    return per_token.mean(-1).mean()


def checkpointing(model, on: bool) -> None:
    """Gradient checkpointing on/off (non-reentrant, as TRL sets it); transformers >= 5.2x renames the methods."""
    if on and getattr(model, "_smoke_no_checkpointing", False):
        on = False
    if on and hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    elif on:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        (getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable)()


def timed(fn, cuda: bool):
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if cuda else 0
    t0 = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    if not cuda:
        return out, dt, None, None
    timed.reserved = torch.cuda.max_memory_reserved() / GIB  # the caching allocator's peak over the call
    return out, dt, (torch.cuda.max_memory_allocated() - base) / GIB, torch.cuda.max_memory_allocated() / GIB


def build(cfg: dict, device: str):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**cfg, pad_token_id=0, eos_token_id=1, bos_token_id=1, use_cache=False)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = Qwen2ForCausalLM(config)
    finally:
        torch.set_default_dtype(old)
    return model


def batch(tok, micro: int, prompt: int, comp: int, device: str, pad_first: int):
    """R1-style prompts from the kit's char tokenizer (ids < vocab), random completions; the first prompt is
    left-padded as TRL pads a batch of prompts (so SDPA gets a padding mask, as in a real run)."""
    text = "<think>" + "(12+7)*3-45=?;" * (prompt // 8 + 1)
    p_ids = tok(text, add_special_tokens=False)["input_ids"][:prompt]
    g = torch.Generator().manual_seed(0)
    ids = torch.cat([torch.tensor([p_ids] * micro), torch.randint(3, len(tok), (micro, comp), generator=g)], 1)
    mask = torch.ones_like(ids)
    ids[0, :pad_first], mask[0, :pad_first] = tok.pad_token_id, 0
    return ids.to(device), mask.to(device)


def predicted_profile(micro: int, prompt: int, comp: int, capacity: float, gc: bool = True):
    from supersmall.config import load_profile

    return load_profile("a6000x4", **{
        "launch.num_gpus": 1, "launch.vllm_mode": "none", "launch.deepspeed_stage": 0,
        "launch.gpu_memory_gb": capacity, "train.prompts_per_step": 1, "train.num_generations": max(2, micro),
        "train.gradient_accumulation_steps": 1 if micro >= 2 else 2, "train.max_prompt_length": prompt,
        "train.max_completion_length": comp, "train.gradient_checkpointing": gc, "train.bf16": True})


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--micro-batch", type=int, default=None, help="completions per micro-step (default 8; tiny 2)")
    ap.add_argument("--prompt-tokens", type=int, default=None, help="default 256 (tiny 8)")
    ap.add_argument("--completion-tokens", type=int, default=None, help="default 4096 (tiny 16)")
    ap.add_argument("--gen-tokens", type=int, default=None, help="tokens HF generate decodes (default 256; tiny 4)")
    ap.add_argument("--steps", type=int, default=2, help="training micro-steps per arm (the last is reported)")
    ap.add_argument("--arms", default="no-kl,kl-penalty")
    ap.add_argument("--lm-head", choices=("fused", "full"), default="fused")
    ap.add_argument("--no-old-logp", action="store_true", help="skip the old log-probs forward")
    ap.add_argument("--no-checkpointing", action="store_true", help="train without gradient checkpointing")
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--tiny-dims", action="store_true", help="a tiny Qwen2 instead of the 1.5B shape")
    ap.add_argument("--out", "--json", dest="out", default=None, help="write the results as JSON to this file")
    args = ap.parse_args(argv)
    tiny = args.tiny_dims
    micro = args.micro_batch or (2 if tiny else 8)
    prompt = args.prompt_tokens or (8 if tiny else 256)
    comp = args.completion_tokens or (16 if tiny else 4096)
    gen_tokens = args.gen_tokens or (4 if tiny else 256)
    cuda = not args.cpu and torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    name = torch.cuda.get_device_name() if cuda else "cpu"
    capacity = torch.cuda.get_device_properties(0).total_memory / GIB if cuda else 0.0
    cfg = TINY_DIMS if tiny else R1_CONFIG
    dims = model_dims(cfg)
    gpu, tflops, gbps = E.gpu_spec(name if cuda else None)
    mfu, bw = E.SCENARIOS["mid"]["mfu"], E.SCENARIOS["mid"]["bw"]

    from supersmall.tiny import build_tokenizer

    tok = build_tokenizer()
    assert len(tok) <= cfg["vocab_size"], "token ids must be < vocab"
    model = build(cfg, device)
    ids, mask = batch(tok, micro, prompt, comp, device, pad_first=min(8, prompt // 2))
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    result = {"device": name, "gpu_spec": gpu, "peak_tflops": tflops, "bandwidth_gbps": gbps, "mid_mfu": mfu,
              "lm_head": args.lm_head, "fused_kernel": "trl" if trl_kernel() and cuda else "mirror",
              "micro_batch": micro, "gradient_checkpointing": not args.no_checkpointing, "prompt_tokens": prompt,
              "completion_tokens": comp, "params": dims.params, "arms": {}}

    # generation: HF generate (eager, KV cache) of gen_tokens for the micro-batch's prompts
    model.eval()
    with torch.no_grad():
        _, gen_s, _, gen_peak = timed(lambda: model.generate(
            input_ids=ids[:, :prompt], attention_mask=mask[:, :prompt], max_new_tokens=gen_tokens,
            min_new_tokens=gen_tokens, do_sample=True, temperature=0.6, pad_token_id=tok.pad_token_id), cuda)
    per_decode = max(2 * dims.params / (gbps * 1e9 * bw), micro * 2 * dims.params / (tflops * 1e12 * mfu))
    result["generation"] = {"tokens": gen_tokens, "measured_s": gen_s, "measured_s_per_token": gen_s / gen_tokens,
                            "predicted_vllm_s_per_token": per_decode + E.DECODE_STEP_S, "peak_gb": gen_peak}

    model.train()
    gc = not args.no_checkpointing
    model._smoke_no_checkpointing = not gc
    checkpointing(model, True)
    adv = torch.linspace(-1, 1, micro, device=device)
    fwd = E.forward_flops(dims, micro, prompt + comp, comp)
    for arm in arms:
        ref = copy.deepcopy(model).eval().requires_grad_(False) if arm in E.KL_ARMS else None
        steps = []
        for _ in range(args.steps):
            row = {}
            ref_logp = None
            if ref is not None:
                with torch.no_grad():
                    ref_logp, row["ref_s"], row["ref_peak_above_base_gb"], _ = timed(
                        lambda r=ref: completion_logprobs(r, ids, mask, comp, args.lm_head), cuda)
            if not args.no_old_logp:
                checkpointing(model, False)
                with torch.no_grad():
                    _, row["old_s"], row["old_peak_above_base_gb"], _ = timed(
                        lambda: completion_logprobs(model, ids, mask, comp, args.lm_head), cuda)
                checkpointing(model, True)
            row["base_gb"] = torch.cuda.memory_allocated() / GIB if cuda else None
            beta = 0.04 if arm == "kl-nopenalty" else 0.0

            def train_step(ref_logp=ref_logp, beta=beta):
                grpo_loss(completion_logprobs(model, ids, mask, comp, args.lm_head), adv, ref_logp, beta).backward()

            _, row["train_s"], row["train_peak_above_base_gb"], row["peak_gb"] = timed(train_step, cuda)
            row["reserved_gb"] = timed.reserved if cuda else None
            steps.append(row)
        del ref
        if cuda:
            torch.cuda.empty_cache()
        p = predicted_profile(micro, prompt, comp, capacity, gc)
        m = E.memory_gb(p, arm, procs=1, model=cfg, lm_head=args.lm_head)
        last = steps[-1]
        above = m["activations"] + m["logits"] - m["overlap"]
        passes = 4 if gc else 3
        pred = {"base_gb": m["weights"] + m["gradients"] + m["reference"], "train_peak_above_base_gb": above,
                "peak_gb": m["weights"] + m["gradients"] + m["reference"] + above,
                "activations_gb": m["activations"], "logits_gb": m["logits"], "overlap_gb": m["overlap"],
                "train_s": passes * fwd / (tflops * 1e12 * mfu), "forward_s": fwd / (tflops * 1e12 * mfu)}
        implied = {"train_mfu": passes * fwd / (last["train_s"] * tflops * 1e12),
                   "reserved_over_allocated": (last["reserved_gb"] / last["peak_gb"]) if cuda else None}
        if "old_s" in last:
            implied["old_forward_mfu"] = fwd / (last["old_s"] * tflops * 1e12)
        result["arms"][arm] = {"steps": steps, "predicted": pred, "implied": implied}
    report(result)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


def report(r: dict) -> None:
    def f(x, fmt=".4g"):
        return "n/a" if x is None else format(x, fmt)

    print(f"{r['device']} ({r['gpu_spec']} spec: {r['peak_tflops']} TFLOPS, {r['bandwidth_gbps']} GB/s), "
          f"{r['params'] / 1e9:.3f}B params, micro-batch {r['micro_batch']} x ({r['prompt_tokens']} + "
          f"{r['completion_tokens']}) tokens, LM head {r['lm_head']} ({r['fused_kernel']})")
    print(f"{'arm':<13} {'quantity':<34} {'predicted':>10} {'measured':>10}")
    for arm, a in r["arms"].items():
        last, pred = a["steps"][-1], a["predicted"]
        for key, label in (("base_gb", "weights+grads(+ref) GB"), ("train_peak_above_base_gb",
                           "train peak above base GB"), ("peak_gb", "peak allocated GB"),
                           ("train_s", "fwd+bwd s per micro-step")):
            print(f"{arm:<13} {label:<34} {f(pred[key]):>10} {f(last.get(key)):>10}")
        for key in ("old_s", "ref_s"):
            if key in last:
                print(f"{arm:<13} {key.replace('_s', '') + ' forward s (no grad)':<34} {f(pred['forward_s']):>10} "
                      f"{f(last[key]):>10}")
        print(f"{arm:<13} {'implied MFU (train)':<34} {f(r['mid_mfu']):>10} {f(a['implied']['train_mfu']):>10}")
        print(f"{arm:<13} {'max reserved / peak allocated':<34} {f(1 + E.FRAGMENTATION):>10} "
              f"{f(a['implied']['reserved_over_allocated']):>10}")
    g = r["generation"]
    print(f"{'generation':<13} {'s per decode step (vLLM model / HF)':<34} "
          f"{f(g['predicted_vllm_s_per_token'], '.4f'):>10} {f(g['measured_s_per_token'], '.4f'):>10}")


if __name__ == "__main__":
    main()
