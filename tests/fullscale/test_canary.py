"""supersmall.fullscale.canary: a few measured steps of every planned run, a few evaluation problems, a projection and one
go / no-go sentence. The slow test runs it for real on the rehearsal profile (torchrun, 2 processes)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from supersmall import paper
from supersmall.config import load_profile
from supersmall.errors import UserError
from supersmall.fullscale import canary, cost, gpus, launch
from supersmall.fullscale import estimate as est
from supersmall.runcard import write_run_card


def _run(arm="no-kl", stage="level1-3", **over):
    return {"arm": arm, "stage": stage, "seed": 42, "steps": 2, "complete": True, "seconds_per_step": 60.0,
            "setup_seconds": 300.0, "peak_memory_gb": 40.0, **over}


EVAL = {"ok": True, "samples": 8, "seconds": 80.0, "startup_seconds": 120.0, "mean_length": 4000, "max_length": 8000}


def test_projection_and_verdict_by_hand(tmp_path):
    p = load_profile("a6000x4")
    runs = [_run(), _run("kl-penalty"), _run("no-kl", "level4")]
    r = canary._report(p, tmp_path, runs, EVAL, seeds=3, planned=3)
    # training: 3 seeds x 3 runs x (60 s x 100 steps + 300 s); evaluation: 1 + 9 evaluations over 4 GPUs = 3
    # rounds of one evaluation (project_eval_seconds)
    assert r["training_hours"] == pytest.approx(3 * 3 * (60 * 100 + 300) / 3600, abs=0.01)
    assert r["evaluation_hours"] == pytest.approx(3 * canary.project_eval_seconds(p, EVAL) / 3600, abs=0.01)
    assert r["ok"] and r["memory_checked"] and r["verdict"].startswith("go: all 3 runs")
    assert "46 GB usable" in r["verdict"]
    assert r["estimate_hours"]["mid"] > 0  # the memory/time model's figure beside the measured one
    assert json.loads((tmp_path / "canary.json").read_text())["projected_hours"] == r["projected_hours"]
    bad = canary._report(p, tmp_path, [_run(), _run("kl-penalty", peak_memory_gb=47.5),
                                       _run("no-kl", "level4", complete=False, seconds_per_step=None)],
                         {"ok": False, "seconds": 3.0}, seeds=3, planned=3)
    assert not bad["ok"] and bad["verdict"].startswith("no-go: ") and bad["verdict"].count(".") <= 3
    for part in ("no-kl/level4 did not finish", "kl-penalty/level1-3 peaked at 47.5 GB of 46 usable",
                 "the evaluation failed"):
        assert part in bad["verdict"]


def test_canary_needs_two_steps_and_a_valid_plan(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="steps >= 2"):
        canary.canary("rehearsal", tmp_path, steps=1)
    with pytest.raises(UserError, match="problem"):  # a6000x4 on a CPU host: no GPUs, no vLLM
        canary.canary("a6000x4", tmp_path)
    seen = []
    monkeypatch.setattr(launch, "validate", lambda plan, **kw: seen.append(plan) or ["x"])
    with pytest.raises(UserError):
        canary.canary("rehearsal", tmp_path, steps=3)
    assert seen[0].settings.train.steps == 3 and seen[-1].settings.train.steps == 3  # every stage cut short
    assert "--set train.steps=3" in seen[0].commands[0] and len(seen) == 5


@pytest.mark.rehearsal
def test_canary_runs_every_planned_run_on_the_rehearsal(tmp_path):
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "canary", "--profile", "rehearsal", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=600)
    # a CPU host measures no GPU memory: the one verdict it cannot make, so no-go (exit 1) with exactly that reason
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads((tmp_path / "canary.json").read_text())
    planned = {(p["arm"], p["stage"]) for p in json.loads((tmp_path / "plan.json").read_text())}
    assert {(r["arm"], r["stage"]) for r in result["runs"]} == planned and len(planned) == 5
    for r in result["runs"]:
        assert r["complete"] and r["steps"] == 2 and r["seconds_per_step"] > 0 and r["peak_memory_gb"] > 0
        assert r["memory_kind"].startswith("cpu") and r["predicted_memory_gb"] is None
    assert result["evaluation"]["ok"] and result["evaluation"]["samples"] == 4 * 2
    assert result["evaluation"]["model"].endswith("/model") and "seed" in result["evaluation"]["model"]  # trained
    assert not result["ok"] and not result["memory_checked"] and result["projected_hours"] > 0
    # three figures each rounded to 0.01 h: their sum may differ by up to 0.015 (last round: 0.05 vs 0.02 + 0.02)
    assert result["projected_hours"] == pytest.approx(result["training_hours"] + result["evaluation_hours"], abs=0.0151)
    assert out.stdout.strip().splitlines()[-1] == result["verdict"]
    assert result["verdict"] == ("no-go: no GPU memory measured (a CPU host): all 5 runs trained and a trained model "
                                 "was evaluated, but whether the runs fit a GPU can only be measured on the GPU host.")


# --- faked GPU runs: what the canary does when a run fails, memory is unmeasured, or the evaluation fails -------

OOM = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 47.99 GiB of which 1.2 GiB "
       "is free.\nIncluding non-PyTorch memory, this process has 46.7 GiB memory in use.")


def _fake_host(monkeypatch, tmp_path, fail: set[str] = frozenset(), eval_status: int = 0, lengths=(30, 60)):
    """a6000x4 on a faked GPU host: every plan 'trains' 2 steps (a metrics line each, a complete card and a
    model/ folder), or raises for the arm/stage in ``fail``; the evaluation writes its records."""
    ran, evaluated = [], []

    def run_plan(plan, out, **kw):
        ran.append(plan)
        if f"{plan.arm}/{plan.stage}" in fail:
            raise RuntimeError(OOM)  # what torch raises (torch.OutOfMemoryError is a RuntimeError)
        d = Path(plan.out_dir)
        (d / "model").mkdir(parents=True)
        for step in (1, 2):
            with (d / "metrics.jsonl").open("a") as f:
                f.write(json.dumps({"step": step, "reward": 0.1}) + "\n")
            time.sleep(0.35)
        write_run_card(d, kind="train", config=plan.settings, seed=plan.seed, metrics={"train_seconds": 1.0})

    def run_parallel(jobs, gpu_ids, query=None, log_dir=None, **kw):
        (name, _), = jobs.items()
        job = json.loads((tmp_path / "eval" / name / "job.json").read_text())
        evaluated.append(job)
        if not eval_status:
            d = Path(job["out"])
            (d / "records.jsonl").write_text("".join(json.dumps({"length": n}) + "\n" for n in lengths))
            write_run_card(d, kind="eval", config=load_profile("a6000x4"), timings={"eval_seconds": 12.0})
        return {name: eval_status}

    monkeypatch.setattr(launch, "validate", lambda plan, **kw: [])
    monkeypatch.setattr(launch, "prepare_data", lambda p: None)
    monkeypatch.setattr(launch, "run_plan", run_plan)
    monkeypatch.setattr(gpus, "wait_until_free", lambda ids, query=None, **kw: None)
    monkeypatch.setattr(gpus, "run_parallel", run_parallel)
    return ran, evaluated


def _read(tmp_path):
    return json.loads((tmp_path / "canary.json").read_text())


def test_a_failed_run_is_a_no_go_sentence_in_canary_json_not_an_exception(tmp_path, monkeypatch):
    ran, evaluated = _fake_host(monkeypatch, tmp_path, fail={"kl-nopenalty/level1-3"})
    result = canary.canary("a6000x4", tmp_path, query=lambda: {0: 30.0, 1: 30.0, 2: 30.0, 3: 30.0})
    assert len(ran) == 5 and _read(tmp_path) == result  # every run tried, canary.json written
    assert not result["ok"] and result["verdict"].startswith("no-go: ") and "\n" not in result["verdict"]
    assert "kl-nopenalty/level1-3 failed (RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB" in result["verdict"]
    bad = next(r for r in result["runs"] if r["arm"] == "kl-nopenalty")
    assert not bad["complete"] and bad["error"].startswith("RuntimeError: CUDA out of memory")
    # the other runs were measured, and one trained model (not the base) was evaluated from its saved model/
    assert [j["model"] for j in evaluated] == [f"{tmp_path}/no-kl/level1-3/seed42/model"]
    assert result["evaluation"]["ok"] and result["evaluation"]["model"].endswith("no-kl/level1-3/seed42/model")


def test_every_run_failing_is_still_a_file_and_a_sentence(tmp_path, monkeypatch):
    _fake_host(monkeypatch, tmp_path, fail={f"{a}/{s}" for a in paper.ARMS
                                             for s in ("level1-3", "level4", "level5")})
    result = canary.canary("a6000x4", tmp_path, query=lambda: {g: 30.0 for g in range(4)})
    assert not result["ok"] and _read(tmp_path)["verdict"] == result["verdict"]
    assert "the evaluation failed (no run finished, so no trained model could be evaluated)" in result["verdict"]


def test_no_measured_gpu_memory_is_a_no_go_never_a_zero_gb_go(tmp_path, monkeypatch):
    _fake_host(monkeypatch, tmp_path)
    result = canary.canary("a6000x4", tmp_path, query=lambda: {})  # no nvidia-smi: nothing reported
    assert not result["ok"] and not result["memory_checked"]
    assert all(r["complete"] and r["peak_memory_gb"] is None for r in result["runs"])
    assert "no GPU memory measured for no-kl/level1-3" in result["verdict"] and "0.0 GB" not in result["verdict"]
    partly = canary.canary("a6000x4", tmp_path, query=lambda: {0: 30.0, 1: 30.0})  # two of four GPUs reported
    assert not partly["ok"] and "no GPU memory measured" in partly["verdict"]
    measured = canary.canary("a6000x4", tmp_path, query=lambda: {g: 30.0 for g in range(4)})
    assert measured["ok"] and measured["memory_checked"] and measured["verdict"].startswith("go: ")
    assert all(r["peak_memory_gb"] == 30.0 for r in measured["runs"])


@pytest.mark.parametrize("own", [1.5, None])
def test_a_cpu_host_reads_the_runs_own_peak_and_never_reports_a_zero_peak(tmp_path, monkeypatch, own):
    """On CPU the poll may see no child process (a run that starts and ends between polls, or a host whose
    /proc hides them): the run's own getrusage peak in its card decides, and without one the peak is None."""
    def run_plan(plan, out, **kw):
        d = Path(plan.out_dir)
        (d / "model").mkdir(parents=True)
        for step in (1, 2):
            with (d / "metrics.jsonl").open("a") as f:
                f.write(json.dumps({"step": step}) + "\n")
            time.sleep(0.3)
        write_run_card(d, kind="train", config=plan.settings, seed=plan.seed, metrics={"train_seconds": 1.0},
                       timings={"peak_rss_gb": own})

    monkeypatch.setattr(launch, "validate", lambda plan, **kw: [])
    monkeypatch.setattr(launch, "prepare_data", lambda p: None)
    monkeypatch.setattr(launch, "run_plan", run_plan)
    monkeypatch.setattr(canary, "_evaluate", lambda *a, **kw: {"ok": True, "samples": 8, "hours": 0.0})
    runs = [canary._measure(plan, tmp_path, [], lambda: {}) for plan in
            launch.plans_for("rehearsal", ["no-kl"], ("level1-3",), [42], str(tmp_path))]
    assert [r["peak_memory_gb"] for r in runs] == [own]


