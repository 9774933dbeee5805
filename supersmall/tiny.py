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

The kit ships the model built (``supersmall/models/tiny``, with a checksum), so every machine starts from
the same weights; :func:`supersmall.tools.tiny_build.build_base_model` (``supersmall tiny build``) is how it was made. The folder
loads with ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained`` like a hub model.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
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


# --- the shipped models ------------------------------------------------------------------------------
SHIPPED_NAMES = ("tiny", "tiny-r1")  # the models the kit ships built, by the names profiles use
# The kit ships both tiny models built (``supersmall/models/tiny`` and ``tiny-r1``, ~4 MB each), so that
# every machine starts from the same weights: a build is chaotic (380 optimiser steps), and a different
# CPU (another vector unit, so another summation order) builds a different model: five builds here scored
# 12-23% greedy (models/builds.json). Evaluating the *shipped* weights gives the same completions on every
# CPU we tried (AVX-512 and AVX2 kernels, 1 and 2 threads). supersmall.tools.tiny_build is how they were made.
SHIPPED = Path(__file__).parent / "models"
_VERIFIED: set[Path] = set()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shipped_dir(name: str = "tiny") -> Path:
    """The folder of a shipped model (``tiny`` or ``tiny-r1``), its weights checked against the checksum
    in its ``build.json`` (once per process); loads with ``AutoModelForCausalLM.from_pretrained``."""
    if name not in SHIPPED_NAMES:
        raise ValueError(f"the kit ships {' and '.join(map(repr, SHIPPED_NAMES))}, not {name!r}")
    path = SHIPPED / name
    if path not in _VERIFIED:
        info_file = path / "build.json"
        if not info_file.is_file():
            raise RuntimeError(f"the shipped model {path} is missing: reinstall the kit, or build it with "
                               f"`supersmall tiny build --ship`")
        info = json.loads(info_file.read_text())
        if _sha256(path / "model.safetensors") != info.get("sha256"):
            raise RuntimeError(f"{path}/model.safetensors does not match the checksum in its build.json: "
                               "reinstall the kit, or rebuild it with `supersmall tiny build --ship`")
        _VERIFIED.add(path)
    return path


def base_model_dir() -> Path:
    """The shipped tiny base model (no work: it is part of the package)."""
    return shipped_dir("tiny")


def r1_model_dir() -> Path:
    """The shipped tiny base with R1's chat template (the rehearsal profile's model)."""
    return shipped_dir("tiny-r1")


def new_model(vocab_size: int, seed: int = 0):
    """A freshly initialised ``Qwen2ForCausalLM`` with the tiny config (~1M parameters)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    tok = build_tokenizer()
    config = Qwen2Config(vocab_size=vocab_size, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                         bos_token_id=tok.eos_token_id, **MODEL_CONFIG)
    return Qwen2ForCausalLM(config)


# --- the R1-style variant (the rehearsal profile) ------------------------------------------------------
R1_SPECIAL = ["<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]
# DeepSeek-R1-Distill's template, reduced to what the tiny vocabulary can spell: it opens <think>.
R1_TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}"
               "{% elif m['role'] == 'assistant' %}<｜Assistant｜>{{ m['content'] }}{{ eos_token }}{% endif %}"
               "{% endfor %}{% if add_generation_prompt %}<｜Assistant｜><think>{% endif %}")

def model_path(name: str) -> str:
    """The folder of the kit's own shipped models (``tiny``, ``tiny-r1``); other names (hub names, folders)
    as given."""
    if name in SHIPPED_NAMES:
        return str(shipped_dir(name))
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
    """``(model, tokenizer)`` of the shipped tiny base model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = base_model_dir()
    model = AutoModelForCausalLM.from_pretrained(path).to(device)
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)
