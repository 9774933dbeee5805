"""The canary: before two days of compute, a few steps of every planned run and a few evaluation problems with
the real engines, measured, and the whole replication projected from the measurements.

    result = canary("a6000x4", "runs/canary")     # on the GPU host, before `supersmall replicate`
    result["ok"], result["projected_hours"], result["runs"][0]["seconds_per_step"]

Every run is ``launch``'s own plan (the same command, launcher, data and trainer as ``replicate``) with its
stage shortened to ``steps`` steps (default 2: the first step carries warm-up, the time between the first and
the last step's metrics line is the time per step). Memory: on GPUs the peak ``nvidia-smi`` shows per GPU
during the run (every process: training, vLLM, NCCL), beside the memory model; on CPU the peak resident memory
of the largest process (sampled every 0.25 s), which no memory model predicts. ``DIR/canary.json`` holds it all.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from supersmall.config import Profile, load_profile
from supersmall.curriculum import parse_stages
from supersmall.errors import UserError
from supersmall.evaluate import eval_rows, run_eval
from supersmall.fullscale import cost, gpus, launch
from supersmall.fullscale import estimate as est
from supersmall.runcard import is_complete, read_run_card

GIB = 2**30


class _Watch:
    """Polls a run while it trains: when each metrics line appears, and the peak memory (per GPU, or the
    largest process's resident memory on CPU)."""

    def __init__(self, run_dir: str, gpu_ids: list[int], query: gpus.Query, poll: float = 0.25):
        self.metrics, self.gpu_ids, self.query, self.poll = Path(run_dir) / "metrics.jsonl", gpu_ids, query, poll
        self.step_times: list[float] = []
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        if self.metrics.exists():
            lines = sum(1 for line in self.metrics.read_text().splitlines() if line.strip())
            self.step_times += [time.time()] * (lines - len(self.step_times))
        if self.gpu_ids:
            used = self.query()
            for g in self.gpu_ids:
                self.peak[f"gpu{g}"] = max(self.peak.get(f"gpu{g}", 0.0), used.get(g, 0.0))
        else:
            for proc in psutil.Process().children(recursive=True):
                try:
                    self.peak["rss"] = max(self.peak.get("rss", 0.0), proc.memory_info().rss / GIB)
                except psutil.Error:
                    continue

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.poll)

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _short(profile: Profile, steps: int) -> dict[str, Any]:
    """Overrides that cut every stage to ``steps`` steps and skip the resume checkpoints."""
    stages = ",".join(f"{s.name}={'+'.join(map(str, s.levels))}:{steps}" for s in parse_stages(profile.curriculum.stages))
    return {"curriculum.stages": stages, "train.steps": steps, "train.save_steps": 10 * steps, "train.logging_steps": 1}


def canary(profile: Profile | str, out_dir: str | Path, steps: int = 2, eval_problems: int = 4,
           arms: list[str] | None = None, stages: tuple[str, ...] = ("level1-3", "level4", "level5"),
           overrides: dict[str, Any] | None = None, query: gpus.Query = gpus.memory_used) -> dict[str, Any]:
    """Train ``steps`` steps of every planned arm and stage (one seed), evaluate ``eval_problems`` problems of the
    base model with the profile's engine, measure, project ``replicate``'s hours and write ``out/canary.json``."""
    if steps < 2:
        raise UserError(f"the canary needs steps >= 2 to time a step apart from warm-up, got {steps}")
    out, full = Path(out_dir), load_profile(profile, **(overrides or {}))
    arms = list(arms) if arms else launch.default_arms(full)
    plans = launch.plans_for(profile, arms, stages, full.notebooks.claim_seeds[:1], str(out),
                             overrides={**(overrides or {}), **_short(full, steps)})
    launch.write_plan_files(plans, out)
    problems = [m for p in plans for m in launch.validate(p)]
    if problems:
        raise UserError(f"the plan has {len(problems)} problem(s), the first: {problems[0]}")
    launch.prepare_data(full)
    gpu_ids = list(range(full.launch.num_gpus))
    runs = []
    for plan in plans:
        shutil.rmtree(plan.out_dir, ignore_errors=True)  # the canary's own folder: always measured afresh
        if gpu_ids:
            gpus.wait_until_free(gpu_ids, query)
        t0 = time.time()
        with _Watch(plan.out_dir, gpu_ids, query) as watch:
            launch.run_plan(plan, out)
        wall, times = time.time() - t0, watch.step_times
        per_step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None
        model = est.memory_gb(plan.settings, plan.arm)["total"] if gpu_ids else None
        peak = max(watch.peak.values(), default=0.0)
        runs.append({"arm": plan.arm, "stage": plan.stage, "seed": plan.seed, "steps": len(times),
                     "complete": is_complete(plan.out_dir), "seconds_per_step": per_step,
                     "setup_seconds": round(wall - (per_step or 0) * len(times), 1), "wall_seconds": round(wall, 1),
                     "peak_memory_gb": round(peak, 2), "peak_memory_per_gpu": watch.peak if gpu_ids else None,
                     "memory_kind": "gpu (nvidia-smi, every process)" if gpu_ids else
                                    "cpu: peak resident memory of the largest process, not GPU memory",
                     "predicted_memory_gb": round(model, 2) if model is not None else None,
                     "train_seconds": read_run_card(plan.out_dir)["metrics"].get("train_seconds")
                     if is_complete(plan.out_dir) else None})
    evaluation = _evaluate(full, out, eval_problems, gpu_ids, query)
    return _report(full, out, runs, evaluation, len(full.notebooks.claim_seeds), len(plans))


