"""Evaluation done right: explicit generation settings, pass@1 with Wilson intervals, per level and subject.

    result = evaluate(model, dataset, tokenizer, max_new_tokens=48, temperature=0.0)
    result.summary["accuracy"], result.summary["ci_low"], result.summary["per_level"]["3"]
    result.to_jsonl("runs/eval/records.jsonl")

``dataset`` rows need a prompt (``prompt`` or ``problem``) and the gold answer (``answer``);
``level`` and ``subject`` are kept when present. Every completion is graded by
:mod:`supersmall.grading` (last ``\\boxed{}``, math-verify under a hard timeout).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supersmall import grading

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (95% by default); (0, 1) when n == 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _rate(values: Sequence[float]) -> dict[str, float]:
    """Mean of per-problem pass@1 values with a Wilson interval on the rounded success count."""
    n = len(values)
    acc = sum(values) / n if n else 0.0
    lo, hi = wilson_interval(round(acc * n), n)
    return {"accuracy": acc, "ci_low": lo, "ci_high": hi, "n": n}


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """pass@1 (mean over samples, then problems), Wilson 95% intervals overall, per level, per subject."""
    by_problem: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_problem[r["index"]].append(r)
    per_problem = []
    for rows in by_problem.values():
        per_problem.append((rows[0], sum(r["correct"] for r in rows) / len(rows)))
    summary: dict[str, Any] = _rate([p for _, p in per_problem])
    for key in ("level", "subject"):
        groups: dict[str, list[float]] = defaultdict(list)
        for row, p in per_problem:
            if row.get(key) is not None:
                groups[str(row[key])].append(p)
        summary[f"per_{key}"] = {k: _rate(v) for k, v in sorted(groups.items())}
    n = max(1, len(records))
    summary["truncation_rate"] = sum(r["truncated"] for r in records) / n
    summary["mean_length"] = sum(r["length"] for r in records) / n
    summary["reasoning_rate"] = sum(r["reasoned"] for r in records) / n
    summary["boxed_rate"] = sum(r["extracted"] is not None for r in records) / n
    summary["samples"] = len(records)
    return summary


@dataclass
class EvalResult:
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as f:
            for r in self.records:
                f.write(json.dumps(r) + "\n")
        return path

    @classmethod
    def from_jsonl(cls, path: str | Path, settings: dict[str, Any] | None = None) -> EvalResult:
        records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        return cls(records, summarize(records), settings or {})

    def __repr__(self) -> str:
        s = self.summary
        return (f"EvalResult(accuracy={s['accuracy']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}], "
                f"n={s['n']}, truncation_rate={s['truncation_rate']:.2f})")


def reasoned(completion: str) -> bool:
    """Whether the completion reasons: a non-empty ``<think>...</think>`` (or no think tags but text before the box)."""
    if "</think>" in completion:
        inner = completion.split("</think>", 1)[0].replace("<think>", "")
        return bool(inner.strip())
    return False


def format_prompt(row: dict[str, Any], tokenizer: Any, template: str | Callable = "default") -> str:
    """The text fed to the model for one row (see :func:`evaluate`'s ``prompt_template``)."""
    text = row.get("prompt") if row.get("prompt") is not None else row.get("problem")
    if text is None:
        raise ValueError("each row needs a 'prompt' or 'problem' column")
    if callable(template):
        return template(row)
    has_chat = getattr(tokenizer, "chat_template", None) is not None
    if template == "default":
        template = "chat_boxed" if has_chat else "raw"
    if template == "raw":  # the text as is (a conversational row falls back to its 'problem')
        return text if isinstance(text, str) else str(row.get("problem") or text[-1]["content"])
    if isinstance(text, list):  # conversational rows
        return tokenizer.apply_chat_template(text, tokenize=False, add_generation_prompt=True)
    if template in ("chat", "chat_boxed"):
        if not has_chat:
            raise ValueError(f"prompt_template={template!r} needs a tokenizer with a chat template")
        content = f"{text}\n{BOXED_INSTRUCTION}" if template == "chat_boxed" else text
        return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                             add_generation_prompt=True)
    raise ValueError(f"prompt_template must be 'raw', 'chat', 'chat_boxed', 'default' or a callable, got {template!r}")


def _load(model: Any, tokenizer: Any):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if isinstance(model, (str, Path)):
        name = str(model)
        if name == "tiny":
            from supersmall import tiny

            name = str(tiny.ensure_base_model())
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name)
    if tokenizer is None:
        raise ValueError("pass the tokenizer when passing a model object")
    return model, tokenizer


