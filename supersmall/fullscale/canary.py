"""The canary: before two days of compute, a few steps of every planned run and a few evaluation problems with
the real engines, measured, and the whole replication projected from the measurements.

    result = canary("a6000x4", "runs/canary")     # on the GPU host, before `supersmall replicate`
    result["ok"], result["projected_hours"], result["runs"][0]["seconds_per_step"]

Every run is ``launch``'s own plan (the same command, launcher, data and trainer as ``replicate``) with its
stage shortened to ``steps`` steps (default 2: the first step carries warm-up, the time between the first and
the last step's metrics line, by the ``time`` the run wrote in each, is the time per step; a step shorter than
the 0.25 s poll still gets its own time). Memory: on GPUs the peak ``nvidia-smi`` shows per GPU
during the run (every process: training, vLLM, NCCL), beside the memory model; on CPU the peak resident memory
of the largest process (sampled every 0.25 s, and the run's own ``getrusage`` peak from its card), which no
memory model predicts. One trained model (the first run
that finished) is evaluated from its saved ``model/``. ``DIR/canary.json`` holds it all, and says no-go with one
sentence for a failed run or evaluation, a GPU nvidia-smi did not report, and a CPU host (no GPU memory measured).
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

from supersmall import paper
from supersmall.config import Profile, load_profile
from supersmall.curriculum import parse_stages
from supersmall.errors import UserError
from supersmall.evaluate import eval_rows, run_eval
from supersmall.fullscale import cost, gpus, launch
from supersmall.fullscale import estimate as est
from supersmall.runcard import is_complete, read_metrics, read_run_card

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
        if self.gpu_ids:  # a GPU nvidia-smi did not report is left out: never a 0 GB peak that passes
            used = self.query()
            for g in self.gpu_ids:
                if g in used:
                    self.peak[f"gpu{g}"] = max(self.peak.get(f"gpu{g}", 0.0), used[g])
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
           overrides: dict[str, Any] | None = None, query: gpus.Query = gpus.memory_used,
           worst_case: bool = False) -> dict[str, Any]:
    """Train ``steps`` steps of every planned arm and stage (one seed), evaluate ``eval_problems`` problems of one
    TRAINED model (its saved ``model/``: the save -> evaluation path replicate takes) with the profile's engine,
    measure, project ``replicate``'s hours and write ``out/canary.json``. ``worst_case``: every completion runs to
    its cap (``train.force_max_length``: ``min_tokens`` = the cap), so the time and memory measured are the worst.

    A run or evaluation that fails is a no-go with its sentence in ``canary.json`` (never an exception and no
    file); so is a GPU whose memory nvidia-smi did not report, and a CPU host, where no GPU memory is measured."""
    if steps < 2:
        raise UserError(f"the canary needs steps >= 2 to time a step apart from warm-up, got {steps}")
    out, overrides = Path(out_dir), {**(overrides or {}), **({"train.force_max_length": True} if worst_case else {})}
    full = load_profile(profile, **overrides)
    if worst_case:  # the evaluation too: every sample runs to max_new_tokens (vLLM min_tokens)
        overrides["eval.min_new_tokens"] = full.eval.max_new_tokens
        full = load_profile(profile, **overrides)
    arms = list(arms) if arms else launch.default_arms(full)
    plans = launch.plans_for(profile, arms, stages, full.notebooks.claim_seeds[:1], str(out),
                             overrides={**overrides, **_short(full, steps)})
    launch.write_plan_files(plans, out)
    problems = [m for p in plans for m in launch.validate(p)]
    if problems:
        raise UserError(f"the plan has {len(problems)} problem(s), the first: {problems[0]}")
    launch.prepare_data(full)
    gpu_ids = list(range(full.launch.num_gpus))
    runs = [_measure(plan, out, gpu_ids, query) for plan in plans]
    trained = next((r for r in runs if r["complete"]), None)
    try:
        evaluation = (_evaluate(full, out, trained, eval_problems, gpu_ids, query) if trained else
                      {"ok": False, "error": "no run finished, so no trained model could be evaluated"})
    except Exception as e:  # noqa: BLE001 - any failure is a no-go sentence in canary.json
        evaluation = {"ok": False, "error": _sentence(e)}
    return _report(full, out, runs, evaluation, len(full.notebooks.claim_seeds), len(plans))


def _sentence(e: BaseException) -> str:
    """An exception as one line: its type and the first line of its message (a CUDA out-of-memory error's
    first line names the GPU and the GiB it tried to allocate)."""
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _step_times(run_dir: str, polled: list[float]) -> list[float]:
    """When each step ended: the ``time`` the run wrote in each metrics line (its own clock), else when the poll
    saw the line (a line written without one). Two steps inside one 0.25 s poll have the same polled time."""
    own = [m.get("time") for m in read_metrics(run_dir)]
    return own if own and all(isinstance(t, (int, float)) for t in own) else polled


def _measure(plan: launch.Plan, out: Path, gpu_ids: list[int], query: gpus.Query) -> dict[str, Any]:
    """One plan run and measured: step times, peak memory, and its error sentence when it failed."""
    shutil.rmtree(plan.out_dir, ignore_errors=True)  # the canary's own folder: always measured afresh
    error, watch = None, _Watch(plan.out_dir, gpu_ids, query)
    t0 = time.time()
    try:
        if gpu_ids:
            gpus.wait_until_free(gpu_ids, query)
        with watch:
            launch.run_plan(plan, out)
    except Exception as e:  # noqa: BLE001 - an out-of-memory or a crash is the canary's finding, not its end
        error = _sentence(e)
    wall, times = time.time() - t0, _step_times(plan.out_dir, watch.step_times)
    per_step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None
    model = est.memory_gb(plan.settings, plan.arm)["total"] if gpu_ids else None
    peak_map, complete = dict(watch.peak), is_complete(plan.out_dir)
    if not gpu_ids and complete:  # the kernel's count from inside the run, beside what the poll saw
        own = read_run_card(plan.out_dir).get("timings", {}).get("peak_rss_gb")
        if own:
            peak_map["rss"] = max(peak_map.get("rss", 0.0), own)
    measured = (all(f"gpu{g}" in peak_map for g in gpu_ids) if gpu_ids else peak_map.get("rss", 0.0) > 0.01)
    return {"arm": plan.arm, "stage": plan.stage, "seed": plan.seed, "steps": len(times), "complete": complete,
            "model_dir": f"{plan.out_dir}/model", "error": error, "seconds_per_step": per_step,
            "setup_seconds": round(wall - (per_step or 0) * len(times), 1), "wall_seconds": round(wall, 1),
            "peak_memory_gb": round(max(peak_map.values()), 2) if measured else None,
            "peak_memory_per_gpu": peak_map if gpu_ids else None,
            "memory_kind": "gpu (nvidia-smi, every process)" if gpu_ids else
                           "cpu: peak resident memory of the largest process seen, not GPU memory",
            "predicted_memory_gb": round(model, 2) if model is not None else None,
            "train_seconds": read_run_card(plan.out_dir)["metrics"].get("train_seconds") if complete else None}


def _evaluate(p: Profile, out: Path, run: dict[str, Any], problems: int, gpu_ids: list[int],
              query: gpus.Query) -> dict[str, Any]:
    """A few problems of one trained model (its saved ``model/``) with the profile's engine (on GPUs: in its own
    process, as replicate). ``lengths``: every sample's tokens, for the projection (:func:`project_eval_hours`)."""
    name = f"{run['arm']}-{run['stage']}"
    job_dir = out / "eval" / name
    shutil.rmtree(job_dir, ignore_errors=True)
    t0 = time.time()
    meta = {"role": "trained", "arm": run["arm"], "stage": run["stage"], "seed": run["seed"]}
    if gpu_ids:
        cmd = launch.eval_jobs([(name, run["model_dir"], p, meta)], out, limit=problems)
        status = gpus.run_parallel(cmd, gpu_ids[:1], query=query, log_dir=out / "eval" / "logs")
        if status[name]:
            return {"ok": False, "model": run["model_dir"], "seconds": round(time.time() - t0, 1),
                    "error": f"the evaluation of {run['model_dir']} exited with status {status[name]} (see eval/logs)"}
    else:
        run_eval(run["model_dir"], p, job_dir, meta=meta, limit=problems, progress=False)
    records = [json.loads(line) for line in (job_dir / "records.jsonl").read_text().splitlines() if line.strip()]
    wall = time.time() - t0
    seconds = read_run_card(job_dir)["timings"].get("eval_seconds") or wall  # generation + grading
    lengths = [r["length"] for r in records]
    return {"ok": True, "model": run["model_dir"], "problems": problems, "samples": len(records),
            "seconds": round(seconds, 1), "startup_seconds": round(max(0.0, wall - seconds), 1),
            "tokens_per_second": round(sum(lengths) / seconds, 1), "mean_length": sum(lengths) / max(1, len(lengths)),
            "max_length": max(lengths, default=0)}