def _evaluate(p: Profile, out: Path, problems: int, gpu_ids: list[int], query: gpus.Query) -> dict[str, Any]:
    """A few problems of the base model with the profile's engine (on GPUs: in its own process, as replicate)."""
    job_dir = out / "eval" / "base"
    shutil.rmtree(job_dir, ignore_errors=True)
    t0 = time.time()
    if gpu_ids:
        cmd = launch.eval_jobs([("base", p.model.name_or_path, p, {"role": "base"})], out, limit=problems)
        status = gpus.run_parallel(cmd, gpu_ids[:1], query=query, log_dir=out / "eval" / "logs")
        if status["base"]:
            return {"ok": False, "seconds": time.time() - t0}
    else:
        run_eval(p.model.name_or_path, p, job_dir, meta={"role": "base"}, limit=problems, progress=False)
    records = [json.loads(line) for line in (job_dir / "records.jsonl").read_text().splitlines() if line.strip()]
    wall = time.time() - t0
    seconds = read_run_card(job_dir)["timings"].get("eval_seconds") or wall  # generation + grading
    tokens = sum(r["length"] for r in records)
    return {"ok": True, "problems": problems, "samples": len(records), "seconds": round(seconds, 1),
            "startup_seconds": round(max(0.0, wall - seconds), 1), "tokens_per_second": round(tokens / seconds, 1),
            "mean_length": tokens / max(1, len(records))}


def _report(p: Profile, out: Path, runs: list[dict[str, Any]], evaluation: dict[str, Any], seeds: int,
            planned: int) -> dict[str, Any]:
    hours = 0.0
    for r in runs:
        hours += seeds * ((r["seconds_per_step"] or 0) * cost.stage_steps(p, r["stage"]) + r["setup_seconds"]) / 3600
    full_samples = len(eval_rows(p)) * p.eval.n_samples
    evals = 1 + planned * seeds
    eval_h = 0.0
    if evaluation["ok"]:  # linear in samples: pessimistic for vLLM, which decodes more of them at once
        per_eval = (evaluation["startup_seconds"]
                    + evaluation["seconds"] * full_samples / max(1, evaluation["samples"])) / 3600
        eval_h = math.ceil(evals / max(1, p.launch.num_gpus)) * per_eval
    usable = min(p.launch.gpu_usable_gb or p.launch.gpu_memory_gb, p.launch.gpu_memory_gb)
    over = [r for r in runs if p.launch.num_gpus and r["peak_memory_gb"] > usable]
    failed = [r for r in runs if not r["complete"] or r["seconds_per_step"] is None]
    ok = not over and not failed and evaluation["ok"]
    total = round(hours + eval_h, 2)
    if ok:
        verdict = (f"go: all {len(runs)} runs trained and the evaluation ran"
                   + (f", every GPU peak within the {usable:g} GB usable" if p.launch.num_gpus else "")
                   + f"; the whole replication projects to {total:g} hours.")
    else:
        why = ([f"{r['arm']}/{r['stage']} did not finish its timed steps" for r in failed]
               + [f"{r['arm']}/{r['stage']} peaked at {r['peak_memory_gb']:.1f} GB of {usable:g} usable" for r in over]
               + ([] if evaluation["ok"] else ["the evaluation failed (see eval/logs)"]))
        verdict = f"no-go: {'; '.join(why)}; fix this before the long run."
    result = {"profile": p.name, "runs": runs, "evaluation": evaluation, "training_hours": round(hours, 2),
              "evaluation_hours": round(eval_h, 2), "projected_hours": total,
              "estimate_hours": cost.replicate_cost(p, launch.default_arms(p))["total_hours"] if p.launch.num_gpus
              else None,
              "ok": ok, "verdict": verdict}
    (out / "canary.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