def test_a_step_shorter_than_the_poll_is_timed_by_the_runs_own_clock(tmp_path, monkeypatch):
    """The rehearsal's steps take ~0.1-0.3 s, under the 0.25 s poll: both metrics lines can appear in one poll
    (what failed CI: seconds_per_step 0.0). Each line's ``time`` (the run's clock at the step's end) decides."""
    def run_plan(plan, out, **kw):
        d = Path(plan.out_dir)
        (d / "model").mkdir(parents=True)
        t = time.time()
        (d / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "time": t + 0.4 * s}) + "\n" for s in (1, 2)))
        write_run_card(d, kind="train", config=plan.settings, seed=plan.seed, metrics={"train_seconds": 1.0},
                       timings={"peak_rss_gb": 1.0})

    monkeypatch.setattr(launch, "run_plan", run_plan)
    plan, = launch.plans_for("rehearsal", ["no-kl"], ("level1-3",), [42], str(tmp_path))
    run = canary._measure(plan, tmp_path, [], lambda: {})
    assert run["steps"] == 2 and run["seconds_per_step"] == pytest.approx(0.4)


def test_a_failed_evaluation_is_a_no_go(tmp_path, monkeypatch):
    _fake_host(monkeypatch, tmp_path, eval_status=1)
    result = canary.canary("a6000x4", tmp_path, query=lambda: {g: 30.0 for g in range(4)})
    assert not result["ok"] and "the evaluation failed (the evaluation of" in result["verdict"]
    assert "exited with status 1" in result["verdict"]