def eval_problems(p: Profile) -> int:
    """Problems of one full evaluation: MATH-500's level counts (``paper.yaml``, capped at
    ``eval.problems_per_level`` when set) without loading it, else the profile's rows."""
    if p.eval.dataset == "math500":
        cap = p.eval.problems_per_level
        return sum(min(c, cap) if cap else c for c in paper.MATH500_LEVEL_COUNTS.values())
    return len(eval_rows(p))


def project_eval_seconds(p: Profile, evaluation: dict[str, Any]) -> float:
    """One full evaluation's seconds from the canary's few samples, with the engine's concurrency.

    vLLM decodes every running sequence in one step, so the canary's ``samples`` (all running at once) took as
    long as their LONGEST: one decode step took ``seconds / max_length``. The full evaluation's
    ``problems x n_samples`` samples at the measured mean length run ``at_once`` at a time
    (:func:`supersmall.fullscale.estimate.eval_concurrency`, ~256): ``samples x mean / at_once`` steps, each
    slower than the canary's by the KV cache it reads (the measured step scaled by
    :func:`~supersmall.fullscale.estimate.decode_step_seconds` at ``at_once`` over at the canary's count), then
    the longest sample alone (``max_length - mean`` steps of one sequence), + the measured start-up. transformers
    (``eval.backend: hf``) generates in batches of ``eval.batch_size`` that each last as long as their longest."""
    longest = max(1, evaluation.get("max_length") or 1)
    mean = evaluation.get("mean_length") or longest
    measured = max(1, evaluation["samples"])
    samples = eval_problems(p) * p.eval.n_samples
    at_once = est.eval_concurrency(p, mean, samples)
    if p.eval.backend != "vllm":
        per_batch = evaluation["seconds"] / math.ceil(measured / at_once)
        return evaluation["startup_seconds"] + math.ceil(samples / at_once) * per_batch
    step = evaluation["seconds"] / longest
    here = est.decode_step_seconds(p, min(measured, at_once), mean)
    bulk = samples * mean / at_once * step * est.decode_step_seconds(p, at_once, mean) / here
    tail = max(0.0, longest - mean) * step * est.decode_step_seconds(p, 1, mean) / here
    return evaluation["startup_seconds"] + bulk + tail


