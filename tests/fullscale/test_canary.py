"""supersmall.fullscale.canary: a few measured steps of every planned run, a few evaluation problems, a projection and one
go / no-go sentence. The slow test runs it for real on the rehearsal profile (torchrun, 2 processes)."""

import json
import subprocess
import sys

import pytest

from supersmall.config import load_profile
from supersmall.errors import UserError
from supersmall.fullscale import canary, launch


def _run(arm="no-kl", stage="level1-3", **over):
    return {"arm": arm, "stage": stage, "seed": 42, "steps": 2, "complete": True, "seconds_per_step": 60.0,
            "setup_seconds": 300.0, "peak_memory_gb": 40.0, **over}


EVAL = {"ok": True, "samples": 8, "seconds": 80.0, "startup_seconds": 120.0}


def test_projection_and_verdict_by_hand(tmp_path):
    p = load_profile("a6000x4")
    runs = [_run(), _run("kl-penalty"), _run("no-kl", "level4")]
    r = canary._report(p, tmp_path, runs, EVAL, seeds=3, planned=3)
    # training: 3 seeds x 3 runs x (60 s x 100 steps + 300 s); evaluation: 1 + 9 evaluations over 4 GPUs = 3
    # rounds of (120 s + 80 s x 2000 / 8 samples)
    assert r["training_hours"] == pytest.approx(3 * 3 * (60 * 100 + 300) / 3600, abs=0.01)
    assert r["evaluation_hours"] == pytest.approx(3 * (120 + 80 * 2000 / 8) / 3600, abs=0.01)
    assert r["ok"] and r["verdict"].startswith("go: all 3 runs") and "46 GB usable" in r["verdict"]
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
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads((tmp_path / "canary.json").read_text())
    planned = {(p["arm"], p["stage"]) for p in json.loads((tmp_path / "plan.json").read_text())}
    assert {(r["arm"], r["stage"]) for r in result["runs"]} == planned and len(planned) == 5
    for r in result["runs"]:
        assert r["complete"] and r["steps"] == 2 and r["seconds_per_step"] > 0 and r["peak_memory_gb"] > 0
        assert r["memory_kind"].startswith("cpu") and r["predicted_memory_gb"] is None
    assert result["evaluation"]["ok"] and result["evaluation"]["samples"] == 4 * 2
    assert result["ok"] and result["projected_hours"] > 0
    # three figures each rounded to 0.01 h: their sum may differ by up to 0.015 (last round: 0.05 vs 0.02 + 0.02)
    assert result["projected_hours"] == pytest.approx(result["training_hours"] + result["evaluation_hours"], abs=0.0151)
    assert out.stdout.strip().splitlines()[-1] == result["verdict"] and result["verdict"].startswith("go: ")