def test_worst_case_forces_every_length_to_its_cap(tmp_path, monkeypatch):
    ran, evaluated = _fake_host(monkeypatch, tmp_path)
    canary.canary("a6000x4", tmp_path, worst_case=True, query=lambda: {g: 30.0 for g in range(4)})
    p = ran[0].settings
    assert p.train.force_max_length and "--set train.force_max_length=true" in ran[0].commands[-1]
    assert ran[0].grpo_args["generation_kwargs"] == {"min_tokens": p.train.max_completion_length}  # vLLM's name
    job_profile = load_profile(evaluated[0]["profile"])
    assert job_profile.eval.min_new_tokens == job_profile.eval.max_new_tokens == 32768
    from supersmall.trl_args import grpo_config_kwargs
    cpu = load_profile("tiny", **{"train.force_max_length": True})
    assert grpo_config_kwargs(cpu, "x")["generation_kwargs"] == {"min_new_tokens": cpu.train.max_completion_length}
    assert "generation_kwargs" not in grpo_config_kwargs(load_profile("tiny"), "x")
    with pytest.raises(Exception, match="eval.min_new_tokens = 99"):
        load_profile("tiny", **{"eval.min_new_tokens": 99})  # tiny's max_new_tokens is 64


def test_min_new_tokens_reaches_transformers_generate(monkeypatch):
    """The worst case on the transformers path: EOS is suppressed until min_new_tokens (transformers' own option)."""
    from supersmall import evaluate as ev
    from supersmall import tiny

    rows = [{"prompt": "Compute 2+2.", "answer": "4"}]
    model = tiny.model_path("tiny")
    free = ev.evaluate(model, rows, max_new_tokens=24, progress=False)
    forced = ev.evaluate(model, rows, max_new_tokens=24, min_new_tokens=24, progress=False)
    assert forced.records[0]["length"] == 24 and free.records[0]["length"] <= 24