def _report(p: Profile, out: Path, runs: list[dict[str, Any]], evaluation: dict[str, Any], seeds: int,
            planned: int) -> dict[str, Any]:
    hours = 0.0
    for r in runs:
        hours += seeds * ((r["seconds_per_step"] or 0) * cost.stage_steps(p, r["stage"]) + r["setup_seconds"]) / 3600
    evals = 1 + planned * seeds
    eval_h = 0.0
    if evaluation["ok"]:  # the engine's concurrency counted (project_eval_seconds), one evaluation per GPU at once
        eval_h = math.ceil(evals / max(1, p.launch.num_gpus)) * project_eval_seconds(p, evaluation) / 3600
    usable = min(p.launch.gpu_usable_gb or p.launch.gpu_memory_gb, p.launch.gpu_memory_gb)
    on_gpu = bool(p.launch.num_gpus)
    unmeasured = [r for r in runs if on_gpu and r["complete"] and r["peak_memory_gb"] is None]
    over = [r for r in runs if on_gpu and r["peak_memory_gb"] is not None and r["peak_memory_gb"] > usable]
    failed = [r for r in runs if not r["complete"] or r["seconds_per_step"] is None]
    memory_checked = on_gpu and not unmeasured and not failed
    ok = not over and not failed and evaluation["ok"] and memory_checked
    total = round(hours + eval_h, 2)
    why = ([f"{r['arm']}/{r['stage']} " + (f"failed ({r['error']})" if r.get("error") else
                                             "did not finish its timed steps") for r in failed]
           + [f"{r['arm']}/{r['stage']} peaked at {r['peak_memory_gb']:.1f} GB of {usable:g} usable" for r in over]
           + ([] if evaluation["ok"] else [f"the evaluation failed ({evaluation.get('error') or 'see eval/logs'})"])
           + ([f"no GPU memory measured for {', '.join(r['arm'] + '/' + r['stage'] for r in unmeasured)} "
               "(nvidia-smi reported nothing), so whether the runs fit is unknown"] if unmeasured else []))
    if ok:
        verdict = (f"go: all {len(runs)} runs trained and a trained model was evaluated, every GPU peak within the "
                   f"{usable:g} GB usable; the whole replication projects to {total:g} hours.")
    elif not on_gpu and not why:  # the CPU rehearsal: everything ran, and memory is the one verdict it cannot make
        verdict = (f"no-go: no GPU memory measured (a CPU host): all {len(runs)} runs trained and a trained model was "
                   "evaluated, but whether the runs fit a GPU can only be measured on the GPU host.")
    else:
        if not on_gpu:
            why.append("no GPU memory measured (a CPU host)")
        verdict = f"no-go: {'; '.join(why)}; fix this before the long run."
    result = {"profile": p.name, "runs": runs, "evaluation": evaluation, "memory_checked": memory_checked,
              "training_hours": round(hours, 2),
              "evaluation_hours": round(eval_h, 2), "projected_hours": total,
              "estimate_hours": cost.replicate_cost(p, launch.default_arms(p))["total_hours"] if p.launch.num_gpus
              else None,
              "ok": ok, "verdict": verdict}
    (out / "canary.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