def _generate_hf(model, tokenizer, prompts: list[str], max_new_tokens: int, temperature: float, top_p: float,
                 batch_size: int, progress: bool, seed: int) -> list[tuple[str, int, bool]]:
    import torch
    from tqdm.auto import tqdm

    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[tuple[str, int, bool]] = []
    torch.manual_seed(seed)
    # a model with a short context (the tiny one) sees the end of a long prompt, not a crash
    limit = getattr(model.config, "max_position_embeddings", None)
    trunc = {"truncation": True, "max_length": limit - max_new_tokens} if limit and limit > max_new_tokens else {}
    tokenizer.truncation_side = "left"
    for start in tqdm(range(0, len(prompts), batch_size), desc="generating", disable=not progress, leave=False):
        chunk = prompts[start: start + batch_size]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False, **trunc).to(device)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id,
                                  "eos_token_id": tokenizer.eos_token_id}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            gen = model.generate(**enc, **kwargs)
        new = gen[:, enc["input_ids"].shape[1]:]
        for row in new:
            ids = row.tolist()
            if tokenizer.eos_token_id in ids:
                ids = ids[: ids.index(tokenizer.eos_token_id)]
                truncated = False
            else:
                ids = [i for i in ids if i != tokenizer.pad_token_id]
                truncated = len(ids) >= max_new_tokens
            out.append((tokenizer.decode(ids, skip_special_tokens=True), len(ids), truncated))
    if was_training:
        model.train()
    return out


def _generate_vllm(model_name: str, prompts: list[str], max_new_tokens: int, temperature: float, top_p: float,
                   seed: int, n_samples: int = 1) -> list[tuple[str, int, bool]]:  # pragma: no cover - needs a GPU
    """``n_samples`` completions per prompt, prompt-major (the order the HF backend returns)."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        raise ImportError("backend='vllm' needs vLLM on a CUDA host: pip install -e '.[gpu]' "
                          "(or use backend='hf')") from None
    llm = LLM(model=model_name, seed=seed)  # the engine seed makes runs repeatable
    # n samples per request: a per-request seed on repeated prompts would give n identical samples
    params = SamplingParams(n=n_samples, max_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
    outs = llm.generate(prompts, params)
    return [(c.text, len(c.token_ids), c.finish_reason == "length") for o in outs for c in o.outputs]


def evaluate(
    model: Any,
    dataset: Any,
    tokenizer: Any = None,
    backend: str = "hf",
    max_new_tokens: int | None = None,
    temperature: float = 0.0,
    top_p: float = 1.0,
    n_samples: int = 1,
    prompt_template: str | Callable = "default",
    seed: int = 0,
    batch_size: int = 64,
    answer_column: str = "answer",
    progress: bool = True,
    timeout: float = 1.0,
    verbose: bool = False,
) -> EvalResult:
    """Generate, grade and summarise (see the module docstring).

    ``temperature=0`` is greedy (then ``n_samples`` should be 1). ``prompt_template``: ``"raw"``
    (the prompt as is), ``"chat"`` (the tokenizer's chat template), ``"chat_boxed"`` (chat + the
    ``\\boxed{}`` instruction DeepSeek recommends), ``"default"`` (chat_boxed when the tokenizer has a
    chat template, else raw) or a callable ``row -> str``.
    """
    if max_new_tokens is None:
        raise ValueError("max_new_tokens is required: evaluation settings must be explicit")
    rows = [dict(r) for r in dataset]
    if rows and answer_column not in rows[0]:
        raise ValueError(f"dataset has no {answer_column!r} column (columns: {', '.join(rows[0])})")
    settings = {"backend": backend, "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                "n_samples": n_samples, "prompt_template": getattr(prompt_template, "__name__", prompt_template),
                "seed": seed, "problems": len(rows)}
    if verbose:
        print("evaluation settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    t0 = time.time()
    if backend == "vllm":
        name = str(model)
        from transformers import AutoTokenizer

        tokenizer = tokenizer or AutoTokenizer.from_pretrained(name)
        prompts = [format_prompt(r, tokenizer, prompt_template) for r in rows]
        gens = _generate_vllm(name, prompts, max_new_tokens, temperature, top_p, seed, n_samples)
    elif backend == "hf":
        model, tokenizer = _load(model, tokenizer)
        prompts = [format_prompt(r, tokenizer, prompt_template) for r in rows]
        gens = _generate_hf(model, tokenizer, [p for p in prompts for _ in range(n_samples)], max_new_tokens,
                            temperature, top_p, batch_size, progress, seed)
    else:
        raise ValueError(f"backend must be 'hf' or 'vllm', got {backend!r}")
    extracted = [grading.extract_answer(text) for text, _, _ in gens]
    golds = [str(rows[i // n_samples][answer_column]) for i in range(len(gens))]
    correct = grading.grade_batch(extracted, golds, timeout=timeout)
    records = []
    for j, ((text, length, truncated), ext, ok) in enumerate(zip(gens, extracted, correct)):
        i = j // n_samples
        row = rows[i]
        records.append({"index": i, "sample": j % n_samples, "prompt": prompts[i], "completion": text,
                        "extracted": ext, "answer": golds[j], "correct": bool(ok), "level": row.get("level"),
                        "subject": row.get("subject"), "length": length, "truncated": bool(truncated),
                        "reasoned": reasoned(text)})
    settings["seconds"] = round(time.time() - t0, 2)
    return EvalResult(records, summarize(records), settings)


def compare(a: EvalResult, b: EvalResult, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Paired difference b - a on the same problems: McNemar exact p-value and a bootstrap 95% interval."""
    pa = _per_problem(a)
    pb = _per_problem(b)
    common = sorted(set(pa) & set(pb))
    if not common:
        raise ValueError("the two runs share no problems (compare needs the same dataset)")
    diffs = [pb[i] - pa[i] for i in common]
    only_b = sum(1 for i in common if pb[i] > pa[i])
    only_a = sum(1 for i in common if pa[i] > pb[i])
    rng = random.Random(seed)
    boots = sorted(sum(diffs[rng.randrange(len(diffs))] for _ in diffs) / len(diffs) for _ in range(n_boot))
    return {"n": len(common), "difference": sum(diffs) / len(diffs), "ci_low": boots[int(0.025 * n_boot)],
            "ci_high": boots[int(0.975 * n_boot) - 1], "b_better": only_b, "a_better": only_a,
            "mcnemar_p": _mcnemar_exact(only_a, only_b)}


