"""The tiny miniature: a 5-level arithmetic task and a ~1M-parameter Qwen2 model the kit trains itself.

It stands in for DeepSeek-R1-Distill-Qwen-1.5B so that every notebook shows a real GRPO effect on a
laptop CPU in minutes. Problems are written the way R1-style models answer::

    prompt      (7-2)*(3+4)=?
    completion  <think>7-2=5;3+4=7;5*7=35</think>\\boxed{35}

and graded by the same :mod:`supersmall.grading` that grades MATH-500. The base model comes from a
two-stage warm start: supervised steps on worked solutions (it learns to reason), then steps where
most targets skip the reasoning (``<think></think>\\boxed{35}``), so the base *can* reason but
usually does not: it was built with a latent skill for GRPO to find. (This is not how R1-Distill fails
under a short budget, which cuts its reasoning off; the tiny model tests the direction of the paper's
claims, not its mechanisms one for one.)

The model is built once and cached under ``$SUPERSMALL_CACHE_DIR`` (default
``~/.cache/supersmall``), keyed by a hash of everything that defines it; the folder loads with
``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained`` like a hub model.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# --- the task ---------------------------------------------------------------------------------------
# Levels are ordered by the base model's *measured* greedy accuracy (highest first); the test suite
# re-measures it (tests/test_tiny.py). "subject" = the operation family, as MATH-500's subjects.
SUBJECTS: dict[int, str] = {
    1: "add",              # a+b
    2: "mul-add",          # a*b+c
    3: "add-sub",          # a-b+c
    4: "two-products",     # a*b+c*d-e
    5: "product-of-sums",  # (a-b)*(c+d)
}
THINK_OPEN, THINK_CLOSE, BOX = "<think>", "</think>", "\\boxed{"


def _solve(level: int, n: list[int]) -> tuple[str, list[str], int]:
    """(prompt, reasoning steps, answer) for one problem of ``level`` with operands ``n``."""
    if level not in SUBJECTS:
        raise ValueError(f"level must be 1-5, got {level}")
    family = SUBJECTS[level]
    if family == "add":
        a, b = n[:2]
        return f"{a}+{b}=?", [f"{a}+{b}={a + b}"], a + b
    if family == "add-sub":
        a, b, c = n[:3]
        return f"{a}-{b}+{c}=?", [f"{a}-{b}={a - b}", f"{a - b}+{c}={a - b + c}"], a - b + c
    if family == "mul-add":
        a, b, c = n[:3]
        return f"{a}*{b}+{c}=?", [f"{a}*{b}={a * b}", f"{a * b}+{c}={a * b + c}"], a * b + c
    if family == "product-of-sums":
        a, b, c, d = n[:4]
        x, y = a - b, c + d
        return f"({a}-{b})*({c}+{d})=?", [f"{a}-{b}={x}", f"{c}+{d}={y}", f"{x}*{y}={x * y}"], x * y
    a, b, c, d, e = n[:5]  # two-products
    p, q = a * b, c * d
    steps = [f"{a}*{b}={p}", f"{c}*{d}={q}", f"{p}+{q}={p + q}", f"{p + q}-{e}={p + q - e}"]
    return f"{a}*{b}+{c}*{d}-{e}=?", steps, p + q - e


def _is_test(prompt: str) -> bool:
    """A fixed, hash-based split: about 1 problem in 5 is held out, never trained on."""
    return int(hashlib.sha1(prompt.encode()).hexdigest(), 16) % 5 == 0


def make_problems(
    n_per_level: int,
    levels: Sequence[int] = (1, 2, 3, 4, 5),
    split: str = "train",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """``n_per_level`` problems per level as dicts: prompt, answer, level, subject, solution.

    ``split="train"`` and ``split="test"`` never share a prompt. Problems may repeat within a split
    (level 1 has only 100 distinct prompts).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rng = random.Random(f"{seed}-{split}")
    out: list[dict[str, Any]] = []
    for level in levels:
        made = 0
        while made < n_per_level:
            prompt, steps, answer = _solve(level, [rng.randint(0, 9) for _ in range(5)])
            if _is_test(prompt) != (split == "test"):
                continue
            solution = f"{THINK_OPEN}{';'.join(steps)}{THINK_CLOSE}{BOX}{answer}}}"
            out.append({"prompt": prompt, "answer": str(answer), "level": level, "subject": SUBJECTS[level],
                        "solution": solution})
            made += 1
    return out


