"""The single-gpu shape rehearsed on the GPU host's own stack (vLLM's CPU build, ``.venv-vllm``): one process,
LoRA, TRL's colocated vLLM, a LoRA stage chained onto the previous stage's merged model, and vLLM evaluating that
merged model. Its own module (the a6000x4 shape is tests/test_rehearsal_vllm.py), so that the slow tier's
pytest-xdist workers run the two rehearsals at once."""

import json
from pathlib import Path

import pytest
from test_rehearsal_vllm import SETS, STAGES, _replicate

from supersmall.config import load_profile
from supersmall.evaluation import Evaluation

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

# the single-gpu shape (profiles/single-gpu.yaml) on the rehearsal's model: one process, LoRA, colocated vLLM
LORA_SETS = {**SETS, "train.lora_rank": "4", "launch.num_processes": "1"}


@pytest.fixture(scope="module")
def lora_replication(vllm_python, tmp_path_factory):
    return _replicate(vllm_python, tmp_path_factory.mktemp("rehearsal-vllm-lora"), LORA_SETS)


def test_the_single_gpu_shape_lora_through_colocated_vllm_chains_and_vllm_loads_the_merged_model(lora_replication):
    """LoRA in one process with TRL's colocated vLLM (the adapter merged into vLLM's weights each step), each stage
    saving the merged model in model/ and the adapter in adapter/, level 4 starting from level 1-3's model/, and
    every trained model evaluated by vLLM from that model/ folder (a LoRA run's model/ loads in vLLM)."""
    for stage in STAGES:
        run = lora_replication / "no-kl" / stage / "seed0"
        card = json.loads((run / "run_card.json").read_text())
        assert card["status"] == "complete" and card["config"]["train"]["lora_rank"] == 4
        assert card["config"]["launch"]["num_processes"] == 1 and card["config"]["launch"]["vllm_mode"] == "colocate"
        assert (run / "model" / "config.json").is_file() and (run / "adapter" / "adapter_config.json").is_file()
        lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in lines] == list(range(1, card["metrics"]["steps"] + 1))
        assert all(0 < m["importance_ratio"] < 10 for m in lines), lines  # vLLM sampled every step
        if stage == "level4":
            assert card["start_model"].endswith("no-kl/level1-3/seed0/model")
        name = f"no-kl-{stage}-seed0"
        log = (lora_replication / "eval" / "logs" / f"{name}.log").read_text()
        assert "Initializing a V1 LLM engine" in log, log[-2000:]
        job = json.loads((lora_replication / "eval" / name / "job.json").read_text())
        assert Path(job["model"]) == run / "model"
        ev = Evaluation.load(lora_replication / "eval" / name)
        assert ev.summary["n"] > 0 and len(ev.records) == load_profile("rehearsal", **SETS).eval.n_samples * ev.summary["n"]
