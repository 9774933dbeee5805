"""supersmall.checks.check_against_trl: the public check notebook 05 shows (TRL's loss and gradient against the
readable loop's on one batch), for every aggregation and with the KL term."""

import pytest

from supersmall import checks, tiny
from supersmall.config import load_profile
from supersmall.train import make_trainer

SMALL = {"train.prompts_per_step": 4, "train.num_generations": 4, "train.max_completion_length": 32}


@pytest.mark.slow
@pytest.mark.parametrize(("loss_type", "arm"), [("grpo", "no-kl"), ("dapo", "no-kl"), ("dr_grpo", "no-kl"),
                                                ("dr_grpo", "kl-nopenalty")])
def test_check_against_trl_reports_equal_loss_and_gradient(tmp_path, loss_type, arm):
    profile = load_profile("tiny", **{**SMALL, "train.loss_type": loss_type})
    rows = tiny.make_problems(1, levels=(1,), seed=0) * 4  # equal-length prompts: no padding ambiguity
    trainer = make_trainer(profile, arm, tmp_path, rows, tiny.model_path("tiny"), report_to="none")
    out = checks.check_against_trl(trainer, [r["prompt"] for r in rows], profile)
    assert set(out) == {"trl_loss", "minimal_loss", "loss_difference", "max_gradient_difference", "max_gradient",
                        "clip_fraction"}
    assert out["clip_fraction"] == 0.0  # one update per batch: ratio 1, the clip never acts
    assert out["minimal_loss"] == pytest.approx(out["trl_loss"], rel=1e-4, abs=1e-6)
    assert out["loss_difference"] == abs(out["trl_loss"] - out["minimal_loss"])
    assert out["max_gradient"] > 1e-4  # a real gradient, so an equal one means something
    assert out["max_gradient_difference"] < 1e-5 + 1e-3 * out["max_gradient"]
    again = checks.check_against_trl(trainer, [r["prompt"] for r in rows], profile)
    assert again == pytest.approx(out)  # a fixed batch: the same numbers on a rerun (gradients are zeroed after)
    assert trainer.beta == (profile.train.beta_kl_loss if arm == "kl-nopenalty" else 0.0)
    if trainer.beta:  # the KL term is in both losses: without it (beta 0) TRL's loss on the same batch differs
        assert trainer._metrics["train"]["kl"] or trainer._metrics["eval"]["kl"], "TRL logs the kl-nopenalty arm's KL"
        trainer.beta = 0.0
        no_kl = checks.check_against_trl(trainer, [r["prompt"] for r in rows], profile)
        assert abs(no_kl["trl_loss"] - out["trl_loss"]) > 1e-5
        assert no_kl["minimal_loss"] == pytest.approx(no_kl["trl_loss"], rel=1e-4, abs=1e-6)


# Off-policy updates and the modern variants (notebook 05, section 6): the sampling policy's log-probs differ from
# the current ones (a later update on a reused batch), so the ratio is not 1 and each variant's clip acts.
VARIANTS = {
    "offpolicy": {"train.num_iterations": 4},
    "clip-higher": {"train.num_iterations": 4, "train.clip_eps_high": 0.28},
    "gspo": {"train.num_iterations": 4, "train.importance_sampling_level": "sequence", "train.clip_eps": 3e-4,
             "train.clip_eps_high": 4e-4},
    "gspo-dapo": {"train.importance_sampling_level": "sequence", "train.loss_type": "dapo", "train.clip_eps": 0.05},
    "cispo": {"train.num_iterations": 4, "train.loss_type": "cispo", "train.clip_eps_high": 5.0},
    "cispo-tight-cap": {"train.loss_type": "cispo", "train.clip_eps_high": 1.1},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_check_against_trl_off_policy_and_the_variants(tmp_path, name):
    profile = load_profile("tiny", **{**SMALL, **VARIANTS[name]})
    rows = tiny.make_problems(1, levels=(1,), seed=0) * 4
    trainer = make_trainer(profile, "no-kl", tmp_path, rows, tiny.model_path("tiny"), report_to="none")
    assert (trainer.loss_type, trainer.importance_sampling_level, trainer.num_iterations) == (
        profile.train.loss_type, profile.train.importance_sampling_level, profile.train.num_iterations)
    out = checks.check_against_trl(trainer, [r["prompt"] for r in rows], profile, old_logp_drift=0.3)
    assert out["minimal_loss"] == pytest.approx(out["trl_loss"], rel=1e-4, abs=1e-6)
    assert out["max_gradient"] > 1e-4
    assert out["max_gradient_difference"] < 1e-5 + 1e-3 * out["max_gradient"]
    if name != "cispo":  # eps_max = 5 caps nothing at this drift; every other variant's clip acts on this batch
        assert 0 < out["clip_fraction"] < 1
    # TRL logs the same clip fraction (its own metric name per loss type)
    key = "cispo_clip_ratio" if profile.train.loss_type == "cispo" else "clip_ratio/region_mean"
    logged = trainer._metrics["train"][key] or trainer._metrics["eval"][key]  # the mode follows model.training
    assert logged[-1] == pytest.approx(out["clip_fraction"], abs=1e-6)
    on_policy = checks.check_against_trl(trainer, [r["prompt"] for r in rows], profile)
    assert on_policy["clip_fraction"] == 0.0 and abs(on_policy["trl_loss"] - out["trl_loss"]) > 1e-6


@pytest.mark.slow
def test_the_minimal_loop_reuses_each_batch_num_iterations_times(tmp_path):
    """num_iterations = 2: steps 1-2 update on one sampled batch, 3-4 on the next (TRL's order); each batch's first
    update has ratio 1 (clip fraction 0), the second one does not (the policy moved, old_logp stayed)."""
    from supersmall.runcard import read_metrics
    from supersmall.train import train

    out = tmp_path / "run"
    train("tiny", steps=4, backend="minimal", out_dir=out, evaluate_model=False, progress=False,
          **{**SMALL, "train.num_iterations": 2, "train.learning_rate": 1e-2})
    m = read_metrics(out)
    assert [x["step"] for x in m] == [1, 2, 3, 4]
    for first, second in ((m[0], m[1]), (m[2], m[3])):  # the same batch: the same rewards and lengths
        assert (first["reward"], first["completion_length"]) == (second["reward"], second["completion_length"])
        assert first["clip_fraction"] == 0.0
    assert m[1]["clip_fraction"] > 0 or m[3]["clip_fraction"] > 0  # lr 1e-2: the second update is off-policy