def test_problems(per_level: int = 100) -> list[dict[str, Any]]:
    """The fixed held-out split behind every tiny accuracy number (seed 1234, never trained on)."""
    return make_problems(per_level, split="test", seed=1234)


test_problems.__test__ = False  # not a pytest test


def skip_reasoning(solution: str) -> str:
    """``<think>...</think>\\boxed{x}`` -> ``<think></think>\\boxed{x}`` (the "no reasoning" answer)."""
    return THINK_OPEN + THINK_CLOSE + solution.split(THINK_CLOSE, 1)[1]


# --- tokenizer ---------------------------------------------------------------------------------------
SPECIAL = ["<pad>", "<eos>", "<unk>"]
MULTI = [THINK_OPEN, THINK_CLOSE, BOX]
CHARS = list("0123456789+-*()=?;}")


def build_tokenizer():
    """A character-level ``PreTrainedTokenizerFast`` (``<think>``, ``</think>``, ``\\boxed{`` are single tokens)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL + MULTI + CHARS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    pattern = "|".join(t.replace("\\", "\\\\").replace("{", "\\{") for t in MULTI) + "|."
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>",
                                   padding_side="left", model_max_length=128)
    # Registered as added tokens too, so that they stay single tokens when AutoTokenizer reloads the
    # folder with the Qwen2 tokenizer class (transformers 5 picks the class from the model type).
    fast.add_tokens([AddedToken(t, special=False, normalized=False) for t in MULTI])
    return fast


# --- model and warm start ----------------------------------------------------------------------------
MODEL_CONFIG = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                    num_key_value_heads=4, max_position_embeddings=128, tie_word_embeddings=True)
WARM_START = dict(sft_steps=300, skip_steps=80, skip_fraction=0.85, batch_size=64, lr=3e-3, seed=0)
BUILD_VERSION = 3


def _spec() -> dict[str, Any]:
    return {"model": MODEL_CONFIG, "warm_start": WARM_START, "subjects": SUBJECTS, "vocab": SPECIAL + MULTI + CHARS,
            "version": BUILD_VERSION}


def cache_root() -> Path:
    """``$SUPERSMALL_CACHE_DIR``, else ``$XDG_CACHE_HOME/supersmall``, else ``~/.cache/supersmall``."""
    if os.environ.get("SUPERSMALL_CACHE_DIR"):
        return Path(os.environ["SUPERSMALL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "supersmall"


def model_dir() -> Path:
    """Where the tiny base model for this version of the kit lives (whether built or not)."""
    key = hashlib.sha256(json.dumps(_spec(), sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / f"tiny-base-{key}"


def cached_model_dir() -> Path | None:
    """The built model's folder, or None when it has not been built yet."""
    d = model_dir()
    return d if (d / "build.json").is_file() else None


