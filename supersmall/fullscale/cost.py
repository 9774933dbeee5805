"""The whole replication's cost, from :mod:`supersmall.fullscale.estimate`'s per-run model: every arm, stage, seed and
evaluation of ``supersmall replicate``, and Table 5 row by row beside the estimate.

    from supersmall.fullscale import cost
    cost.replicate_cost("a6000x4")["total_hours"]   # low / mid / high hours on the profile's GPUs
    cost.table5_rows("a6000x4")                     # every Table 5 row beside its estimate and the ratio
    cost.hosts("a6000x4")                           # 1, 2, 4 hosts: sharded by seed vs one multi-node run
"""

from __future__ import annotations

import math
from typing import Any

from supersmall import paper
from supersmall.config import Profile, load_profile
from supersmall.curriculum import parse_stages
from supersmall.errors import UserError
from supersmall.fullscale.estimate import (
    EVAL_STARTUP_S,
    INTERNODE_GBIT,
    RUN_STARTUP_S,
    SCENARIOS,
    STAGES,
    decode_step_seconds,
    estimate,
    eval_concurrency,
    internode_seconds,
    stage_lengths,
    step_seconds,
)


def stage_steps(profile: Profile | str, stage: str) -> int:
    """A stage's steps: the profile's ``curriculum.stages`` in the paper's stage order (else ``train.steps``)."""
    p = load_profile(profile)
    order, spec = list(paper.stages()), parse_stages(p.curriculum.stages)
    i = order.index(STAGES.get(stage, stage))
    return spec[i].steps if i < len(spec) else p.train.steps


