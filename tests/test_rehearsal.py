"""The full-scale pipeline, rehearsed for real on CPU: notebook 07 on the rehearsal profile runs
``launch.replicate`` (every arm and stage under torchrun with 2 processes, DDP on gloo), then notebook 08
reads the replication. This is the a6000x4 code path; only the model, the sizes and two backends differ."""

import json

import pytest

from supersmall import paper
from supersmall.config import load_profile
from supersmall.runner import run_notebooks
from supersmall.stats import VERDICTS

pytestmark = pytest.mark.rehearsal


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    out = tmp_path_factory.mktemp("rehearsal")
    run_notebooks("rehearsal", only=["07", "08"], out=out, progress=False)
    return out


def test_every_arm_and_stage_trained_once_per_seed_with_one_metrics_line_per_step(rehearsal):
    p = load_profile("rehearsal")
    root = rehearsal / "replication"
    runs = [(arm, "level1-3") for arm in paper.ARMS] + [("no-kl", "level4"), ("no-kl", "level5")]
    for arm, stage in runs:
        for seed in p.notebooks.claim_seeds:
            run = root / arm / stage / f"seed{seed}"
            card = json.loads((run / "run_card.json").read_text())
            assert card["status"] == "complete" and card["seed"] == seed
            steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
            assert steps == list(range(1, card["metrics"]["steps"] + 1)), (run, steps)  # rank 0 only
            assert (run / "model" / "model.safetensors").is_file() and not list(run.glob("checkpoint-*"))
            assert list((run / "runs").rglob("events.out.tfevents.*")), "no TensorBoard event file"
            if stage != "level1-3":  # the curriculum chains: each stage starts from the previous stage's model
                previous = "level1-3" if stage == "level4" else "level4"
                assert card["start_model"].endswith(f"no-kl/{previous}/seed{seed}/model")


def test_base_and_every_model_evaluated_with_intervals(rehearsal):
    evals = sorted(p.name for p in (rehearsal / "replication" / "eval").iterdir())
    assert "base" in evals and len(evals) == 1 + 5 * len(load_profile("rehearsal").notebooks.claim_seeds)
    for name in evals:
        s = json.loads((rehearsal / "replication" / "eval" / name / "summary.json").read_text())
        assert {"accuracy", "ci_low", "ci_high", "per_level", "n", "budgets"} <= set(s)
        assert s["ci_low"] <= s["accuracy"] <= s["ci_high"] and s["n"] == 50


def test_verdicts_have_no_blank(rehearsal):
    rows = json.loads((rehearsal / "replication" / "report" / "verdicts.json").read_text())
    assert len(rows) == 5
    for row in rows:
        assert row["verdict"] in VERDICTS and row["claim"] and row["paper"] and row["measured"]
        assert len(row["interval"]) == 2 and row["n_seeds"] == 3 and row["run_cards"]
    again = json.loads((rehearsal / "08_replication_report" / "verdicts.json").read_text())
    assert [r["verdict"] for r in again] == [r["verdict"] for r in rows]  # notebook 08 reads the same runs
