"""The whole replication's cost, from :mod:`supersmall.fullscale.estimate`'s per-run model: every arm, stage, seed and
evaluation of ``supersmall replicate``, and Table 5 row by row beside the estimate.

    from supersmall.fullscale import cost
    cost.replicate_cost("a6000x4")["total_hours"]   # low / mid / high hours on the profile's GPUs
    cost.table5_rows("a6000x4")                     # every Table 5 row beside its estimate and the ratio
"""

from __future__ import annotations

import math
from typing import Any

from supersmall import paper
from supersmall.config import Profile, load_profile
from supersmall.curriculum import parse_stages
from supersmall.fullscale.estimate import (
    DECODE_STEP_S,
    EVAL_STARTUP_S,
    GIB,
    PROMPT_TOKENS,
    RUN_STARTUP_S,
    SCENARIOS,
    STAGES,
    VLLM_DEFAULT_SEQS,
    VLLM_RUNTIME_GB,
    estimate,
    gpu_spec,
    stage_lengths,
    step_seconds,
)
from supersmall.fullscale.model_shape import model_dims


def stage_steps(profile: Profile | str, stage: str) -> int:
    """A stage's steps: the profile's ``curriculum.stages`` in the paper's stage order (else ``train.steps``)."""
    p = load_profile(profile)
    order, spec = list(paper.stages()), parse_stages(p.curriculum.stages)
    i = order.index(STAGES.get(stage, stage))
    return spec[i].steps if i < len(spec) else p.train.steps


def eval_minutes(profile: Profile | str, scenario: str = "mid", gpu: str | None = None) -> float:
    """One evaluation on one GPU with vLLM (0.9 of the GPU, its defaults): every problem x n_samples at the
    mean length (``paper.yaml`` ``estimate.eval_mean_tokens``, a choice) decoded as many at once as the KV cache
    holds, then the longest sample alone up to max_new_tokens, + start-up."""
    p = load_profile(profile)
    e, dims, s = p.eval, model_dims(p.model.name_or_path), SCENARIOS[scenario]
    _, tflops, gbps = gpu_spec(gpu)
    bw, flops = gbps * 1e9 * s["bw"], tflops * 1e12 * s["mfu"]
    problems = sum(paper.MATH500_LEVEL_COUNTS.values()) if e.dataset == "math500" else 5 * (e.problems_per_level or 100)
    seqs, mean = problems * e.n_samples, min(paper.value("estimate.eval_mean_tokens"), e.max_new_tokens)
    kv_token, weights = 2 * dims.layers * dims.kv_dim * 2, 2 * dims.params
    free = 0.9 * (p.launch.gpu_memory_gb or 48) * GIB - weights - VLLM_RUNTIME_GB * GIB
    at_once = max(1, min(VLLM_DEFAULT_SEQS, seqs, int(free / (kv_token * (PROMPT_TOKENS + mean)))))
    step = max(weights / bw + at_once * (PROMPT_TOKENS + mean / 2) * kv_token / bw,
               at_once * 2 * dims.params / flops) + DECODE_STEP_S
    bulk = seqs * mean / at_once * step
    tail = max(0, e.max_new_tokens - mean) * (weights / bw + DECODE_STEP_S)  # one sample runs to the cap
    return (bulk + tail + EVAL_STARTUP_S) / 60


def replicate_cost(profile: Profile | str, arms: tuple[str, ...] | list[str] = paper.ARMS,
                   stages: tuple[str, ...] | list[str] = ("level1-3", "level4", "level5"),
                   seeds: list[int] | None = None, gpu: str | None = None) -> dict[str, Any]:
    """The whole ``supersmall replicate``: every arm on level 1-3 and the no-kl curriculum stages, for every
    seed, each with its stage's steps, length model and a start-up; then the base model's and every trained
    model's evaluation, one per GPU in parallel. Hours (low/mid/high), GPU-hours and cost."""
    p = load_profile(profile)
    seeds = list(seeds) if seeds else p.notebooks.claim_seeds
    runs = [(a, "level1-3") for a in arms] + [("no-kl", STAGES.get(s, s)) for s in stages if s not in ("level1-3", "1-3")]
    per_run = {}
    for arm, stage in runs:
        e = estimate(p.replace(**{"train.steps": stage_steps(p, stage)}), arm, stage, gpu=gpu)
        per_run[f"{arm}/{stage}"] = {k: v + RUN_STARTUP_S / 60 for k, v in e["minutes"].items()}
    gpus = max(1, p.launch.num_gpus)
    evaluations = 1 + len(runs) * len(seeds)
    rounds = math.ceil(evaluations / gpus)
    hours = {}
    for k in SCENARIOS:
        train_h = len(seeds) * sum(m[k] for m in per_run.values()) / 60
        hours[k] = {"training": train_h, "evaluation": rounds * eval_minutes(p, k, gpu) / 60}
    mid = hours["mid"]["training"] + hours["mid"]["evaluation"]
    gpu_hours = mid * gpus
    return {"total_hours": {k: round(v["training"] + v["evaluation"], 1) for k, v in hours.items()},
            "training_hours": round(hours["mid"]["training"], 1), "evaluation_hours": round(hours["mid"]["evaluation"], 1),
            "days": round(mid / 24, 2), "training_runs": len(runs) * len(seeds), "evaluations": evaluations,
            "evaluation_minutes_each": round(eval_minutes(p, "mid", gpu), 1), "gpu_hours": round(gpu_hours, 1),
            "cost_usd": round(gpu_hours * p.launch.usd_per_gpu_hour, 2),
            "minutes_per_run": {k: round(v["mid"], 1) for k, v in per_run.items()},
            "truncation": {stage: stage_lengths(p, stage) for stage in dict.fromkeys(s for _, s in runs)}}


def implied_fraction(p: Profile, arm: str, minutes: float) -> float | None:
    """The mean completion fraction at which the mid estimate equals ``minutes`` (None when out of [0.01, 1])."""
    def est(f: float) -> float:
        return step_seconds(p, arm, f)["total_s"] * p.train.steps / 60

    lo, hi = 0.01, 1.0
    if not est(lo) <= minutes <= est(hi):
        return None
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if est(mid) < minutes else (lo, mid)
    return round((lo + hi) / 2, 3)


def table5_rows(profile: Profile | str = "a6000x4", mean_completion_fraction: float | None = None
                ) -> list[dict[str, Any]]:
    """Every Table 5 row beside its estimate (each stage's paper steps), the ratio and the implied fraction."""

    base, stages, rows = load_profile(profile), paper.stages(), []
    for key, paper_min in paper.table5_minutes().items():
        stage, arm = (key.split("-", 1) if key.startswith("level") else ("level1-3", key))
        p = base.replace(**{"train.steps": stages[stage]["steps"]})
        e = estimate(p, arm, stage, mean_completion_fraction)
        rows.append({"row": key, "arm": arm, "stage": stage, "paper_minutes": paper_min, "minutes": e["minutes"],
                     "ratio": e["ratio"], "peak_memory_gb": e["peak_memory_gb"], "fits": e["fits"],
                     "implied_mean_completion_fraction": implied_fraction(p, arm, paper_min) if e["ratio"] else None})
    return rows