def _per_problem(result: EvalResult) -> dict[int, float]:
    rows: dict[int, list[bool]] = defaultdict(list)
    for r in result.records:
        rows[r["index"]].append(bool(r["correct"]))
    return {i: sum(v) / len(v) for i, v in rows.items()}


def _mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b vs c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def sensitivity(model: Any, dataset: Any, tokenizer: Any = None, grid: dict[str, Sequence[Any]] | None = None,
                progress: bool = True, **settings: Any):
    """Evaluate one model over a grid of settings (one axis at a time); a DataFrame with intervals.

    ``grid`` maps an :func:`evaluate` argument (``max_new_tokens``, ``prompt_template``,
    ``temperature``, ...) to the values to try; every other argument stays at ``settings``.
    """
    import pandas as pd

    model, tokenizer = _load(model, tokenizer) if not (settings.get("backend") == "vllm") else (model, tokenizer)
    rows = []
    for key, values in (grid or {}).items():
        for value in values:
            res = evaluate(model, dataset, tokenizer, progress=False, **{**settings, key: value})
            s = res.summary
            rows.append({"setting": key, "value": getattr(value, "__name__", value), "accuracy": s["accuracy"],
                         "ci_low": s["ci_low"], "ci_high": s["ci_high"], "truncation_rate": s["truncation_rate"],
                         "boxed_rate": s["boxed_rate"], "mean_length": s["mean_length"]})
            if progress:
                print(f"{key}={rows[-1]['value']}: accuracy {s['accuracy']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}], "
                      f"truncated {s['truncation_rate']:.0%}")
    df = pd.DataFrame(rows)
    if rows:  # keep 48 as 48 beside temperatures (a mixed column would turn every value into a float)
        df["value"] = pd.Series([r["value"] for r in rows], dtype=object)
    return df


def plot_sensitivity(df, title: str = "evaluation-settings sensitivity"):
    """One panel per setting: accuracy with 95% intervals, and the truncation rate."""
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(df["setting"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(4.5 * len(settings), 3), squeeze=False)
    for ax, key in zip(axes[0], settings):
        g = df[df["setting"] == key]
        xs = list(range(len(g)))
        ax.errorbar(xs, g["accuracy"], yerr=[g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]], fmt="o-",
                    capsize=3, label="accuracy")
        ax.plot(xs, g["truncation_rate"], "s--", alpha=0.6, label="truncated")
        ax.set_xticks(xs, [str(v) for v in g["value"]])
        ax.set_xlabel(key), ax.set_ylim(0, 1), ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
