"""supersmall.grpo.check_against_trl: the public check notebook 05 shows (TRL's loss and gradient against the
readable loop's on one batch). tests/test_train.py holds the same comparison written out, for every aggregation."""

import pytest

from supersmall import grpo, tiny
from supersmall.config import load_profile
from supersmall.train import make_trainer

SMALL = {"train.prompts_per_step": 4, "train.num_generations": 4, "train.max_completion_length": 32}


@pytest.mark.slow
@pytest.mark.parametrize(("loss_type", "arm"), [("grpo", "no-kl"), ("dr_grpo", "kl-nopenalty")])
def test_check_against_trl_reports_equal_loss_and_gradient(tmp_path, loss_type, arm):
    profile = load_profile("tiny", **{**SMALL, "train.loss_type": loss_type})
    rows = tiny.make_problems(1, levels=(1,), seed=0) * 4  # equal-length prompts: no padding ambiguity
    trainer = make_trainer(profile, arm, tmp_path, rows, tiny.model_path("tiny"), report_to="none")
    out = grpo.check_against_trl(trainer, [r["prompt"] for r in rows], profile)
    assert set(out) == {"trl_loss", "minimal_loss", "loss_difference", "max_gradient_difference", "max_gradient"}
    assert out["minimal_loss"] == pytest.approx(out["trl_loss"], rel=1e-4, abs=1e-6)
    assert out["loss_difference"] == abs(out["trl_loss"] - out["minimal_loss"])
    assert out["max_gradient"] > 1e-4  # a real gradient, so an equal one means something
    assert out["max_gradient_difference"] < 1e-5 + 1e-3 * out["max_gradient"]
    again = grpo.check_against_trl(trainer, [r["prompt"] for r in rows], profile)
    assert again == pytest.approx(out)  # a fixed batch: the same numbers on a rerun (gradients are zeroed after)