def eval_minutes(profile: Profile | str, scenario: str = "mid", gpu: str | None = None) -> float:
    """One evaluation on one GPU: every problem x n_samples at the mean length (``paper.yaml``
    ``estimate.eval_mean_tokens``, a choice), decoded as many at once as vLLM holds
    (:func:`~supersmall.fullscale.estimate.eval_concurrency`: 0.9 of the GPU, its defaults), each step a
    :func:`~supersmall.fullscale.estimate.decode_step_seconds`; then the longest sample alone up to
    max_new_tokens, + start-up."""
    p = load_profile(profile)
    e = p.eval
    problems = sum(paper.MATH500_LEVEL_COUNTS.values()) if e.dataset == "math500" else 5 * (e.problems_per_level or 100)
    seqs, mean = problems * e.n_samples, min(paper.value("estimate.eval_mean_tokens"), e.max_new_tokens)
    at_once = eval_concurrency(p, mean, seqs)
    bulk = seqs * mean / at_once * decode_step_seconds(p, at_once, mean, scenario, gpu)
    tail = max(0, e.max_new_tokens - mean) * decode_step_seconds(p, 1, mean, scenario, gpu)  # one sample to the cap
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
        steps = stage_steps(p, stage)
        e = estimate(p.replace(**{"train.steps": steps}), arm, stage, gpu=gpu)  # across hosts: + the network
        per_run[f"{arm}/{stage}"] = {k: v + RUN_STARTUP_S / 60 for k, v in e["minutes"].items()}
    gpus = max(1, p.launch.num_gpus)  # evaluations: one per GPU of this (the rank-0) host
    evaluations = 1 + len(runs) * len(seeds)
    rounds = math.ceil(evaluations / gpus)
    # launch.gpus_per_run: several seeds' chains at once on one host; the busiest group of GPUs sets the time
    slots = max(1, gpus // (p.launch.gpus_per_run or gpus))
    hours = {}
    for k in SCENARIOS:
        train_h = math.ceil(len(seeds) / slots) * sum(m[k] for m in per_run.values()) / 60
        hours[k] = {"training": train_h, "evaluation": rounds * eval_minutes(p, k, gpu) / 60}
    mid = hours["mid"]["training"] + hours["mid"]["evaluation"]
    gpu_hours = mid * gpus * p.launch.num_machines
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


def hosts(profile: Profile | str, counts: tuple[int, ...] = (1, 2, 4), arms: tuple[str, ...] | list[str] = paper.ARMS,
          stages: tuple[str, ...] | list[str] = ("level1-3", "level4", "level5"), seeds: list[int] | None = None,
          gpu: str | None = None) -> dict[str, Any]:
    """The whole replicate on H hosts of the profile's ``launch.num_gpus`` GPUs each, two ways, from the same step
    model (:func:`replicate_cost`):

    - **sharded** (``replicate --shard i/H`` on each host): every run on one host, the seeds spread; the wall time
      is shard 0's (the most seeds, and the base evaluation), the other hosts finish sooner;
    - **one multi-node run** (``launch.num_machines`` = H): every run on all H x G GPUs in turn; each step still
      waits for its longest decode, which more GPUs do not shorten (:func:`speedup`), plus the gradients over the
      network (:func:`internode_seconds`); the rank-0 host evaluates.

    Returns ``{"rows": [{hosts, sharded_hours, multinode_hours, ...}], "one_run_speedup": {...}}``."""
    p = load_profile(profile)
    if not p.launch.num_gpus:
        raise UserError(f"profile {p.name!r} runs on CPU (launch.num_gpus 0): hosts of GPUs need a GPU profile, "
                        "e.g. --profile a6000x4")
    seeds = list(seeds) if seeds else p.notebooks.claim_seeds
    rows = []
    for h in counts:
        busiest = seeds[0::h] if h <= len(seeds) else seeds[:1]  # shard 0 (launch.shard_seeds): ceil(S / H) seeds
        sharded = replicate_cost(p, arms, stages, busiest, gpu)
        multi = replicate_cost(p.replace(**{"launch.num_machines": h, "launch.main_process_ip": "host0"}), arms,
                               stages, seeds, gpu)
        rows.append({"hosts": h, "gpus": h * p.launch.num_gpus, "seeds_on_busiest_host": len(busiest),
                     "sharded_hours": sharded["total_hours"]["mid"], "multinode_hours": multi["total_hours"]["mid"],
                     "sharded_range": [sharded["total_hours"]["low"], sharded["total_hours"]["high"]],
                     "multinode_range": [multi["total_hours"]["low"], multi["total_hours"]["high"]],
                     "network_s_per_step": round(internode_seconds(p.replace(**{"launch.num_machines": h})), 1)})
    return {"rows": rows, "one_run_speedup": {str(h): speedup(p, h, gpu) for h in counts if h > 1},
            "internode_gbit": INTERNODE_GBIT}


def speedup(profile: Profile | str, machines: int, gpu: str | None = None, arm: str = "no-kl") -> dict[str, float]:
    """One level 1-3 step on ``machines`` hosts against one host (mid scenario, the stage's length model): the
    seconds per step both ways, their ratio, and vLLM's decode waves both ways. Generation waits for the longest
    completion whatever the GPU count (fewer sequences per GPU shorten only what is not memory-bound), so the
    ratio stays under ``machines``, while ``machines`` hosts running separate seeds finish ``machines`` x the runs;
    unless one host's KV cache cannot hold its share of the step's rollouts at once (``waves`` > 1, e.g. one
    24 GB GPU): more GPUs then also save whole decode waves, and the ratio can pass ``machines``."""
    p = load_profile(profile)
    lengths = stage_lengths(p, "level1-3")

    def step(q: Profile) -> tuple[float, int]:
        s = step_seconds(q, arm, lengths["mean_fraction"], lengths["longest_fraction"], gpu=gpu)
        return s["total_s"] + internode_seconds(q), s["waves"]

    one, one_waves = step(p)
    many, many_waves = step(p.replace(**{"launch.num_machines": machines, "launch.main_process_ip": "host0"}))
    return {"one_host_s": round(one, 1), "hosts_s": round(many, 1), "ratio": round(one / many, 2),
            "one_host_waves": one_waves, "hosts_waves": many_waves}
