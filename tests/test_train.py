import json
import subprocess
import sys

import pytest
import torch

from supersmall import losses, tiny
from supersmall.config import load_profile
from supersmall.errors import UserError
from supersmall.train import grpo_config_kwargs, make_trainer, read_metrics, sequence_logps, train

SMALL = {"train.prompts_per_step": 4, "train.num_generations": 4, "train.save_steps": 2,
         "train.max_completion_length": 32, "eval.problems_per_level": 20}


def test_grpo_config_kwargs_are_accepted_by_trl(tmp_path):
    from trl import GRPOConfig

    for arm in ("no-kl", "kl-nopenalty", "kl-penalty"):
        for name in ("tiny", "a6000x4"):
            kw = grpo_config_kwargs(name, str(tmp_path), arm=arm, use_cpu=True, bf16=False)
            cfg = GRPOConfig(**kw)
            p = load_profile(name)
            assert cfg.per_device_train_batch_size == p.train.prompts_per_step * p.train.num_generations
            assert cfg.beta == (p.train.beta_kl_loss if arm == "kl-nopenalty" else 0.0)
            assert cfg.loss_type == p.train.loss_type and cfg.shuffle_dataset is False
    with pytest.raises(UserError, match="minimal backend"):
        grpo_config_kwargs(load_profile("tiny", **{"train.loss_type": "group_token_mean"}), str(tmp_path))
    with pytest.raises(UserError, match="valid arms"):
        grpo_config_kwargs("tiny", str(tmp_path), arm="kl")


@pytest.mark.slow
@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "dr_grpo"])
def test_minimal_loss_and_gradient_equal_trl_on_one_batch(tmp_path, loss_type):
    profile = load_profile("tiny", **{**SMALL, "train.loss_type": loss_type})
    rows = tiny.make_problems(1, levels=(1,), seed=0) * 4  # equal-length prompts: no padding ambiguity
    trainer = make_trainer(profile, "no-kl", tmp_path, rows, report_to="none")
    model, tok = trainer.model, trainer.processing_class
    prompts = tok([r["prompt"] for r in rows for _ in range(4)], return_tensors="pt", add_special_tokens=False)
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 12, (16,), generator=g)
    T = int(lengths.max())
    completion_ids = torch.randint(6, len(tok), (16, T), generator=g)
    completion_mask = (torch.arange(T)[None] < lengths[:, None]).long()
    completion_ids = completion_ids.masked_fill(completion_mask == 0, tok.pad_token_id)
    adv = torch.randn(16, generator=g)
    inputs = {"prompt_ids": prompts["input_ids"], "prompt_mask": prompts["attention_mask"],
              "completion_ids": completion_ids, "completion_mask": completion_mask, "advantages": adv,
              "num_items_in_batch": completion_mask.sum()}
    trainer.current_gradient_accumulation_steps = 1
    model.zero_grad()
    trl_loss = trainer._compute_loss(model, inputs)
    trl_loss.backward()
    trl_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    logp, _ = sequence_logps(model, prompts["input_ids"], prompts["attention_mask"], completion_ids, completion_mask)
    ours, _ = losses.policy_loss(logp, logp.detach(), adv, completion_mask, aggregation=loss_type,
                                 max_length=profile.train.max_completion_length)
    ours.backward()
    assert ours.item() == pytest.approx(trl_loss.item(), rel=1e-4, abs=1e-6)
    for a, b in zip(trl_grads, (p.grad for p in model.parameters())):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-3)


@pytest.mark.slow
def test_minimal_run_resumes_after_a_crash(tmp_path, monkeypatch, capsys):
    import supersmall.train as T

    real = T.minimal_step
    calls = {"n": 0}

    def crash_on_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed mid-run")
        return real(*a, **k)

    monkeypatch.setattr(T, "minimal_step", crash_on_third)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train("tiny", steps=4, backend="minimal", out_dir=out, evaluate_model=False, progress=False, **SMALL)
    assert (out / "checkpoint-2").is_dir() and json.loads((out / "run_card.json").read_text())["status"] == "running"
    monkeypatch.setattr(T, "minimal_step", real)
    card = train("tiny", steps=4, backend="minimal", out_dir=out, evaluate_model=False, progress=False, **SMALL)
    assert "resuming from checkpoint-2: step 2 of 4" in capsys.readouterr().out
    assert card["status"] == "complete" and card["metrics"]["resumed_from_step"] == 2
    assert [m["step"] for m in read_metrics(out)] == [1, 2, 3, 4]
    assert not list(out.glob("checkpoint-*")) and (out / "model" / "config.json").exists()
    again = train("tiny", steps=4, backend="minimal", out_dir=out, evaluate_model=False, progress=False, **SMALL)
    assert again == card  # complete: not retrained


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["kl-nopenalty", "kl-penalty"])
def test_kl_arms_run_with_trl_and_log(tmp_path, arm):
    card = train("tiny", arm=arm, steps=2, backend="trl", out_dir=tmp_path / arm, evaluate_model=False,
                 progress=False, **SMALL)
    hist = read_metrics(tmp_path / arm)
    assert card["status"] == "complete" and len(hist) == 2
    if arm == "kl-nopenalty":
        assert all(h.get("kl") is not None for h in hist)
    assert all(0.0 <= h["reasoning_rate"] <= 1.0 for h in hist)


@pytest.mark.slow
def test_cli_train_writes_the_run_card_metrics(tmp_path):
    out = subprocess.run([sys.executable, "-m", "supersmall.cli", "train", "--profile", "tiny", "--arm", "no-kl",
                          "--steps", "2", "--backend", "minimal", "--out", str(tmp_path / "r")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads((tmp_path / "r" / "run_card.json").read_text())["metrics"]
    for key in ("base_accuracy", "final_accuracy", "per_level_base", "per_level_final", "reasoning_rate_base",
                "reasoning_rate_final", "train_seconds", "seconds_per_step"):
        assert key in m
    assert 0 <= m["final_accuracy"] <= 1 and set(m["per_level_final"]) == {"1", "2", "3", "4", "5"}
    bad = subprocess.run([sys.executable, "-m", "supersmall.cli", "train", "--arm", "kl", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "valid arms" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_trl_consumes_the_curriculum_in_order(tmp_path, monkeypatch):
    """GRPOTrainer (shuffle_dataset=False) sees stage 1's levels for its first steps, then stage 2's only."""
    from supersmall import rewards

    seen: list[tuple[int, list[int]]] = []
    real = rewards.build_reward

    def with_recorder(*a, **k):
        def record(completions, level, trainer_state, **kw):
            seen.append((trainer_state.global_step, list(level)))
            return [0.0] * len(completions)

        record.__name__ = "record"
        return real(*a, **k) + [record]

    monkeypatch.setattr(rewards, "build_reward", with_recorder)
    card = train("tiny", backend="trl", curriculum="staged", stages="1-3:2,5:2", out_dir=tmp_path / "c",
                 evaluate_model=False, progress=False, **SMALL)
    assert card["stages"] == [["level1-3", 0, 2], ["level5", 2, 4]]
    assert [step for step, _ in seen] == [0, 1, 2, 3]
    for step, levels in seen:
        assert set(levels) <= ({1, 2, 3} if step < 2 else {5}), (step, levels)