@pytest.mark.parametrize("profile", ["a6000x4", "single-gpu"])
def test_evaluation_projection_counts_concurrency_within_2x_of_the_estimate(profile):
    """16 samples decoded at once take about as long as their longest; faked timings at the estimate's own
    decode speed project a full evaluation within 2x of the estimate (the linear projection was ~6x over)."""
    p = load_profile(profile)
    mean = paper.value("estimate.eval_mean_tokens")
    longest = min(2 * mean, p.eval.max_new_tokens)
    faked = {"ok": True, "samples": 16, "mean_length": mean, "max_length": longest,
             "seconds": longest * est.decode_step_seconds(p, 16, mean), "startup_seconds": est.EVAL_STARTUP_S}
    projected = canary.project_eval_seconds(p, faked) / 60
    estimated = cost.eval_minutes(p, "mid")
    assert estimated / 2 <= projected <= 2 * estimated, (projected, estimated)
    linear = (faked["startup_seconds"] + faked["seconds"] * canary.eval_problems(p) * p.eval.n_samples / 16) / 60
    assert linear > 2 * estimated  # the old projection, which this test would have caught
    # twice the measured time -> about twice the projection (the measurement, not a constant, drives it)
    slower = canary.project_eval_seconds(p, {**faked, "seconds": 2 * faked["seconds"]}) / 60
    assert slower - est.EVAL_STARTUP_S / 60 == pytest.approx(2 * (projected - est.EVAL_STARTUP_S / 60))