def new_model(vocab_size: int, seed: int = 0):
    """A freshly initialised ``Qwen2ForCausalLM`` with the tiny config (~1M parameters)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    tok = build_tokenizer()
    config = Qwen2Config(vocab_size=vocab_size, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                         bos_token_id=tok.eos_token_id, **MODEL_CONFIG)
    return Qwen2ForCausalLM(config)


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


def ensure_base_model(force: bool = False, progress: bool = True) -> Path:
    """Build the tiny base model once (1-2 min on 2 cores) and return its cached folder."""
    import torch
    from filelock import FileLock

    target = model_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if cached_model_dir() is not None and not force:
            return target
        t0 = time.time()
        tokenizer = build_tokenizer()
        threads = torch.get_num_threads()
        model = new_model(len(tokenizer), seed=WARM_START["seed"])
        losses = warm_start(model, tokenizer, progress=progress)
        tmp = target.with_name(target.name + ".tmp")
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = {"spec": _spec(), "build_seconds": round(time.time() - t0, 1), "torch_threads": threads, **losses,
                "parameters": sum(p.numel() for p in model.parameters())}
        (tmp / "build.json").write_text(json.dumps(info, indent=2))
        if target.exists():
            import shutil

            shutil.rmtree(target)
        tmp.replace(target)
    return target


# --- the R1-style variant (the rehearsal profile) ------------------------------------------------------
R1_SPECIAL = ["<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]
# DeepSeek-R1-Distill's template, reduced to what the tiny vocabulary can spell: it opens <think>.
R1_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
               "{% elif m['role'] == 'assistant' %}<｜Assistant｜>{{ m['content'] }}{{ eos_token }}{% endif %}"
               "{% endfor %}{% if add_generation_prompt %}<｜Assistant｜><think>{% endif %}")
R1_ADAPT = dict(steps=60, batch_size=64, lr=1e-3, seed=0)


def r1_model_dir() -> Path:
    return model_dir().with_name(model_dir().name.replace("tiny-base", "tiny-r1") + f"-{BUILD_VERSION}")


def ensure_r1_model(progress: bool = True) -> Path:
    """The tiny base with R1's special tokens and a chat template that opens ``<think>``, briefly adapted to
    the template (60 supervised steps on templated prompts) so that it answers through it. Cached."""
    import torch
    from filelock import FileLock
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, target = ensure_base_model(progress=progress), r1_model_dir()
    with FileLock(str(target) + ".lock"):
        if (target / "build.json").is_file():
            return target
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
        for _ in range(R1_ADAPT["steps"]):
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
        model.eval()
        tmp = target.with_name(target.name + ".tmp")
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "build.json").write_text(json.dumps({"from": str(base), "adapt": R1_ADAPT, "loss": loss.detach().item(),
                                                    "build_seconds": round(time.time() - t0, 1)}, indent=2))
        tmp.replace(target)
    return target


def model_path(name: str) -> str:
    """The folder of the kit's own models (``tiny``, ``tiny-r1``), built on first use; other names as given."""
    if name == "tiny":
        return str(ensure_base_model())
    if name == "tiny-r1":
        return str(ensure_r1_model())
    return name


# --- the rehearsal's data files: tiny problems in DeepMath's and MATH-500's schemas ------------------
def deepmath_rows(per_level: int = 80, seed: int = 7) -> list[dict[str, Any]]:
    """Tiny training problems as DeepMath-103K rows (difficulty = level +- 0.4, so ``round`` buckets
    them back), plus rows a real download can hold: a NaN, a negative and a missing difficulty, and
    prompts too long for the rehearsal's ``max_prompt_length``."""
    rng = random.Random(seed)
    rows = [{"question": p["prompt"], "final_answer": p["answer"],
             "difficulty": round(p["level"] + rng.uniform(-0.4, 0.4), 2), "topic": f"Tiny -> {p['subject']}",
             "r1_solution_1": p["solution"], "r1_solution_2": p["solution"], "r1_solution_3": p["solution"]}
            for p in make_problems(per_level, split="train", seed=seed)]
    bad = [float("nan"), -1.0, None]
    for i, d in enumerate(bad):
        rows[i * 7]["difficulty"] = d
    rows.append({**rows[1], "question": "1+1=?" * 8})  # a prompt over the rehearsal's limit
    return rows


def math500_rows(per_level: int = 10) -> list[dict[str, Any]]:
    """Held-out tiny problems as MATH-500 rows (problem, solution, answer, subject, level, unique_id)."""
    return [{"problem": p["prompt"], "solution": p["solution"], "answer": p["answer"], "subject": p["subject"],
             "level": p["level"], "unique_id": f"tiny/{p['level']}/{i}.json"}
            for i, p in enumerate(test_problems(per_level))]


def load_base(device: str = "cpu"):
    """``(model, tokenizer)`` of the tiny base model, built first if needed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_base_model()
    model = AutoModelForCausalLM.from_pretrained(path).to(device)
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)
