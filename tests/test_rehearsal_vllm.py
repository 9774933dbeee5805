"""The a6000x4 shape rehearsed on the GPU host's own stack: ``supersmall replicate --profile rehearsal`` with
vLLM for real (vLLM's CPU build, ``.venv-vllm``, run in a subprocess). Training goes through TRL's colocated vLLM
in each of 2 processes (torchrun, gloo), its weights synced every step (supersmall.vllm_cpu), with the
importance-sampling correction the profile sets; the next curriculum stage starts from the first's model; every
evaluation runs in its own process through the kit's vLLM path (token-id prompts, n samples per prompt, the
budget curve re-scored from one pass). One arm, one seed, two stages: the code path, not the claims
(tests/test_rehearsal.py runs every arm and seed with transformers). The single-gpu shape (LoRA) is rehearsed in
tests/test_rehearsal_vllm_lora.py, its own module so that the two run on two pytest-xdist workers at once."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from supersmall.config import load_profile
from supersmall.evaluation import Evaluation

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

ROOT = Path(__file__).resolve().parents[1]
SETS = {"launch.vllm_mode": "colocate", "eval.backend": "vllm"}
STAGES = ("level1-3", "level4")



def _replicate(vllm_python: Path, out: Path, sets: dict[str, str]) -> Path:
    cmd = [str(vllm_python), "-m", "supersmall.cli", "replicate", "--profile", "rehearsal", "--arms", "no-kl",
           "--stages", ",".join(STAGES), "--seeds", "0", "--out", str(out)]
    cmd += [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    (out / "replicate.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return out


@pytest.fixture(scope="module")
def replication(vllm_python, tmp_path_factory):
    return _replicate(vllm_python, tmp_path_factory.mktemp("rehearsal-vllm"), SETS)


def _scalars(run: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(next((run / "runs").rglob("events.out.tfevents.*")).parent))
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_training_ran_trl_colocated_vllm_on_two_processes_with_the_importance_sampling_correction(replication):
    for stage in STAGES:
        run = replication / "no-kl" / stage / "seed0"
        card = json.loads((run / "run_card.json").read_text())
        assert card["status"] == "complete" and card["versions"]["vllm"] is not None
        args = card["config"]
        assert args["launch"]["vllm_mode"] == "colocate" and args["launch"]["num_processes"] == 2
        steps = card["metrics"]["steps"]
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in lines] == list(range(1, steps + 1))
        # TRL logs the ratio pi_theta / pi_vLLM only when vLLM sampled and the correction is on (its metric,
        # under the kit's name); one value per step, each step generating after that step's weight sync
        assert all(0 < m["importance_ratio"] < 10 for m in lines), lines
        scalars = _scalars(run)
        for tag in ("importance_sampling_ratio/min", "importance_sampling_ratio/max", "sampling_logp_difference/mean"):
            values = scalars[f"train/sampling/{tag}"]
            assert len(values) == steps, (tag, values)
        if stage == "level4":  # the curriculum chains: level 4 starts from the level 1-3 model
            assert card["start_model"].endswith("no-kl/level1-3/seed0/model")


def test_evaluations_came_from_vllm_in_their_own_processes(replication):
    p = load_profile("rehearsal", **SETS)
    evals = sorted(d.name for d in (replication / "eval").iterdir() if d.name != "logs")
    assert evals == sorted(["base"] + [f"no-kl-{s}-seed0" for s in STAGES])
    for name in evals:
        log = (replication / "eval" / "logs" / f"{name}.log").read_text()
        assert "Initializing a V1 LLM engine" in log, log[-2000:]  # vLLM's engine start, in this job's process
        card = json.loads((replication / "eval" / name / "run_card.json").read_text())
        assert card["settings"]["backend"] == "vllm" and card["versions"]["vllm"]
        ev = Evaluation.load(replication / "eval" / name)
        n = p.eval.n_samples
        assert len(ev.records) == n * ev.summary["n"] and {r["sample"] for r in ev.records} == set(range(n))
        summary = json.loads((replication / "eval" / name / "summary.json").read_text())
        assert set(summary["budgets"]) == {str(b) for b in p.eval.budgets}
        assert all(r["length"] <= p.eval.max_new_tokens for r in ev.records)


def test_readme_states_the_versions_the_rehearsal_ran(replication):
    versions = json.loads((replication / "no-kl" / "level1-3" / "seed0" / "run_card.json").read_text())["versions"]
    text = " ".join((ROOT / "README.md").read_text().split())
    m = re.search(r"the rehearsal ran vLLM (\S+), TRL (\S+), torch (\S+), transformers (\S+), accelerate (\S+) "
                  r"and peft (\S+), as its run cards record", text)
    assert m, "README: the sentence naming the versions the vLLM rehearsal ran is gone"
    names = ("vllm", "trl", "torch", "transformers", "accelerate", "peft")
    assert dict(zip(names, m.groups())) == {k: versions[k] for k in names}
