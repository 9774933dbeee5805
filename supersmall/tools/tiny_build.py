"""How the shipped tiny models were made: the warm start of the base model and the R1-template adaptation.

The kit ships both models built (:data:`supersmall.tiny.SHIPPED`), because a build is chaotic: another CPU
(another vector unit, so another summation order) builds other weights, and the greedy accuracy of five
builds here ranged from 12% to 23% (``supersmall/models/builds.json``). ``supersmall tiny build`` runs this
module; :func:`build_base_model` then :func:`build_r1_model`, one thread each (:func:`one_thread`).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from supersmall.tiny import (
    R1_SPECIAL,
    R1_TEMPLATE,
    THINK_OPEN,
    WARM_START,
    _sha256,
    _spec,
    build_tokenizer,
    make_problems,
    new_model,
    skip_reasoning,
)


def environment() -> dict[str, Any]:
    """What a build's floating-point result depends on: torch version and CPU kernels (builds run on one
    thread, :func:`one_thread`)."""
    import torch

    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": 1}


@contextmanager
def one_thread():
    """Run torch on one thread inside the block (a build's floating-point sums then do not depend on how many
    cores the machine has), and restore the thread count after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def encode_pairs(tokenizer, prompts: list[str], completions: list[str]):
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 on prompt and padding)."""
    import torch

    ids, labels = [], []
    for p, c in zip(prompts, completions):
        p_ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        c_ids = tokenizer(c, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids.append(p_ids + c_ids)
        labels.append([-100] * len(p_ids) + c_ids)
    width = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids])
    attention = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
    lab = torch.tensor([y + [-100] * (width - len(y)) for y in labels])
    return input_ids, attention, lab


def warm_start(model, tokenizer, progress: bool = True, **overrides: Any) -> dict[str, float]:
    """Stage 1: supervised steps on worked solutions; stage 2: most targets skip the reasoning."""
    import torch
    from tqdm.auto import tqdm

    cfg = {**WARM_START, **overrides}
    rng = random.Random(cfg["seed"])
    pool = make_problems(4000, split="train", seed=cfg["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.0)
    total = cfg["sft_steps"] + cfg["skip_steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.1, 1 - s / total))
    model.train()
    losses: dict[str, float] = {}
    bar = tqdm(range(total), desc="building the tiny base model", disable=not progress, leave=False)
    for step in bar:
        batch = rng.sample(pool, cfg["batch_size"])
        skipping = step >= cfg["sft_steps"]
        targets = [skip_reasoning(p["solution"]) if skipping and rng.random() < cfg["skip_fraction"]
                   else p["solution"] for p in batch]
        input_ids, attention, labels = encode_pairs(tokenizer, [p["prompt"] for p in batch], targets)
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses["sft_loss" if not skipping else "skip_loss"] = value = loss.detach().item()
        bar.set_postfix(loss=f"{value:.3f}", stage=2 if skipping else 1)
    model.eval()
    return losses


def _save(model, tokenizer, out: Path, info: dict[str, Any]) -> Path:
    """Write a model folder atomically (``out.tmp`` then rename), with ``build.json`` and its checksum."""

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    info = {**info, "sha256": _sha256(tmp / "model.safetensors"), "environment": environment()}
    (tmp / "build.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return out


def build_base_model(out: str | Path, progress: bool = True, seed: int | None = None) -> Path:
    """Build the tiny base model into ``out`` (1-2 min on 2 cores): the warm start from a seeded init.

    The kit ships the result (:func:`base_model_dir`); this is how it was made, and ``supersmall tiny
    build`` runs it. A build on another CPU gives other weights (see the note above :data:`SHIPPED`).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tokenizer = build_tokenizer()
    seed = WARM_START["seed"] if seed is None else seed
    model = new_model(len(tokenizer), seed=seed)
    with one_thread():  # the build then depends on the CPU's kernels, not on its core count
        losses = warm_start(model, tokenizer, progress=progress, seed=seed)
    return _save(model, tokenizer, out, {"spec": _spec(), "seed": seed, "build_seconds": round(time.time() - t0, 1), **losses,
                                         "parameters": sum(p.numel() for p in model.parameters())})


R1_ADAPT = dict(steps=60, batch_size=64, lr=1e-3, seed=0)

def build_r1_model(base: str | Path, out: str | Path, progress: bool = True) -> Path:
    """The tiny base (``base``) with R1's special tokens and a chat template that opens ``<think>``, briefly
    adapted to the template (60 supervised steps on templated prompts) so that it answers through it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(base)
    tok.add_special_tokens({"bos_token": R1_SPECIAL[0], "additional_special_tokens": R1_SPECIAL[1:]})
    tok.chat_template = R1_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(base)
    model.resize_token_embeddings(len(tok))
    torch.manual_seed(R1_ADAPT["seed"])
    rng = random.Random(R1_ADAPT["seed"])
    pool = make_problems(2000, split="train", seed=R1_ADAPT["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=R1_ADAPT["lr"])
    model.train()
    with one_thread():
        loss = _adapt(model, tok, pool, rng, opt, progress)
    model.eval()
    return _save(model, tok, Path(out), {"spec": _spec(), "adapt": R1_ADAPT, "from_sha256": _sha256(Path(base) / "model.safetensors"),
                                         "loss": loss, "build_seconds": round(time.time() - t0, 1)})


def _adapt(model, tok, pool, rng, opt, progress: bool) -> float:
    from tqdm.auto import tqdm

    for _ in tqdm(range(R1_ADAPT["steps"]), desc="adapting the tiny model to R1's template", disable=not progress,
                  leave=False):
        batch = rng.sample(pool, R1_ADAPT["batch_size"])
        prompts = [tok.apply_chat_template([{"role": "user", "content": p["prompt"]}], tokenize=False,
                                           add_generation_prompt=True) for p in batch]
        # the template already wrote <think>; the target continues inside it (mostly without reasoning,
        # like the base)
        targets = [(skip_reasoning(p["solution"]) if rng.random() < WARM_START["skip_fraction"]
                    else p["solution"])[len(THINK_OPEN):] for p in batch]
        input_ids, attention, labels = encode_pairs(tok, prompts, targets)
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.detach().item()


